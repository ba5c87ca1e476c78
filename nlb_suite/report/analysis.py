"""The numbers behind the report's plots: PSTHs, single trials, trajectories and decoding, per model."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import metrics as M
from ..datasets.specs import get_dataset
from .build import GroupData

# Behaviour units as recorded in the NLB NWB files (velocities of hand/finger position).
VELOCITY_UNITS = {"area2_bump": "cm/s"}
DEFAULT_VELOCITY_UNITS = "mm/s"


def hz(x: np.ndarray, bin_ms: int) -> np.ndarray:
    """Spikes per bin -> spikes per second."""
    return np.asarray(x, dtype=np.float64) * (1000.0 / bin_ms)


def time_axis(group: GroupData, n_bins: int) -> tuple[np.ndarray, str]:
    """Bin start times (ms) relative to the window's alignment event, and the axis label."""
    spec = get_dataset(group.dataset)
    w = spec.train_window
    start = (w.offsets or (0, 0))[0]
    event = {"start_time": "segment start", "move_onset_time": "movement onset",
             "go_time": "go cue"}.get(w.align_field, w.align_field)
    return start + group.bin_ms * np.arange(n_bins), f"time from {event} (ms)"


def model_eval_rates(rates: dict[str, np.ndarray], which: str = "all") -> np.ndarray:
    """Eval rates (trials x bins x units): held-in + held-out ('all'), or one of them."""
    if which == "heldin":
        return rates["eval_rates_heldin"]
    if which == "heldout":
        return rates["eval_rates_heldout"]
    return np.concatenate([rates["eval_rates_heldin"], rates["eval_rates_heldout"]], axis=-1)


def _gauss_smooth(x: np.ndarray, sd_bins: float, axis: int) -> np.ndarray:
    """Normalised Gaussian smoothing along one axis (edges renormalised)."""
    half = int(np.ceil(3 * sd_bins))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / max(sd_bins, 1e-9)) ** 2)
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    num = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), -1, x)
    den = np.convolve(np.ones(x.shape[-1]), k, mode="same")
    return np.moveaxis(num / den, -1, axis)


@dataclass
class PsthPanels:
    """Condition-averaged rates (Hz) per condition x neuron: the data, each model, the truth."""

    time: np.ndarray
    time_label: str
    conds: list[str]
    neurons: list[str]
    data: np.ndarray  # conds x bins x neurons
    data_label: str
    models: dict[str, np.ndarray] = field(default_factory=dict)
    truth: Optional[np.ndarray] = None


def _cond_trials(group: GroupData) -> list[tuple[str, np.ndarray]]:
    """(name, eval trial indices) of every condition with eval trials, most trials first."""
    t = group.tensors
    if t.target is not None and "eval_cond_idx" in t.target:
        names = [", ".join(f"{f}={v:g}" for f, v in zip(group.cond_fields, c)) for c in t.extras["conditions"]]
        pairs = [(names[i], np.asarray(idx, dtype=np.int64).ravel()) for i, idx in enumerate(t.target["eval_cond_idx"])]
    elif group.cond_index is not None:
        pairs = [(name, np.flatnonzero(group.cond_index == i)) for i, name in enumerate(group.cond_names)]
    else:
        return []
    pairs = [(n, idx, i) for i, (n, idx) in enumerate(pairs) if len(idx)]
    pairs.sort(key=lambda p: (-len(p[1]), p[2]))
    return [(n, idx) for n, idx, _ in pairs]


