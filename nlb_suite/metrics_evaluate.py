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
from .datasets.specs import DATASETS, SCALING_GROUP
from .errors import NLBInputError, check_seed, input_error
from .rate_check import check_rates, dtype_problem
from .submission import group_dataset

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

    def raw(self, name: str) -> Any:
        if name not in self:
            raise input_error(self.where, f"{self.key}/{name}: array missing")
        val = self.node[name]
        return val[()] if hasattr(val, "dtype") and not isinstance(val, np.ndarray) else val

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
            node = self.node[name]
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


def score_group(name: str, tgt: _Group, sub: _Group) -> GroupScore:
    """All metrics of one dataset group, in nlb_tools' order: co-bps, tp corr | vel R2, psth R2, fp-bps."""
    spikes = tgt.array("eval_spikes_heldout")
    if spikes.ndim != 3:
        raise input_error(tgt.where, f"{tgt.key}/eval_spikes_heldout: {spikes.ndim}-d array",
                          "trials x bins x neurons")
    n_eval, n_bins, n_out = spikes.shape
    n_in = tgt.raw("eval_spikes_heldin_forward").shape[2] if "eval_spikes_heldin_forward" in tgt else None
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
        behavior = tgt.array("eval_behavior", (n_eval,), slice(0, 1))
        what = f"{sub.where}: {sub.key}/eval_rates_heldin+heldout"
        metrics["tp corr"] = M.speed_tp_correlation(spikes, eval_rates, behavior, what)
        masks = ~np.isnan(spikes[..., 0])
        score.boot["tp corr"] = (M.neural_speed(eval_rates, masks), behavior[:, -1], M.tp_conditions(behavior))
    else:
        train_beh = tgt.array("train_behavior")
        eval_beh = tgt.array("eval_behavior", (n_eval, n_bins), slice(0, 2))
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

    if "psth" in tgt:
        psth = tgt.array("psth")
        cond_idx = tgt.raw("eval_cond_idx")
        jitter = tgt.raw("eval_jitter") if "eval_jitter" in tgt else None
        what = f"{sub.where}: {sub.key}/eval_rates (psth R2)"
        rows = M.psth_rows(psth, eval_rates, cond_idx, jitter, what)
        metrics["psth R2"] = M.psth_r2_of_rows(rows)
        score.boot["psth R2"] = rows

    if "eval_rates_heldin_forward" in sub and "eval_spikes_heldin_forward" in tgt:
        fs_in = tgt.array("eval_spikes_heldin_forward")
        fs_out = tgt.array("eval_spikes_heldout_forward")
        fr_in = sub.rates("eval_rates_heldin_forward", fs_in.shape)
        fr_out = sub.rates("eval_rates_heldout_forward", fs_out.shape)
        fs, fr = np.dstack([fs_in, fs_out]), np.dstack([fr_in, fr_out])
        what = f"{sub.where}: {sub.key}/eval_rates_heldin_forward+heldout_forward"
        model, null, s, valid = M.nll_terms(fr, fs, what)
        metrics["fp-bps"] = M.bps_from_terms(model, null, s)
        score.boot["fp-bps"] = B.bps_trial_sums(model, s, valid)
    return score


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


def evaluate_report(target: Source, submission: Source, ci: int = 0, seed: int = 0,
                    level: float = 0.95, submission_name: Optional[str] = None) -> Report:
    """Score every dataset group the submission and target share; optional bootstrap intervals.
    `submission_name`: what messages call an in-memory submission."""
    check_bootstrap(ci, seed, level)
    grouped, intervals, groups, notes, unscorable = [], [], {}, [], []
    with open_source(target, "target") as (troot, tname), open_source(submission, "submission", submission_name) as (sroot, sname):
        for name in DATASETS:
            for bin_ms, suf in BINS:
                key = name + suf
                if key not in sroot.keys():
                    continue
                if not _is_group(sroot[key]):
                    raise input_error(sname, f"{key}: not a group", "a group of rate arrays")
                sub = _Group(sroot[key], sname, key)
                if "eval_rates_heldout" not in sub:
                    notes.append(f"{sname}: {key}: no eval_rates_heldout; group skipped")
                    if key in troot.keys():
                        unscorable.append(notes[-1])
                    continue
                if key not in troot.keys() or "eval_spikes_heldout" not in troot[key].keys():
                    notes.append(f"{tname}: no evaluation data for {key}; group skipped")
                    if key in troot.keys():
                        unscorable.append(notes[-1])
                    continue
                score = score_group(name, _Group(troot[key], tname, key), sub)
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
