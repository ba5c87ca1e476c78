"""Gather what a report shows: run folders read and grouped by dataset, their data, truth and ceiling."""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import h5py
import numpy as np
import yaml

from ..errors import NLBInputError
from ..runs import CURVE_BOOKKEEPING, CURVES_FILE, RunRecord, data_checksums, read_run
from .arms import (
    Arm,
    ArmComparison,
    ArmRun,
    best_co_bps_first,
    compare_arms,
    exact_alone,
    find_arms,
    has_arms,
)
from .paired import PAIRED_RESAMPLES, PAIRED_SEED, MetricComparison, compare_runs, is_reference, paired_boot
from .published import PublishedRow, published_rows

log = logging.getLogger("nlb_suite.report")

METRICS = ("co-bps", "vel R2", "psth R2", "fp-bps", "tp corr")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#bcbd22", "#7f7f7f")
CEILING_COLOR = "#222222"
CEILING_CI = 100


@dataclass
class RunData:
    """One run folder and what the report reads from it."""

    record: RunRecord
    label: str = ""
    color: str = PALETTE[0]
    per_neuron: Optional[np.ndarray] = None
    curves: Optional[dict[str, np.ndarray]] = None
    curves_note: str = ""
    rates: Optional[dict[str, np.ndarray]] = None  # the run's submission group
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> str:
        return str(self.record.info.get("baseline", "?"))

    @property
    def is_oracle(self) -> bool:
        return self.baseline == "oracle"

    @property
    def is_reference(self) -> bool:
        """Reads the ground truth (oracle, true_psth): shown and compared, never marked best."""
        return is_reference(self.baseline)


@dataclass
class Ceiling:
    """Scores of the true rates (synthetic data): from an oracle run or computed here."""

    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    source: str


@dataclass
class GroupData:
    """All runs on one dataset, bin width, phase and data, with the data needed for the plots."""

    dataset: str
    bin_ms: int
    phase: str
    synthetic: bool
    data_dir: Optional[Path]
    runs: list[RunData]
    title: str = ""
    anchor: str = ""
    tensors: Any = None
    session: Any = None
    truth_eval: Optional[dict[str, np.ndarray]] = None  # "heldin"/"heldout": eval trials x bins x units
    cond_index: Optional[np.ndarray] = None  # per eval trial, index into cond_names (-1: none)
    cond_names: list[str] = field(default_factory=list)
    cond_fields: tuple[str, ...] = ()
    ceiling: Optional[Ceiling] = None
    published: tuple[PublishedRow, ...] = ()
    notes: list[str] = field(default_factory=list)
    data_check: str = ""
    data_verified: bool = False  # the data folder is there and its NWB files match the runs' checksums
    comparison: dict[str, MetricComparison] = field(default_factory=dict)  # per metric: top run, ties
    paired_note: str = ""  # how ties were judged
    arms: list[Arm] = field(default_factory=list)  # one configuration's runs at several model seeds
    arm_comparison: dict[str, ArmComparison] = field(default_factory=dict)  # per metric: top arm, ties

    @property
    def has_metrics(self) -> bool:
        return any(r.record.metrics for r in self.runs)

    @property
    def metric_names(self) -> list[str]:
        return [m for m in METRICS if any(r.record.metrics and m in r.record.metrics for r in self.runs)]

    @property
    def models(self) -> list[RunData]:
        """Runs with rates that match the data (what the plots draw)."""
        return [r for r in self.runs if r.rates is not None]


# ----- reading run folders -----------------------------------------------------------------------

def read_runs(paths: list[str | Path]) -> list[RunData]:
    """Read every run folder (clear error naming the first that is not a readable run); duplicates once."""
    if not paths:
        raise NLBInputError("report: no run folders given (expected one or more folders from `nlb-eval run`)")
    seen, out = set(), []
    for p in paths:
        path = Path(p)
        if not path.is_dir():
            what = "does not exist" if not path.exists() else "is a file"
            raise NLBInputError(f"{path}: {what} (expected a run folder from `nlb-eval run`)")
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        out.append(RunData(record=_read_record(path)))
    return out


