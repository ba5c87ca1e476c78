"""`evaluate(target, submission)`: nlb_tools.evaluation.evaluate's result list, faster and with clear errors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from . import metrics as M
from . import metrics_bootstrap as B
from .blas_threads import DEFAULT_BLAS_THREADS, blas_threads
from .datasets.specs import DATASETS, SCALING_GROUP
from .errors import NLBInputError, check_seed, input_error
from .rate_check import check_rates, dtype_problem
from .submission import Shape, group_dataset, shape_matches, shape_text

Source = Union[str, os.PathLike, Mapping]
BINS = ((5, ""), (20, "_20"))
MAX_RESAMPLES = 100_000  # resample counts are n_boot x n_trials floats: more only burns memory and time


def check_bootstrap(ci: int, seed: int, level: float = 0.95) -> None:
    """One-line errors for bootstrap settings that cannot work: --ci outside 0..MAX_RESAMPLES, a negative
    --seed, a --level outside (0, 1)."""
    if isinstance(ci, bool) or not isinstance(ci, Integral) or not 0 <= ci <= MAX_RESAMPLES:
        raise NLBInputError(f"--ci: {ci} resamples (expected 0 for none, or up to {MAX_RESAMPLES:,})")
    check_seed(seed)
    if not 0 < level < 1:
        raise NLBInputError(f"--level: {level} (expected a confidence level between 0 and 1)")


@dataclass
class GroupScore:
    """Scores of one dataset group, plus the per-trial pieces the bootstrap needs."""

    metrics: dict[str, float]
    per_neuron_co_bps: np.ndarray
    n_eval_trials: int
    boot: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Everything one evaluation produced: nlb_tools-style results, intervals, per-neuron co-bps, notes."""

    results: list[dict[str, dict[str, float]]]
    groups: dict[str, GroupScore]
    intervals: list[dict[str, dict[str, list[float]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Group:
    """One dataset group of a target or submission (an h5py group or a dict), with named-array errors."""

    def __init__(self, node: Any, where: str, key: str):
        self.node, self.where, self.key = node, where, key

    def __contains__(self, name: str) -> bool:
        return name in self.node.keys()

    def item(self, name: str) -> Any:
        """The stored node `name` (unread); one line if it is missing or a link to nothing."""
        if name not in self:
            raise input_error(self.where, f"{self.key}/{name}: array missing")
        return _child(self.node, name, self.where, f"{self.key}/{name}")

    def raw(self, name: str) -> Any:
        """The value of `name`, read; one line naming the array if its data cannot be read (a corrupt file)."""
        val = self.item(name)
        if not hasattr(val, "dtype") or isinstance(val, np.ndarray):
            return val
        try:
            return val[()]
        except OSError as exc:
            raise input_error(self.where, f"{self.key}/{name}: unreadable data ({exc})",
                              "an intact HDF5 file: write or download it again") from None

    def array(self, name: str, shape: tuple | None = None, dims: slice | None = None) -> np.ndarray:
        """Read `name` as float64; check its shape (or the `dims` part of it) against `shape`."""
        try:
            arr = np.asarray(self.raw(name), dtype=np.float64)
        except (TypeError, ValueError):
            raise input_error(self.where, f"{self.key}/{name}: not a numeric array") from None
        if shape is not None:
            found = arr.shape if dims is None else arr.shape[dims]
            if tuple(found) != tuple(shape):
                part = "" if dims is None else _dims_label(dims)
                raise input_error(self.where, f"{self.key}/{name}: {part}shape {tuple(found)}",
                                  f"{tuple(shape)}")
        return arr

    def rates(self, name: str, shape: tuple | None = None, dims: slice | None = None) -> np.ndarray:
        """A submission's rate array: as `array`, refused (one line) unless stored as floats (integers are
        counts, not rates; `validate` refuses them too) and if any value is NaN, inf or < 0."""
        if name in self:
            node = self.item(name)
            bad_dtype = dtype_problem(node.dtype if hasattr(node, "dtype") else np.asarray(node).dtype)
            if bad_dtype:
                raise NLBInputError(f"{self.where}: {self.key}/{name}: {bad_dtype}")
        arr = self.array(name, shape, dims)
        check_rates(arr, f"{self.where}: {self.key}/{name}")
        return arr

    def decode_mask(self, name: str, n_trials: int) -> np.ndarray:
        """A target's decode mask: trials x masks (or one mask per trial) of 0/1 or booleans."""
        raw = np.asarray(self.raw(name))
        if raw.dtype.kind not in "biuf" or raw.ndim not in (1, 2) or len(raw) != n_trials \
                or (raw.ndim == 2 and raw.shape[1] == 0) or not np.isin(raw, (0, 1)).all():
            raise input_error(self.where, f"{self.key}/{name}: {raw.dtype} array of shape {raw.shape}",
                              f"{n_trials} trials x masks of 0/1 or booleans")
        return raw.astype(bool).reshape(n_trials, -1)

    def target(self, name: str, shape: Shape, form: str) -> np.ndarray:
        """A target array as float64; one line naming `form` unless its shape matches `shape` (None: any size)."""
        arr = self.array(name)
        if not shape_matches(arr.shape, shape):
            raise input_error(self.where, f"{self.key}/{name}: {arr.ndim}-d array of shape {arr.shape}",
                              f"{form} {shape_text(shape)}")
        return arr

    def cond_idx(self, name: str, n_cond: int, n_eval: int) -> list[np.ndarray]:
        """A target's eval trials per condition: at most `n_cond` (the PSTHs') lists of indices below `n_eval`."""
        raw = self.raw(name)
        form = f"per psth condition, a list of eval trial indices 0..{n_eval - 1}"
        if not hasattr(raw, "__len__") or isinstance(raw, (str, bytes)):
            raise input_error(self.where, f"{self.key}/{name}: not a list of conditions", form)
        if len(raw) > n_cond:
            raise input_error(self.where, f"{self.key}/psth: {n_cond} conditions but {name} lists {len(raw)}",
                              f"one PSTH per {name} condition")
        out = []
        for c, idx in enumerate(raw):
            idx = np.asarray(idx).ravel()
            ints = idx.dtype.kind in "iu" or (idx.dtype.kind == "f" and _whole_numbers(idx))
            if idx.size and (not ints or idx.min() < 0 or idx.max() >= n_eval):
                raise input_error(self.where, f"{self.key}/{name}: condition {c} lists trial(s) "
                                  f"{idx[:5].tolist()}{'...' if idx.size > 5 else ''}", form)
            out.append(idx.astype(np.int64))
        return out


def _whole_numbers(values: np.ndarray) -> bool:
    """Every value finite and whole (a float-stored index or bin shift; NaN and inf are not)."""
    return bool(np.all(np.isfinite(values) & (np.mod(values, 1) == 0)))


def _child(node: Any, name: str, where: str, label: str) -> Any:
    """node[name]; one line naming `label` if it is a link to nothing (h5py raises KeyError or OSError)."""
    try:
        return node[name]
    except (KeyError, OSError) as exc:
        text = exc.args[0] if exc.args else type(exc).__name__
        raise input_error(where, f"{label}: broken link ({text})", "an array or group stored in the file") from None


def scaling_split(bin_ms: int) -> str:
    """nlb_tools' one split for all three scaling sets at a bin width: 'mc_maze_scaling[_20]_split'."""
    return f"{SCALING_GROUP}{'' if bin_ms == 5 else f'_{bin_ms}'}_split"


def split_name(name: str, bin_ms: int) -> str:
    """nlb_tools' result split of a dataset group: '<group>_split', or the scaling sets' merged split."""
    if DATASETS[name].scaling_prefix:
        return scaling_split(bin_ms)
    return f"{DATASETS[name].result_key(bin_ms)}_split"


def metric_name(name: str, metric: str) -> str:
    """A metric's name inside its split: scaling sets prefix it with their train-trial count ('[100] co-bps')."""
    return (DATASETS[name].scaling_prefix or "") + metric


def _dims_label(dims: slice) -> str:
    names = ("trials", "bins", "neurons")
    return " x ".join(names[dims]) + " "


@contextlib.contextmanager
def open_source(src: Source, role: str, name: Optional[str] = None) -> Iterator[tuple[Any, str]]:
    """Yield (mapping-like root, display name) for a path (opened read-only) or an in-memory dict (shown as
    `name`, e.g. the run file its arrays came from)."""
    if isinstance(src, (str, os.PathLike)):
        import h5py

        path = Path(src)
        if not path.exists():
            raise input_error(str(path), "file not found")
        if path.is_dir():
            inner = path / "submission.h5"
            raise input_error(str(path), "is a folder", f"an HDF5 file, e.g. {inner}" if inner.is_file()
                              else "an HDF5 file")
        if not h5py.is_hdf5(path):
            raise input_error(str(path), "not an HDF5 file")
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise input_error(str(path), f"unreadable HDF5 file ({exc})") from None
        with f:
            yield f, str(path)
    elif isinstance(src, Mapping) or hasattr(src, "keys"):
        yield src, name or f"<{role} dict>"
    else:
        raise NLBInputError(f"{role}: expected a path or a dict of dataset groups, got {type(src).__name__}")


def _is_group(node: Any) -> bool:
    return isinstance(node, Mapping) or (hasattr(node, "keys") and not hasattr(node, "dtype"))


def _group(root: Any, key: str, where: str, expected: str) -> _Group:
    """Dataset group `key` of a target or submission root; one line if it is not a group or a broken link."""
    node = _child(root, key, where, key)
    if not _is_group(node):
        raise input_error(where, f"{key}: not a group", expected)
    return _Group(node, where, key)


def target_arrays(name: str, tgt: _Group) -> dict[str, Any]:
    """A target group's arrays, checked up front against each other's trial, bin and neuron counts (one line
    naming the target's field if not); optional arrays the target lacks are None."""
    spikes = tgt.array("eval_spikes_heldout")
    if spikes.ndim != 3:
        raise input_error(tgt.where, f"{tgt.key}/eval_spikes_heldout: {spikes.ndim}-d array",
                          "trials x bins x neurons")
    n_eval, n_bins, n_out = spikes.shape
    out: dict[str, Any] = dict(spikes=spikes, fs_in=None, fs_out=None, psth=None, cond_idx=None, jitter=None)
    if "eval_spikes_heldin_forward" in tgt:
        out["fs_in"] = tgt.target("eval_spikes_heldin_forward", (n_eval, None, None),
                                  "eval trials x forward bins x held-in neurons")
        if "eval_spikes_heldout_forward" in tgt:
            out["fs_out"] = tgt.target("eval_spikes_heldout_forward", (n_eval, out["fs_in"].shape[1], n_out),
                                       "eval trials x forward bins x held-out neurons")
    n_in = out["fs_in"].shape[2] if out["fs_in"] is not None else None
    if name == "dmfc_rsg":
        fields = DATASETS[name].behavior_fields
        out["eval_beh"] = tgt.target("eval_behavior", (n_eval, len(fields)),
                                     f"eval trials x ({', '.join(fields)})")
    else:
        train = tgt.target("train_behavior", (None, None, None), "train trials x bins x behaviour dims")
        out["train_beh"] = train
        out["eval_beh"] = tgt.target("eval_behavior", (n_eval, n_bins, train.shape[2]),
                                     "eval trials x bins x behaviour dims, as in train_behavior")
        for field, beh in (("train_behavior", train), ("eval_behavior", out["eval_beh"])):
            if not np.isfinite(beh[..., 0]).any():
                raise input_error(tgt.where, f"{tgt.key}/{field}: no finite value in the first behaviour dim",
                                  "behaviour samples to fit and score the velocity decoder on")
    if "psth" in tgt:
        psth = tgt.target("psth", (None, n_bins, None if n_in is None else n_in + n_out),
                          "conditions x bins x held-in + held-out neurons")
        out["psth"] = psth
        out["cond_idx"] = tgt.cond_idx("eval_cond_idx", len(psth), n_eval)
        if "eval_jitter" in tgt:
            jitter = tgt.target("eval_jitter", (n_eval,), "one bin shift per eval trial")
            if not _whole_numbers(jitter):
                raise input_error(tgt.where, f"{tgt.key}/eval_jitter: not all whole numbers",
                                  "one whole-bin shift per eval trial")
            out["jitter"] = jitter
    return out


def score_group(name: str, tgt: _Group, sub: _Group) -> GroupScore:
    """All metrics of one dataset group, in nlb_tools' order: co-bps, tp corr | vel R2, psth R2, fp-bps."""
    t = target_arrays(name, tgt)
    spikes = t["spikes"]
    n_eval, n_bins, n_out = spikes.shape
    n_in = t["fs_in"].shape[2] if t["fs_in"] is not None else None
    eval_out = sub.rates("eval_rates_heldout", spikes.shape)
    eval_in = sub.rates("eval_rates_heldin", (n_eval, n_bins), slice(0, 2))
    if eval_in.ndim != 3 or (n_in is not None and eval_in.shape[2] != n_in):
        raise input_error(sub.where, f"{sub.key}/eval_rates_heldin: shape {eval_in.shape}",
                          f"{(n_eval, n_bins, n_in if n_in is not None else 'held-in neurons')}")
    eval_rates = np.concatenate([eval_in, eval_out], axis=-1)
    what = f"{sub.where}: {sub.key}/eval_rates_heldout"
    model, null, s, valid = M.nll_terms(eval_out, spikes, what)
    metrics = {"co-bps": M.bps_from_terms(model, null, s)}
    score = GroupScore(metrics, M.bps_per_neuron_from_terms(model, null, s), n_eval)
    score.boot["co-bps"] = B.bps_trial_sums(model, s, valid)

    if name == "dmfc_rsg":
        behavior = t["eval_beh"]
        what = f"{sub.where}: {sub.key}/eval_rates_heldin+heldout"
        metrics["tp corr"] = M.speed_tp_correlation(spikes, eval_rates, behavior, what)
        masks = ~np.isnan(spikes[..., 0])
        score.boot["tp corr"] = (M.neural_speed(eval_rates, masks), behavior[:, -1], M.tp_conditions(behavior))
    else:
        train_beh, eval_beh = t["train_beh"], t["eval_beh"]
        n_train, n_train_bins = train_beh.shape[:2]
        train_in = sub.rates("train_rates_heldin", (n_train, n_train_bins, eval_in.shape[2]))
        train_out = sub.rates("train_rates_heldout", (n_train, n_train_bins, n_out))
        train_rates = np.concatenate([train_in, train_out], axis=-1)
        has_mask = "train_decode_mask" in tgt
        tmask = tgt.decode_mask("train_decode_mask", n_train) if has_mask else None
        emask = tgt.decode_mask("eval_decode_mask", n_eval) if has_mask else None
        if has_mask and tmask.shape[1] != emask.shape[1]:
            raise input_error(tgt.where, f"{tgt.key}/eval_decode_mask: {emask.shape[1]} masks",
                              f"{tmask.shape[1]}, as in train_decode_mask")
        parts = M.velocity_decoding_parts(train_rates, train_beh, tmask, eval_rates, eval_beh, emask,
                                          f"{sub.where}: {sub.key}")
        metrics["vel R2"] = float(np.mean([r2 for r2, _ in parts]))
        score.boot["vel R2"] = [p for _, p in parts]

    if t["psth"] is not None:
        what = f"{sub.where}: {sub.key}/eval_rates (psth R2)"
        rows = M.psth_rows(t["psth"], eval_rates, t["cond_idx"], t["jitter"], what)
        metrics["psth R2"] = M.psth_r2_of_rows(rows)
        score.boot["psth R2"] = rows

    if "eval_rates_heldin_forward" in sub and t["fs_in"] is not None:
        fs_in = t["fs_in"]
        fs_out = t["fs_out"] if t["fs_out"] is not None else tgt.array("eval_spikes_heldout_forward")
        fr_in = sub.rates("eval_rates_heldin_forward", fs_in.shape)
        fr_out = sub.rates("eval_rates_heldout_forward", fs_out.shape)
        fs, fr = np.dstack([fs_in, fs_out]), np.dstack([fr_in, fr_out])
        what = f"{sub.where}: {sub.key}/eval_rates_heldin_forward+heldout_forward"
        model, null, s, valid = M.nll_terms(fr, fs, what)
        metrics["fp-bps"] = M.bps_from_terms(model, null, s)
        score.boot["fp-bps"] = B.bps_trial_sums(model, s, valid)
    return score


@blas_threads(DEFAULT_BLAS_THREADS)  # compare() and the report's paired intervals resample outside evaluate_report
def bootstrap_values(score: GroupScore, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Every metric of one group on `n_boot` seeded resamples of eval trials (same seed = same resamples);
    psth R2 on seeded resamples of conditions (B.boot_psth says why)."""
    counts = B.resample_counts(score.n_eval_trials, n_boot, seed)
    out: dict[str, np.ndarray] = {}
    for key in score.metrics:
        data = score.boot[key]
        if key in ("co-bps", "fp-bps"):
            out[key] = B.boot_bps(data, counts)
        elif key == "vel R2":
            out[key] = B.boot_vel(data, score.n_eval_trials, counts)
        elif key == "psth R2":
            out[key] = B.boot_psth(data, B.resample_counts(len(data), n_boot, seed))
        else:
            out[key] = B.boot_tp(*data, counts)
    return out


def bootstrap_group(score: GroupScore, n_boot: int, seed: int, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile intervals of every metric of one group over `n_boot` seeded resamples of eval trials."""
    return {k: B.percentile_interval(v, level) for k, v in bootstrap_values(score, n_boot, seed).items()}


def compare(a: Report, b: Report, n_boot: int, seed: int = 0, level: float = 0.95) -> list[list[Any]]:
    """Paired comparison on shared groups: rows [split, metric, a, b, a - b, lo, hi, share of resamples a > b]."""
    rows = []
    for key, ga in a.groups.items():
        gb = b.groups.get(key)
        if gb is None:
            continue
        if gb.n_eval_trials != ga.n_eval_trials:
            raise NLBInputError(f"{key}: the two submissions have {ga.n_eval_trials} and {gb.n_eval_trials} "
                                "eval trials (expected the same target)")
        va, vb = bootstrap_values(ga, n_boot, seed), bootstrap_values(gb, n_boot, seed)
        for m in ga.metrics:
            if m not in gb.metrics:
                continue
            name, bin_ms = group_dataset(key)
            rows.append([split_name(name, bin_ms), metric_name(name, m), ga.metrics[m], gb.metrics[m],
                         ga.metrics[m] - gb.metrics[m],
                         *B.paired_interval(va[m], vb[m], level, observed=ga.metrics[m] - gb.metrics[m])])
    return rows


def _collect(grouped: list[tuple[str, int, str, dict]]) -> list[dict]:
    """Arrange per-group dicts like nlb_tools: main datasets in order, then the merged scaling splits."""
    out, scaling = [], {5: {}, 20: {}}
    for name, bin_ms, _key, val in grouped:
        if DATASETS[name].scaling_prefix:
            scaling[bin_ms].update({metric_name(name, k): v for k, v in val.items()})
        else:
            out.append({split_name(name, bin_ms): val})
    return out + [{scaling_split(bin_ms): merged} for bin_ms, merged in scaling.items() if merged]


@blas_threads(DEFAULT_BLAS_THREADS)
def evaluate_report(target: Source, submission: Source, ci: int = 0, seed: int = 0,
                    level: float = 0.95, submission_name: Optional[str] = None) -> Report:
    """Score every dataset group the submission and target share; optional bootstrap intervals. BLAS is held
    to DEFAULT_BLAS_THREADS, so the scores' last bits do not depend on the machine's core count.
    `submission_name`: what messages call an in-memory submission."""
    check_bootstrap(ci, seed, level)
    grouped, intervals, groups, notes, unscorable = [], [], {}, [], []
    with open_source(target, "target") as (troot, tname), open_source(submission, "submission", submission_name) as (sroot, sname):
        for name in DATASETS:
            for bin_ms, suf in BINS:
                key = name + suf
                if key not in sroot.keys():
                    continue
                sub = _group(sroot, key, sname, "a group of rate arrays")
                tgt = _group(troot, key, tname, "a group of eval target arrays") if key in troot.keys() else None
                if "eval_rates_heldout" not in sub:
                    notes.append(f"{sname}: {key}: no eval_rates_heldout; group skipped")
                    if tgt is not None:
                        unscorable.append(notes[-1])
                    continue
                if tgt is None or "eval_spikes_heldout" not in tgt:
                    notes.append(f"{tname}: no evaluation data for {key}; group skipped")
                    if tgt is not None:
                        unscorable.append(notes[-1])
                    continue
                score = score_group(name, tgt, sub)
                groups[key] = score
                grouped.append((name, bin_ms, key, score.metrics))
                if ci:
                    intervals.append((name, bin_ms, key, bootstrap_group(score, ci, seed, level)))
        if not groups and unscorable:  # groups in common, none scorable: say why (--target and --submission swapped?)
            raise input_error(sname, "nothing scored: " + "; ".join(n.removesuffix("; group skipped") for n in unscorable),
                              "a submission with eval_rates_heldout and a target with eval_spikes_heldout for the "
                              "same group: are --target and --submission swapped?")
        if not groups:
            known = sorted(k for k in sroot.keys())
            raise input_error(sname, f"no dataset group in common with {tname}",
                              f"one of {', '.join(sorted(troot.keys()))}; found {', '.join(known) or 'none'}")
    return Report(_collect(grouped), groups, _collect(intervals) if ci else [], notes)


def evaluate(target: Source, submission: Source) -> list[dict[str, dict[str, float]]]:
    """Drop-in for nlb_tools.evaluation.evaluate: paths or dicts in, the same result list out."""
    return evaluate_report(target, submission).results
