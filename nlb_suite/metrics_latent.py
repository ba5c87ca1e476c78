"""Ground-truth metrics of synthetic runs: how well a model recovers the true rates and the true latent state.

rate R2: per neuron, R2 of the predicted rates against the true rates (expected counts per bin) over every
eval bin, averaged over neurons. state R2 (Sedler et al. 2023): an affine map from the true latents to the
model's latents, fitted by least squares on the train trials; R2 of that map's prediction of each inferred
dimension on the eval trials, each floored at -10, averaged over inferred dimensions. Mapping from the truth
to the model means every inferred dimension must be explained by the true state, so extra dimensions that
carry anything else lower the score (rate R2 cannot see them).
"""

from __future__ import annotations

import numpy as np

from .errors import NLBInputError

STATE_R2_FLOOR = -10.0
CONSTANT_VAR = 1e-12  # an inferred dimension whose eval variance is below this share of the largest is constant


def _flat(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(-1, a.shape[-1])


def _rows_ok(*arrays: np.ndarray) -> np.ndarray:
    return np.all([np.isfinite(a).all(axis=1) for a in arrays], axis=0)


def r2_columns(target: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per column of (samples, k) arrays: 1 - SS_res / SS_tot around the target column's mean (NaN if constant)."""
    ss_res = np.sum((target - pred) ** 2, axis=0)
    ss_tot = np.sum((target - target.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)


def rate_r2(pred_rates: np.ndarray, true_rates: np.ndarray) -> float:
    """Mean over neurons of the R2 of predicted vs true rates; arrays (..., neurons), rows with NaN left out."""
    pred, true = _flat(pred_rates), _flat(true_rates)
    if pred.shape != true.shape:
        raise NLBInputError(f"rate R2: predicted rates {pred.shape} and true rates {true.shape} differ in shape")
    ok = _rows_ok(pred, true)
    r2 = r2_columns(true[ok], pred[ok])
    return float(np.nanmean(r2)) if np.isfinite(r2).any() else float("nan")


def affine_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares (d + 1, k) weights of y ≈ [x, 1] @ W."""
    design = np.hstack([x, np.ones((len(x), 1))])
    return np.linalg.lstsq(design, y, rcond=None)[0]


def state_r2_dims(true_train: np.ndarray, inferred_train: np.ndarray, true_eval: np.ndarray,
                  inferred_eval: np.ndarray, floor: float = STATE_R2_FLOOR) -> np.ndarray:
    """Per inferred dimension: R2 on the eval trials of the affine map true -> inferred fitted on the train trials.

    Arrays are (..., dims). A dimension constant over the eval bins explains nothing: R2 0. Each value is
    floored at `floor` (one diverging dimension would otherwise dominate any average).
    """
    xt, yt, xe, ye = (_flat(a) for a in (true_train, inferred_train, true_eval, inferred_eval))
    if len(xt) != len(yt) or len(xe) != len(ye) or xt.shape[1] != xe.shape[1] or yt.shape[1] != ye.shape[1]:
        raise NLBInputError(f"state R2: true/inferred latents do not line up (train {xt.shape} vs {yt.shape}, "
                            f"eval {xe.shape} vs {ye.shape})")
    ok_t, ok_e = _rows_ok(xt, yt), _rows_ok(xe, ye)
    w = affine_fit(xt[ok_t], yt[ok_t])
    ye = ye[ok_e]
    pred = np.hstack([xe[ok_e], np.ones((len(ye), 1))]) @ w
    var = ye.var(axis=0)
    r2 = r2_columns(ye, pred)
    r2 = np.where(var > CONSTANT_VAR * max(float(var.max()), 0.0), r2, 0.0)
    return np.maximum(np.nan_to_num(r2, nan=0.0), floor)


def state_r2(true_train: np.ndarray, inferred_train: np.ndarray, true_eval: np.ndarray,
             inferred_eval: np.ndarray, floor: float = STATE_R2_FLOOR) -> float:
    """Mean over inferred dimensions of `state_r2_dims` (the paper's state R2)."""
    return float(np.mean(state_r2_dims(true_train, inferred_train, true_eval, inferred_eval, floor)))