def _read_record(path: Path) -> RunRecord:
    try:
        record = read_run(path)
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise NLBInputError(f"{path}: unreadable run file ({type(exc).__name__}: {exc}); "
                            "expected the JSON/YAML written by `nlb-eval run`") from None
    except (StopIteration, IndexError, AttributeError, TypeError):
        raise NLBInputError(f"{path}: metrics.json or intervals.json is not the result list written by "
                            "`nlb-eval run`") from None
    missing = [k for k in ("dataset", "bin_ms", "phase", "baseline") if k not in record.info]
    if missing:
        raise NLBInputError(f"{path / 'run.json'}: missing field(s) {', '.join(missing)} (expected the run.json "
                            "written by `nlb-eval run`)")
    return record


def _read_per_neuron(run: RunData) -> None:
    path = run.record.path / "per_neuron_co_bps.json"
    if path.exists():
        try:
            run.per_neuron = np.asarray(json.loads(path.read_text()), dtype=np.float64)
        except (ValueError, TypeError):
            run.notes.append(f"{path.name}: unreadable (expected a list of numbers); per-neuron plot skipped")


def read_curves(path: Path) -> tuple[Optional[dict[str, np.ndarray]], str]:
    """Training curves from curves.csv (an epoch or step column + loss columns), or a note why none. The
    schedule and optimiser columns (`CURVE_BOOKKEEPING`: lr, seconds, gradient norms) are left out."""
    if not path.exists():
        return None, f"no training curve: {path.parent.name} has no {CURVES_FILE}"
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"no training curve: {path} is unreadable ({exc})"
    if len(rows) < 2:
        return None, f"no training curve: {path} has no data rows"
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    x_name = next((h for h in header if h.lower() in ("epoch", "step")), None)
    if x_name is None:
        return None, f"no training curve: {path} has no 'epoch' or 'step' column (columns: {', '.join(header)})"
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        if name in CURVE_BOOKKEEPING:
            continue
        vals = np.array([_float(r[j]) if j < len(r) else math.nan for r in body])
        if np.isfinite(vals).any():
            cols[name] = vals
    if x_name not in cols or len(cols) < 2:
        return None, f"no training curve: {path} has no numeric loss column next to '{x_name}'"
    ordered = {x_name: cols.pop(x_name)}
    ordered.update(cols)
    return ordered, ""


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


# ----- grouping ----------------------------------------------------------------------------------

def group_runs(runs: list[RunData]) -> list[GroupData]:
    """Group runs by dataset, bin width, phase and data checksums (only like with like is compared)."""
    groups: dict[tuple, GroupData] = {}
    for run in runs:
        info = run.record.info
        fingerprint = tuple(sorted((info.get("data_sha256") or {}).values()))
        key = (info["dataset"], int(info["bin_ms"]), info["phase"], fingerprint)
        if key not in groups:
            data_dir = Path(info["data_dir"]) if info.get("data_dir") else None
            groups[key] = GroupData(info["dataset"], int(info["bin_ms"]), info["phase"],
                                    bool(info.get("synthetic")), data_dir, [])
        groups[key].runs.append(run)
    out = list(groups.values())
    counts: dict[tuple, int] = {}
    for g in out:
        base = (g.dataset, g.bin_ms, g.phase)
        counts[base] = counts.get(base, 0) + 1
        kind = "synthetic" if g.synthetic else "real data"
        g.title = f"{g.dataset}, {g.bin_ms} ms bins, phase {g.phase} ({kind})"
        g.anchor = f"{g.dataset}-{g.bin_ms}ms-{g.phase}"
        if sum(1 for h in out if (h.dataset, h.bin_ms, h.phase) == base) > 1:
            g.title += f", data set {counts[base]}"  # until name_data_sets can read which (after load_group)
            g.anchor += f"-{counts[base]}"
        _label_runs(g)
        g.published = () if g.synthetic else published_rows(g.dataset, g.bin_ms)
    return out


