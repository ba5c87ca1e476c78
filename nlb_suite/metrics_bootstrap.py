"""Bootstrap over eval trials: every metric recomputed on resampled trial counts, from per-trial sums; and
subsampling without replacement for statistics whose bootstrap is biased."""

from __future__ import annotations

from statistics import NormalDist
from typing import Optional

import numpy as np

from .metrics import LN2, ZERO_RATE, r2_from_sums


def resample_counts(n_trials: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each eval trial is drawn in each of `n_boot` resamples (with replacement), seeded."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_trials, size=(n_boot, n_trials))
    counts = np.zeros((n_boot, n_trials))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts


def percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    """Central percentile interval of the finite bootstrap values (NaN if none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def subsamples(n_trials: int, size: int, n_sets: int, seed: int) -> np.ndarray:
    """`n_sets` seeded random subsets of `size` of `n_trials` trials, without replacement: (n_sets, size) sorted indices."""
    if not 0 < size < n_trials:
        raise ValueError(f"subsample size must be between 1 and {n_trials - 1} (got {size})")
    rng = np.random.default_rng(seed)
    return np.sort(np.argsort(rng.random((n_sets, n_trials)), axis=1)[:, :size], axis=1)


def subsample_interval(values: np.ndarray, observed: float, n_trials: int, size: int,
                       level: float = 0.95) -> list[float]:
    """Delete-d jackknife interval of a statistic from its values on subsets of `size` of `n_trials` trials.

    For statistics whose bootstrap is biased because a resample repeats trials (a lasso refitted on copies):
    subsets repeat none. The spread of (subset value - observed) is rescaled by sqrt(size / (n - size)), the
    delete-d jackknife's factor (exact for a mean; half-samples keep the spread as is), and reflected about
    the observed value (Wu 1990; Shao & Wu 1989 for non-smooth statistics when n - size is large).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or not np.isfinite(observed):
        return [float("nan"), float("nan")]
    scale = np.sqrt(size / (n_trials - size))
    q_lo, q_hi = np.percentile(v - observed, [50 * (1 - level), 50 * (1 + level)])
    return [float(observed - scale * q_hi), float(observed - scale * q_lo)]


def bps_trial_sums(model: np.ndarray, spikes: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per trial x neuron: spike count, valid bins and model NLL (elements where spikes are NaN are 0)."""
    axes = tuple(range(1, spikes.ndim - 1))
    return spikes.sum(axis=axes), valid.sum(axis=axes).astype(np.float64), model.sum(axis=axes)


def boot_bps(sums: tuple[np.ndarray, ...], counts: np.ndarray) -> np.ndarray:
    """Pooled bits per spike of each resample; the null rate is re-estimated on the resample."""
    s_tn, nb_tn, m_tn = sums
    s, nb, m = counts @ s_tn, counts @ nb_tn, counts @ m_tn
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = s / nb
    lam = np.where(lam > 0, lam, ZERO_RATE)
    null = np.where(nb > 0, nb * lam - s * np.log(lam), 0.0)
    return (null.sum(axis=1) - m.sum(axis=1)) / s.sum(axis=1) / LN2


def boot_vel(parts: list[tuple[np.ndarray, ...]], n_trials: int, counts: np.ndarray) -> np.ndarray:
    """Mean over decode masks of eval R^2 (uniform over outputs) of each resample; decoders stay fixed."""
    out = []
    for y, pred, rows in parts:
        yc = y - y.mean(axis=0)
        per = [np.zeros((n_trials,) + y.shape[1:]) for _ in range(3)]
        n_t = np.bincount(rows, minlength=n_trials).astype(np.float64)
        for acc, val in zip(per, (yc, yc * yc, (y - pred) ** 2)):
            np.add.at(acc, rows, val)
        n = counts @ n_t
        s1, s2, res = (counts @ a for a in per)
        with np.errstate(divide="ignore", invalid="ignore"):
            tot = s2 - s1 * s1 / n[:, None]
        out.append(np.where(n > 0, r2_from_sums(res, tot).mean(axis=1), np.nan))
    return np.mean(out, axis=0)


def boot_psth(rows: list[tuple[np.ndarray, np.ndarray]], counts: np.ndarray) -> np.ndarray:
    """PSTH R^2 of each resample of conditions (`rows`: metrics.psth_rows): `counts` (n_boot, n_conditions)
    says how often each condition is drawn; a drawn condition keeps all its eval trials.

    Conditions, not trials, are the resampled unit: a trial resample averages fewer distinct trials per
    condition, so noisy predictions (smoothed spikes) lose psth R2 they never lost on the real sample, and
    paired differences shift off the measured one (on synthetic mc_maze, 5 eval trials per condition, by
    +0.21).
    """
    center = np.vstack([true for _, true in rows]).mean(axis=0)
    res = np.stack([((pred - true) ** 2).sum(axis=0) for pred, true in rows])
    t1 = np.stack([(true - center).sum(axis=0) for _, true in rows])
    t2 = np.stack([((true - center) ** 2).sum(axis=0) for _, true in rows])
    n = counts @ np.array([len(true) for _, true in rows], dtype=np.float64)
    s1 = counts @ t1
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_tot = counts @ t2 - s1 * s1 / n[:, None]
    return r2_from_sums(counts @ res, ss_tot).mean(axis=1)


def boot_tp(speeds: np.ndarray, tp: np.ndarray, masks: list[np.ndarray], counts: np.ndarray) -> np.ndarray:
    """Mean over conditions of the count-weighted Pearson r(speed, tp) of each resample."""
    rs = []
    for m in masks:
        s, t, w = speeds[m], tp[m], counts[:, m]
        s, t = s - s.mean(), t - t.mean()
        n = w.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ms, mt = w @ s / n, w @ t / n
            cov = w @ (s * t) / n - ms * mt
            vs = w @ (s * s) / n - ms * ms
            vt = w @ (t * t) / n - mt * mt
            r = np.clip(cov / np.sqrt(vs * vt), -1.0, 1.0)
        distinct = np.count_nonzero(w, axis=1)
        rs.append(np.where((distinct >= 2) & (vs > 0) & (vt > 0), r, np.nan))
    return np.mean(rs, axis=0) if rs else np.full(len(counts), np.nan)


def paired_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95,
                    observed: Optional[float] = None) -> tuple[float, float, float]:
    """Interval of a - b over shared resamples (same counts for both) and the share of resamples with a > b.

    With `observed` (the full-sample a - b) the interval is bias-corrected (Efron's BC percentiles): where the
    resampled differences sit off the observed one, the percentiles are shifted towards what was measured.
    BC cannot rescue a bias larger than the resamples' spread (both ends collapse onto one extreme): that is
    why psth R2 resamples conditions rather than trials (boot_psth).
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    ok = np.isfinite(d)
    share = float(np.mean(d[ok] > 0)) if ok.any() else float("nan")
    if observed is None or not np.isfinite(observed) or not ok.any():
        lo, hi = percentile_interval(d, level)
        return lo, hi, share
    d = d[ok]
    p = (np.count_nonzero(d < observed) + 0.5 * np.count_nonzero(d == observed)) / d.size
    z0 = NormalDist().inv_cdf(min(max(p, 0.5 / d.size), 1 - 0.5 / d.size))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    q = [NormalDist().cdf(2 * z0 - z), NormalDist().cdf(2 * z0 + z)]
    lo, hi = np.percentile(d, [100 * q[0], 100 * q[1]])
    return float(lo), float(hi), share
