"""NLB'21 metrics on plain arrays, numerically identical to nlb_tools.evaluation (numpy only)."""

from __future__ import annotations

import warnings

import numpy as np

from .errors import NLBInputError
from .metrics_ridge import ALPHAS, ridge_grid_search_r2
from .rate_check import check_rates

__all__ = [
    "ALPHAS", "bits_per_spike", "bits_per_spike_per_neuron", "neg_log_likelihood", "r2_score",
    "pearson_r", "velocity_decoding", "psth_r2", "jitter_trials", "neural_speed", "speed_tp_correlation",
]

ZERO_RATE = 1e-9
LN2 = float(np.log(2))


def _check_rates(rates: np.ndarray, valid: np.ndarray, what: str) -> None:
    """Reject NaN, infinite or negative rates where spikes are not NaN (the shared rule of rate_check)."""
    check_rates(np.where(valid, rates, 0.0), what)


def _pair(rates: np.ndarray, spikes: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    rates = np.asarray(rates, dtype=np.float64)
    spikes = np.asarray(spikes, dtype=np.float64)
    if rates.shape != spikes.shape:
        raise NLBInputError(f"{what}: rates have shape {rates.shape} (expected {spikes.shape}, the spikes' shape)")
    return rates, spikes


def nll_terms(rates: np.ndarray, spikes: np.ndarray, what: str) -> tuple[np.ndarray, ...]:
    """Per-element Poisson NLL (minus the log n! term, which cancels) of model and null; 0 where spikes are NaN."""
    rates, spikes = _pair(rates, spikes, what)
    valid = ~np.isnan(spikes)
    _check_rates(rates, valid, what)
    s = np.where(valid, spikes, 0.0)
    r = np.where(valid, rates, 1.0)
    r[r == 0] = ZERO_RATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        null = np.nanmean(spikes, axis=tuple(range(spikes.ndim - 1)), keepdims=True)
    null = np.where(null == 0, ZERO_RATE, np.nan_to_num(null, nan=1.0))
    null = np.broadcast_to(null, spikes.shape)
    model = np.where(valid, r - s * np.log(r), 0.0)
    null_t = np.where(valid, null - s * np.log(null), 0.0)
    return model, null_t, s, valid


def neg_log_likelihood(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Total Poisson NLL sum(r - n log r + log n!) over non-NaN spikes; zero rates count as 1e-9."""
    from math import lgamma

    rates, spikes = _pair(rates, spikes, "neg_log_likelihood")
    valid = ~np.isnan(spikes)
    _check_rates(rates, valid, "neg_log_likelihood")
    r, s = rates[valid], spikes[valid]
    r = np.where(r == 0, ZERO_RATE, r)
    counts, inv = np.unique(s, return_inverse=True)
    log_fact = np.array([lgamma(c + 1.0) for c in counts])[inv]
    return float(np.sum(r - s * np.log(r) + log_fact))


def bits_per_spike(rates: np.ndarray, spikes: np.ndarray, what: str = "bits_per_spike") -> float:
    """Pooled bits per spike: (NLL of per-neuron mean-rate null - NLL of rates) / total spikes / ln 2."""
    return bps_from_terms(*nll_terms(rates, spikes, what)[:3])


def bits_per_spike_per_neuron(rates: np.ndarray, spikes: np.ndarray, what: str = "bits_per_spike") -> np.ndarray:
    """Bits per spike of each neuron (last axis) on its own; NaN for a neuron without spikes."""
    return bps_per_neuron_from_terms(*nll_terms(rates, spikes, what)[:3])


def bps_from_terms(model: np.ndarray, null: np.ndarray, s: np.ndarray) -> float:
    """Pooled bits per spike from `nll_terms` output."""
    return float((np.sum(null) - np.sum(model)) / np.sum(s) / LN2)


def bps_per_neuron_from_terms(model: np.ndarray, null: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Per-neuron bits per spike from `nll_terms` output."""
    axes = tuple(range(s.ndim - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (null.sum(axis=axes) - model.sum(axis=axes)) / s.sum(axis=axes) / LN2


def r2_columns(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R^2 of each column as sklearn's r2_score computes it (constant truth: 1 if exact, else 0)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    ss_res = np.sum((y_true - y_pred) ** 2, axis=0)
    ss_tot = np.sum((y_true - np.mean(y_true, axis=0)) ** 2, axis=0)
    return r2_from_sums(ss_res, ss_tot)


def r2_from_sums(ss_res: np.ndarray, ss_tot: np.ndarray) -> np.ndarray:
    """1 - ss_res/ss_tot with sklearn's force_finite rule for ss_tot == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    return np.where(ss_tot != 0, r2, np.where(ss_res == 0, 1.0, 0.0))


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sklearn.metrics.r2_score with multioutput='uniform_average' (mean of per-column R^2)."""
    return float(np.mean(r2_columns(y_true, y_pred)))


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when fewer than 2 samples or either input is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 2:
        return float("nan")
    xm, ym = x - x.mean(), y - y.mean()
    den = np.sqrt(np.sum(xm * xm) * np.sum(ym * ym))
    if not den > 0:
        return float("nan")
    return float(np.clip(np.sum(xm * ym) / den, -1.0, 1.0))


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1]) if x.ndim > 2 else x


def decoder_data(rates: np.ndarray, behavior: np.ndarray, mask: np.ndarray, what: str) -> tuple[np.ndarray, ...]:
    """Flatten the masked trials to samples, drop samples whose first behaviour column is NaN."""
    n_bins = rates.shape[1] if rates.ndim > 2 else 1
    if mask.all():  # views, no copies
        x, y, rows = _flat(rates), _flat(behavior), np.arange(len(rates)).repeat(n_bins)
    else:
        x, y = _flat(rates[mask]), _flat(behavior[mask])
        rows = np.flatnonzero(mask).repeat(n_bins)
    keep = ~np.isnan(y[:, 0])
    if not keep.all():
        x, y, rows = x[keep], y[keep], rows[keep]
    if np.isnan(x).any():
        raise NLBInputError(f"{what}: {int(np.isnan(x).any(axis=1).sum())} NaN rate sample(s) within "
                            "required trial times (expected finite rates)")
    return x, y, rows


def velocity_decoding(train_rates: np.ndarray, train_behavior: np.ndarray, train_mask: np.ndarray | None,
                      eval_rates: np.ndarray, eval_behavior: np.ndarray, eval_mask: np.ndarray | None,
                      what: str = "vel R2") -> float:
    """Mean over decode masks of eval R^2 of a ridge decoder grid-searched (5-fold CV) on train rates."""
    return float(np.mean([r2 for r2, _ in velocity_decoding_parts(
        train_rates, train_behavior, train_mask, eval_rates, eval_behavior, eval_mask, what)]))


def velocity_decoding_parts(train_rates, train_behavior, train_mask, eval_rates, eval_behavior, eval_mask,
                            what: str = "vel R2") -> list[tuple[float, tuple[np.ndarray, ...]]]:
    """Per decode mask: (eval R^2, (eval truth, eval prediction, eval trial of each sample))."""
    train_rates = np.asarray(train_rates, dtype=np.float64)
    eval_rates = np.asarray(eval_rates, dtype=np.float64)
    train_behavior = np.asarray(train_behavior, dtype=np.float64)
    eval_behavior = np.asarray(eval_behavior, dtype=np.float64)
    if train_mask is None:
        train_mask = np.ones((len(train_rates), 1), dtype=bool)
    if eval_mask is None:
        eval_mask = np.ones((len(eval_rates), 1), dtype=bool)
    train_mask = np.asarray(train_mask).astype(bool).reshape(len(train_rates), -1)
    eval_mask = np.asarray(eval_mask).astype(bool).reshape(len(eval_rates), -1)
    parts = []
    for i in range(train_mask.shape[1]):
        xt, yt, _ = decoder_data(train_rates, train_behavior, train_mask[:, i], f"{what}: train rates")
        xe, ye, rows = decoder_data(eval_rates, eval_behavior, eval_mask[:, i], f"{what}: eval rates")
        r2, pred = ridge_grid_search_r2(xt, yt, xe, ye)
        parts.append((r2, (ye, pred, rows)))
    return parts


def jitter_trials(rates: np.ndarray, jitter: np.ndarray | None) -> np.ndarray:
    """Shift each trial later by jitter[i] bins (earlier if negative), NaN-filling the gap."""
    if jitter is None or not np.any(jitter):
        return rates
    jitter = np.asarray(jitter).astype(int)
    n_bins = rates.shape[1]
    src = np.arange(n_bins)[None, :] - jitter[:, None]
    ok = (src >= 0) & (src < n_bins)
    out = np.take_along_axis(rates, np.clip(src, 0, n_bins - 1)[:, :, None], axis=1)
    out[~ok] = np.nan
    return out


def psth_rows(psth: np.ndarray, eval_rates: np.ndarray, eval_cond_idx, jitter: np.ndarray | None = None,
              what: str = "psth R2") -> list[tuple[np.ndarray, np.ndarray]]:
    """Per condition with eval trials: (condition-averaged, jitter-corrected eval rates, true PSTH rows), on
    the bins where the PSTH is defined; psth R2 and its bootstrap both score these rows."""
    psth = np.asarray(psth, dtype=np.float64)
    rates = jitter_trials(np.asarray(eval_rates, dtype=np.float64), jitter)
    if psth.shape[1:] != rates.shape[1:]:
        raise NLBInputError(f"{what}: eval rates have bins x neurons {rates.shape[1:]} "
                            f"(expected {psth.shape[1:]}, the PSTHs' shape)")
    rows = []
    for i, idx in enumerate(eval_cond_idx):
        idx = np.asarray(idx, dtype=np.int64).ravel()
        if idx.size == 0:
            continue
        keep = ~np.isnan(psth[i, :, 0])
        pred = rates[idx].mean(axis=0)[keep]
        if np.isnan(pred).any():
            raise NLBInputError(f"{what}: NaN rate predictions within required trial times "
                                "(expected finite rates)")
        rows.append((pred, psth[i][keep]))
    if not rows:
        raise NLBInputError(f"{what}: no eval trial belongs to any PSTH condition")
    return rows


def psth_r2(psth: np.ndarray, eval_rates: np.ndarray, eval_cond_idx, jitter: np.ndarray | None = None,
            what: str = "psth R2") -> float:
    """R^2 (mean over neurons) of condition-averaged, jitter-corrected eval rates against the true PSTHs."""
    return psth_r2_of_rows(psth_rows(psth, eval_rates, eval_cond_idx, jitter, what))


def psth_r2_of_rows(rows: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """psth R2 of (predicted, true) condition rows from psth_rows."""
    return r2_score(np.vstack([true for _, true in rows]), np.vstack([pred for pred, _ in rows]))


def neural_speed(eval_rates: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean norm of the step between consecutive masked bins of each trial (NaN with < 2 bins)."""
    rates = np.asarray(eval_rates, dtype=np.float64)
    counts = masks.sum(axis=1)
    flat = rates[masks]
    steps = np.linalg.norm(np.diff(flat, axis=0), axis=1) if len(flat) > 1 else np.zeros(0)
    ends = np.cumsum(counts)
    starts = ends - counts
    csum = np.concatenate([[0.0], np.cumsum(steps)])
    n_steps = np.maximum(counts - 1, 0)
    lo = np.minimum(starts, len(steps))
    hi = np.minimum(starts + n_steps, len(steps))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_steps > 0, (csum[hi] - csum[lo]) / n_steps, np.nan)


def tp_conditions(eval_behavior: np.ndarray) -> list[np.ndarray]:
    """Trial masks of each (is_eye, theta, is_short) condition, NaN rows (outliers) excluded."""
    cols = np.asarray(eval_behavior, dtype=np.float64)[:, :3]
    conds = np.unique(cols, axis=0)
    conds = conds[~np.all(np.isnan(conds), axis=1)]
    return [np.all(cols == c, axis=1) for c in conds]


def speed_tp_correlation(eval_spikes_heldout: np.ndarray, eval_rates: np.ndarray, eval_behavior: np.ndarray,
                         what: str = "tp corr") -> float:
    """Mean over conditions of Pearson r between neural speed (set->go bins) and produced interval tp."""
    masks = ~np.isnan(np.asarray(eval_spikes_heldout, dtype=np.float64)[..., 0])
    rates = np.asarray(eval_rates, dtype=np.float64)
    if rates.shape[:2] != masks.shape:
        raise NLBInputError(f"{what}: eval rates have trials x bins {rates.shape[:2]} (expected {masks.shape})")
    if np.isnan(rates[masks]).any():
        raise NLBInputError(f"{what}: NaN rate predictions within set->go bins (expected finite rates)")
    speeds = neural_speed(rates, masks)
    tp = np.asarray(eval_behavior, dtype=np.float64)[:, -1]
    rs = [pearson_r(speeds[m], tp[m]) for m in tp_conditions(eval_behavior)]
    return float(np.mean(rs)) if rs else float("nan")