def name_data_sets(groups: list[GroupData]) -> None:
    """Groups of one dataset, bin width and phase on several data sets are titled by what tells them apart, where
    their data seed can be read (synthetic data verified against the runs' checksums): the trial count and data
    seed where trial counts differ, else the data seed. The others keep the order they came in ("data set 2"),
    as `group_runs` left them, as do all of them when one seed is there twice with no trial count to part it."""
    bases: dict[tuple, list[GroupData]] = {}
    for g in groups:
        bases.setdefault((g.dataset, g.bin_ms, g.phase), []).append(g)
    for same in (s for s in bases.values() if len(s) > 1):
        known = [(g, origin[0], group_trial_count(g)) for g in same if (origin := data_origin(g)) is not None]
        counts = {n for _, _, n in known}
        if len(counts) > 1 and None not in counts and len({(n, s) for _, s, n in known}) == len(known):
            names = [(f"{n} train+eval trials, data seed {s}", f"{n}trials-seed{s}") for _, s, n in known]
        elif len({s for _, s, _ in known}) == len(known):
            names = [(f"data seed {s}", f"seed{s}") for _, s, _ in known]
        else:
            continue  # one seed twice (other generators, or trial counts not recorded)
        for (g, _, _), (title, anchor) in zip(known, names):
            g.title = f"{g.title.rsplit(', data set ', 1)[0]}, {title}"
            g.anchor = f"{g.dataset}-{g.bin_ms}ms-{g.phase}-{anchor}"


def data_origin(group: GroupData) -> Optional[tuple[int, Optional[str]]]:
    """(data seed, generator identity or None for data made before it was recorded) of a synthetic group whose
    NWB files match the runs' checksums, from its ground_truth.h5; None when that cannot be had."""
    from ..datasets.truth import find_truth

    if not group.synthetic or not group.data_verified or (path := find_truth(group.data_dir)) is None:
        return None
    try:
        with h5py.File(path, "r") as f:
            seed, generator = f.attrs.get("seed"), f.attrs.get("generator")
        return int(seed), None if generator is None else str(generator)
    except (OSError, TypeError, ValueError):  # unreadable, or a seed that is not one integer
        return None


def group_trial_count(group: GroupData) -> Optional[int]:
    """Train + eval trials of the group's runs (None: not recorded, or the runs disagree)."""
    counts = {(r.record.info.get("n_train_trials"), r.record.info.get("n_eval_trials")) for r in group.runs}
    counts.discard((None, None))
    if len(counts) != 1 or None in (pair := next(iter(counts))):
        return None
    return int(pair[0]) + int(pair[1])


def _label_runs(group: GroupData) -> None:
    names = [r.baseline for r in group.runs]
    colors = iter(PALETTE * 10)
    for run in group.runs:
        run.label = run.baseline if names.count(run.baseline) == 1 else f"{run.baseline} ({run.record.path.name})"
        run.color = CEILING_COLOR if run.is_oracle else next(colors)


# ----- data, truth and ceiling ---------------------------------------------------------------------

KERNEL_FIELDS = ("cpu", "openblas_kernel", "openblas_threads", "numpy_simd", "torch_cpu_capability", "gpu")