def psth_panels(group: GroupData, n_conds: int = 4, n_neurons: int = 3) -> Optional[PsthPanels]:
    """PSTHs of the most-sampled conditions for the most modulated neurons (held-out ones in phase val)."""
    t = group.tensors
    conds = _cond_trials(group)[:n_conds]
    if not conds or not group.models:
        return None
    spec = get_dataset(group.dataset)
    n_in = t.eval_spikes_heldin.shape[2]
    has_target = t.target is not None and "psth" in t.target
    jitter = t.target.get("eval_jitter") if has_target else None
    if has_target:
        cond_pos = {n: i for i, n in enumerate(
            ", ".join(f"{f}={v:g}" for f, v in zip(group.cond_fields, c)) for c in t.extras["conditions"])}
        data = np.stack([t.target["psth"][cond_pos[n]] for n, _ in conds])
        cols = n_in + np.arange(data.shape[2] - n_in)
        label = f"data (PSTH target: spikes smoothed σ={spec.psth.kern_sd_ms} ms, trial-averaged)"
        which = "all"
    else:
        spikes = _gauss_smooth(t.eval_spikes_heldin, spec.psth.kern_sd_ms / group.bin_ms, axis=1)
        data = np.stack([spikes[idx].mean(axis=0) for _, idx in conds])
        cols = np.arange(n_in)
        label = f"data (held-in eval spikes smoothed σ={spec.psth.kern_sd_ms} ms, trial-averaged)"
        which = "heldin"
    with np.errstate(invalid="ignore"):
        spread = np.nanvar(data[:, :, cols].reshape(-1, len(cols)), axis=0)
    order = cols[np.argsort(-np.nan_to_num(spread, nan=-1.0), kind="stable")[:n_neurons]]
    time, tlabel = time_axis(group, data.shape[1])
    kind = "held-out" if which == "all" else "held-in"
    names = [f"{kind} neuron {c - (n_in if which == 'all' else 0)}" for c in order]
    col_in_model = order if which == "all" else order
    out = PsthPanels(time, tlabel, [n for n, _ in conds], names, hz(data[:, :, order], group.bin_ms), label)
    for run in group.models:
        rates = M.jitter_trials(model_eval_rates(run.rates, which), jitter)
        out.models[run.label] = hz(np.stack([np.nanmean(rates[idx], axis=0) for _, idx in conds])[:, :, col_in_model],
                                   group.bin_ms)
    if group.truth_eval is not None:
        truth = np.concatenate([group.truth_eval["heldin"], group.truth_eval["heldout"]], axis=-1)
        if which == "heldin":
            truth = group.truth_eval["heldin"]
        truth = M.jitter_trials(truth, jitter)
        out.truth = hz(np.stack([np.nanmean(truth[idx], axis=0) for _, idx in conds])[:, :, order], group.bin_ms)
    return out


@dataclass
class SingleTrial:
    """One eval trial: spikes and rates (Hz) of a few neurons, per model and (synthetic) the truth."""

    trial: int
    time: np.ndarray
    time_label: str
    neurons: list[str]
    spikes: np.ndarray  # bins x neurons, counts (NaN: outside the scored window)
    models: dict[str, np.ndarray] = field(default_factory=dict)
    truth: Optional[np.ndarray] = None
    kind: str = "held-out"