def kernel_note(runs: list[RunData]) -> Optional[str]:
    """A note when the compared model runs were made under different CPU kernels (or CPUs, thread counts, GPUs),
    which alone move some fits' scores. A field a run did not record is not compared (a GPU's absence is "none"),
    and references compute nothing."""
    models = [r for r in runs if not r.is_reference and r.record.info.get("machine")]
    labels = [r.label for r in models]
    names = [r.label if labels.count(r.label) == 1 else str(r.record.path) for r in models]  # same label: the path
    machines = [(name, r.record.info["machine"]) for name, r in zip(names, models)]
    differing = []
    for key in KERNEL_FIELDS:
        values = [(name, str(m.get(key, "none"))) for name, m in machines if key in m or key == "gpu"]
        if len({v for _, v in values}) > 1:
            differing.append(f"{key}: " + ", ".join(f"{name} {v}" for name, v in values))
    if not differing:
        return None
    return ("the runs were made under different machines or kernels (" + "; ".join(differing) + "): GPFA's and "
            "NDT's scores moved by up to 0.002 co-bps with the kernels alone (benchmarks/RESULTS.md, \"Fits across "
            "CPU kinds\"); `nlb-eval --portable-kernels` holds every library to one set")


def load_group(group: GroupData) -> None:
    """Read per-run files, then the group's data (tensors, truth, conditions); notes say what was skipped."""
    if note := kernel_note(group.runs):
        group.notes.append(note)
    for run in group.runs:
        _read_per_neuron(run)
        run.curves, run.curves_note = read_curves(run.record.path / CURVES_FILE)
    if not _check_data(group):
        return
    from ..datasets.session import load_session
    from ..datasets.specs import get_dataset
    from ..datasets.tensors import build_tensors

    try:
        group.session = load_session(group.data_dir)
        group.tensors = build_tensors(group.session, group.dataset, group.bin_ms, group.phase)
    except NLBInputError as exc:
        group.notes.append(f"data could not be read ({exc}); plots that need data are skipped")
        group.session = group.tensors = None
        return
    spec = get_dataset(group.dataset)
    _conditions(group, spec)
    for run in group.runs:
        _load_rates(group, run)
    if group.synthetic:
        _load_truth(group)
    _ceiling(group)


def _check_data(group: GroupData) -> bool:
    """Is the runs' data folder there and unchanged (checksums as recorded)?"""
    if group.data_dir is None or not group.data_dir.exists():
        group.data_check = f"data folder {group.data_dir} not found"
        group.notes.append(f"data folder {group.data_dir} (from run.json) not found on this machine: plots "
                           "that need the data (PSTHs, single trials, trajectories, decoding) are skipped")
        return False
    recorded = group.runs[0].record.info.get("data_sha256") or {}
    try:
        found = data_checksums(group.data_dir)
    except NLBInputError as exc:
        group.notes.append(f"data folder unusable ({exc}); plots that need data are skipped")
        return False
    if recorded and found != recorded:
        group.data_check = "checksums differ from those recorded by the runs"
        group.notes.append(f"the NWB files in {group.data_dir} differ from those the runs used (SHA-256 "
                           "mismatch): plots that need the data are skipped")
        return False
    group.data_check = "SHA-256 of the NWB files match run.json" if recorded else "no checksums recorded"
    group.data_verified = bool(recorded)
    return True


def eval_session_rows(session: Any, eval_trial_ids: np.ndarray) -> np.ndarray:
    """Row of each eval trial in the session's trial table (trial ids need not be sorted)."""
    ids = np.asarray(session.trials["trial_id"])
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids[order], np.asarray(eval_trial_ids))]


def _conditions(group: GroupData, spec: Any) -> None:
    """Condition of each eval trial from the dataset's PSTH condition fields (none for mc_rtt)."""
    if spec.psth is None:
        return
    fields = spec.psth.cond_fields
    rows = eval_session_rows(group.session, group.tensors.eval_trial_ids)
    values = np.stack([np.asarray(group.session.trials[f], dtype=np.float64)[rows] for f in fields], axis=1)
    ok = ~np.isnan(values).any(axis=1)
    conds, inverse = np.unique(values[ok], axis=0, return_inverse=True)
    index = np.full(len(values), -1)
    index[ok] = inverse.ravel()
    group.cond_index, group.cond_fields = index, tuple(fields)
    group.cond_names = [", ".join(f"{f}={_num(v)}" for f, v in zip(fields, c)) for c in conds]


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _load_rates(group: GroupData, run: RunData) -> None:
    from ..h5io import load_h5

    key = group.tensors.result_key
    path = run.record.path / "submission.h5"
    try:
        sub = load_h5(path)
    except NLBInputError as exc:
        run.notes.append(f"{exc}; its rates are not plotted")
        return
    if key not in sub or "eval_rates_heldout" not in sub[key]:
        run.notes.append(f"{path}: no group {key} with eval rates; its rates are not plotted")
        return
    rates = sub[key]
    n_eval = len(group.tensors.eval_trial_ids)
    if rates["eval_rates_heldout"].shape[0] != n_eval:
        run.notes.append(f"{path}: {rates['eval_rates_heldout'].shape[0]} eval trials, the data have {n_eval}; "
                         "its rates are not plotted")
        return
    run.rates = {k: np.asarray(v, dtype=np.float64) for k, v in rates.items()}


def _load_truth(group: GroupData) -> None:
    from ..datasets.truth import truth_rates

    try:
        truth = truth_rates(group.session, group.bin_ms)
    except NLBInputError as exc:
        group.notes.append(f"no ground truth ({exc})")
        return
    bins = group.tensors.extras["eval_bins"]
    group.truth_eval = {"heldin": truth["spikes"][bins], "heldout": truth["heldout_spikes"][bins],
                        "_full": truth}


def _ceiling(group: GroupData) -> None:
    """The oracle run's scores if one is in the group, else scores of the true rates computed here."""
    oracle = next((r for r in group.runs if r.is_oracle and r.record.metrics), None)
    if oracle is not None:
        group.ceiling = Ceiling(dict(oracle.record.metrics), dict(oracle.record.intervals or {}),
                                f"oracle run {oracle.record.path.name}")
        return
    t = group.tensors
    if group.truth_eval is None or t is None or t.target is None:
        return
    from ..metrics_evaluate import evaluate_report
    from ..runs import plain_metrics

    full = group.truth_eval["_full"]
    ex = t.extras

    def take(name: str, bins: np.ndarray) -> np.ndarray:
        return np.maximum(full[name][bins], 1e-9)

    sub = {t.result_key: {
        "train_rates_heldin": take("spikes", ex["train_bins"]),
        "train_rates_heldout": take("heldout_spikes", ex["train_bins"]),
        "eval_rates_heldin": take("spikes", ex["eval_bins"]),
        "eval_rates_heldout": take("heldout_spikes", ex["eval_bins"]),
        "eval_rates_heldin_forward": take("spikes", ex["eval_forward_bins"]),
        "eval_rates_heldout_forward": take("heldout_spikes", ex["eval_forward_bins"]),
    }}
    try:
        rep = evaluate_report(t.target_dict(), sub, ci=CEILING_CI, seed=0)
    except NLBInputError as exc:
        group.notes.append(f"ground-truth ceiling not computed ({exc})")
        return
    metrics = plain_metrics(next(iter(rep.results[0].values())))
    intervals = plain_metrics(next(iter(rep.intervals[0].values()))) if rep.intervals else {}
    group.ceiling = Ceiling(metrics, intervals, "true rates of the synthetic data, scored here")