def single_trial(group: GroupData, n_neurons: int = 3) -> Optional[SingleTrial]:
    """The eval trial with the median spike count; the neurons that fire most in it."""
    t = group.tensors
    if not group.models:
        return None
    if t.target is not None:
        spikes, kind, key = t.target["eval_spikes_heldout"], "held-out", "heldout"
    else:
        spikes, kind, key = t.eval_spikes_heldin, "held-in", "heldin"
    totals = np.nansum(spikes, axis=(1, 2))
    trial = int(np.argsort(totals, kind="stable")[len(totals) // 2])
    s = spikes[trial]
    cols = np.argsort(-np.nansum(s, axis=0), kind="stable")[:n_neurons]
    time, tlabel = time_axis(group, s.shape[0])
    out = SingleTrial(trial, time, tlabel, [f"{kind} neuron {c}" for c in cols], s[:, cols], kind=kind)
    for run in group.models:
        out.models[run.label] = hz(model_eval_rates(run.rates, key)[trial][:, cols], group.bin_ms)
    if group.truth_eval is not None:
        out.truth = hz(group.truth_eval[key][trial][:, cols], group.bin_ms)
    return out


@dataclass
class Trajectories:
    """Top-2 PC projections of condition-averaged rates, per model: label -> list of (bins x 2)."""

    names: list[str]
    models: dict[str, list[np.ndarray]]
    variance: dict[str, float]
    by_trial: bool
    time_label: str


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Project samples x features on the top two principal components; share of variance they explain."""
    xc = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2
    return xc @ vt[:2].T, float(var[:2].sum() / var.sum()) if var.sum() > 0 else float("nan")


def trajectories(group: GroupData, n_conds: int = 8) -> Optional[Trajectories]:
    """Condition averages (or single trials when there are no conditions) in each model's own top-2 PCs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins (jitter padding) are dropped below
        return _trajectories(group, n_conds)


def _trajectories(group: GroupData, n_conds: int) -> Optional[Trajectories]:
    if not group.models:
        return None
    conds = _cond_trials(group)[:n_conds]
    n_eval = len(group.tensors.eval_trial_ids)
    by_trial = not conds
    if by_trial:
        conds = [(f"eval trial {i}", np.array([i])) for i in range(min(n_conds, n_eval))]
    sources = {run.label: model_eval_rates(run.rates) for run in group.models}
    if group.truth_eval is not None:
        sources["true rates"] = np.concatenate([group.truth_eval["heldin"], group.truth_eval["heldout"]], axis=-1)
    jitter = group.tensors.target.get("eval_jitter") if group.tensors.target is not None else None
    out = Trajectories([n for n, _ in conds], {}, {}, by_trial, "")
    for label, rates in sources.items():
        rates = hz(M.jitter_trials(rates, jitter), group.bin_ms)
        means = np.stack([np.nanmean(rates[idx], axis=0) for _, idx in conds])  # conds x bins x units
        keep = ~np.isnan(means).any(axis=(0, 2))
        means = means[:, keep]
        proj, var = pca_2d(means.reshape(-1, means.shape[2]))
        out.models[label] = list(proj.reshape(len(conds), -1, 2))
        out.variance[label] = var
    return out


@dataclass
class Decoding:
    """Decoded vs recorded velocity on a few eval trials, per model, with each model's R^2."""

    trials: list[int]
    time: list[np.ndarray]
    true: list[np.ndarray]  # per trial: samples x 2
    models: dict[str, list[np.ndarray]]
    r2: dict[str, float]
    time_label: str
    units: str
    field: str


def decoding(group: GroupData, n_trials: int = 3) -> Optional[Decoding]:
    """Ridge decoders fitted as the vel R2 metric fits them; predictions on the first eval trials of each mask."""
    t = group.tensors
    if t.target is None or "eval_behavior" not in t.target or group.dataset == "dmfc_rsg" or not group.models:
        return None
    tgt = t.target
    spec = get_dataset(group.dataset)
    ev_b, tr_b = tgt["eval_behavior"], tgt["train_behavior"]
    tmask, emask = tgt.get("train_decode_mask"), tgt.get("eval_decode_mask")
    out: Optional[Decoding] = None
    for run in group.models:
        r = run.rates
        train = np.concatenate([r["train_rates_heldin"], r["train_rates_heldout"]], axis=-1)
        parts = M.velocity_decoding_parts(train, tr_b, tmask, model_eval_rates(r), ev_b, emask)
        if out is None:
            trials = _pick_trials([rows for _, (_, _, rows) in parts], n_trials)
            time, tlabel = time_axis(group, ev_b.shape[1])
            keep = [~np.isnan(ev_b[i, :, 0]) for i in trials]
            out = Decoding(trials, [time[k] for k in keep], [ev_b[i][k] for i, k in zip(trials, keep)], {}, {},
                           tlabel, VELOCITY_UNITS.get(group.dataset, DEFAULT_VELOCITY_UNITS),
                           spec.behavior_fields[0])
        pred = {}
        for _, (_, p, rows) in parts:
            for i in out.trials:
                if i in rows and i not in pred:
                    pred[i] = p[rows == i]
        out.models[run.label] = [pred[i] for i in out.trials]
        out.r2[run.label] = float(np.mean([r2 for r2, _ in parts]))
    return out


def _pick_trials(rows_per_part: list[np.ndarray], n: int) -> list[int]:
    """Up to n eval trials, taken in turn from each decoder's trials (area2_bump: active and passive)."""
    pools = [list(dict.fromkeys(np.asarray(r).tolist())) for r in rows_per_part]
    picked: list[int] = []
    while len(picked) < n and any(pools):
        for pool in pools:
            while pool and pool[0] in picked:
                pool.pop(0)
            if pool and len(picked) < n:
                picked.append(pool.pop(0))
    return picked


@dataclass
class SpeedTp:
    """dmfc_rsg: neural speed vs produced interval per eval trial, per model (the tp corr metric)."""

    tp: np.ndarray
    cond: np.ndarray  # condition index per trial (-1: outlier / none)
    cond_names: list[str]
    models: dict[str, np.ndarray]
    corr: dict[str, float]


def speed_tp(group: GroupData) -> Optional[SpeedTp]:
    """Neural speed over set->go (Hz per bin) against tp, as the tp corr metric computes it."""
    t = group.tensors
    if group.dataset != "dmfc_rsg" or t.target is None or not group.models:
        return None
    beh = t.target["eval_behavior"]
    masks = ~np.isnan(t.target["eval_spikes_heldout"][..., 0])
    cond_masks = M.tp_conditions(beh)
    cond = np.full(len(beh), -1)
    for i, m in enumerate(cond_masks):
        cond[m] = i
    conds = np.unique(beh[:, :3][cond >= 0], axis=0) if (cond >= 0).any() else np.zeros((0, 3))
    names = [f"is_eye={c[0]:g}, theta={c[1]:g}, is_short={c[2]:g}" for c in conds]
    out = SpeedTp(beh[:, -1], cond, names, {}, {})
    for run in group.models:
        rates = model_eval_rates(run.rates)
        out.models[run.label] = hz(M.neural_speed(rates, masks), group.bin_ms)
        out.corr[run.label] = M.speed_tp_correlation(t.target["eval_spikes_heldout"], rates, beh)
    return out