def compare_group(group: GroupData, n_boot: int = PAIRED_RESAMPLES) -> None:
    """Top run, ties and differences per metric: paired over the same eval trials when the target and every
    run's rates are at hand (`n_boot` > 0), else ties judged by overlapping marginal intervals."""
    runs = group.runs
    metrics = [r.record.metrics for r in runs]
    boot = None
    t = group.tensors
    if n_boot > 0 and group.has_metrics and t is not None and t.target is not None:
        subs = [{t.result_key: r.rates} if r.rates is not None and r.record.metrics else None for r in runs]
        try:
            boot = paired_boot(t.target_dict(), subs, n_boot, PAIRED_SEED,
                               names=[str(r.record.path / "submission.h5") for r in runs])
        except NLBInputError as exc:
            group.notes.append(f"paired intervals not computed ({exc})")
    if boot is not None:
        group.paired_note = (f"ties: paired 95% bootstrap interval of each difference to the top run includes 0 "
                             f"({n_boot} resamples of the same eval trials, seed {PAIRED_SEED}); it holds each "
                             "fitted model fixed, so a difference between single fits may be one fit's luck: a fit "
                             "at another model seed moves too (runs of one config at several seeds are compared "
                             "as arms)")
    elif group.has_metrics:
        why = "--ci 0" if n_boot <= 0 else "the runs' data folder or target could not be used"
        group.paired_note = (f"no paired intervals ({why}): ties judged by overlapping 95% intervals, "
                             "which can hide real differences but never reports a win that is not there")
    group.comparison = compare_runs(metrics, [r.record.intervals for r in runs], [r.baseline for r in runs],
                                    group.metric_names, boot)
    compare_arms_of(group, boot)


def compare_arms_of(group: GroupData, boot: Optional[list]) -> None:
    """The group's model runs as arms (one configuration at several model seeds), best co-bps mean first, kept
    when any arm holds several fits; their differences need every fit's paired resamples (`boot`)."""
    arms = find_arms(arm_runs(group, boot), group.metric_names)
    if not has_arms(arms):
        return
    group.arms = [arms[i] for i in best_co_bps_first([a.mean("co-bps") for a in arms])]
    group.arm_comparison = compare_arms(group.arms, group.metric_names)


def arm_runs(group: GroupData, boot: Optional[list] = None) -> list[ArmRun]:
    """The group's model runs with metrics (no references) as `find_arms` takes them, each id its index in
    `group.runs`; `boot`: every run's paired resamples (None: none)."""
    from ..ensemble import BASELINE as ENSEMBLE

    runs = []
    for i, r in enumerate(group.runs):
        if r.is_reference or not r.record.metrics:
            continue
        seeded = uses_seed(r)
        info = r.record.info  # read_run_info has checked seed (an int, or absent) and uses_seed
        runs.append(ArmRun(i, r.record.path.name, r.baseline, r.record.config.get("config"), info.get("seed"),
                           str(info.get("device", "")), seeded, exact_alone(seeded, r.baseline == ENSEMBLE),
                           r.record.metrics, None if boot is None else boot[i],
                           info.get("internal_validation")))
    return runs


def uses_seed(run: RunData) -> bool:
    """Does the run's seed make it another draw? As run.json records it; for runs from before that field, as the
    baseline's class says today (an ensemble's seed is its bootstrap's: False; a baseline that cannot be
    loaded here: True)."""
    recorded = run.record.info.get("uses_seed")  # read_run_info has checked it: a bool, or absent
    return baseline_uses_seed(run.baseline) if recorded is None else recorded


@functools.cache
def baseline_uses_seed(baseline: str) -> bool:
    """What a baseline's class says of its seed today (loaded once per baseline and process): an ensemble's seed
    is its bootstrap's (False); a baseline that cannot be loaded here is taken as seeded (True)."""
    from ..baseline_api import get_baseline
    from ..ensemble import BASELINE as ENSEMBLE

    if baseline == ENSEMBLE:
        return False
    try:
        return bool(get_baseline(baseline).uses_seed)
    except Exception:  # noqa: BLE001 - a plugin that fails to import must not break compare: take it as seeded
        return True


def gather(paths: list[str | Path], n_boot: int = PAIRED_RESAMPLES) -> list[GroupData]:
    """Read, group and load everything a report needs from run folders, and compare the runs."""
    groups = group_runs(read_runs(paths))
    for g in groups:
        log.info("report: loading %s from %s", g.title, g.data_dir)
        load_group(g)
    name_data_sets(groups)
    for g in groups:
        compare_group(g, n_boot)
    return groups
