"""Grid-searched ridge decoding (sklearn GridSearchCV(Ridge) semantics) from shared Gram blocks.

sklearn refits Ridge 46 times (9 alphas x 5 folds + refit), each time re-centering X and forming X'X.
Here each KFold block's Gram matrix is formed once; every fold's centred normal equations follow from
block sums, and all nine alphas are solved on the small (features x features) systems. Same numbers.
"""

from __future__ import annotations

import numpy as np

ALPHAS = np.logspace(-4, 0, 9)
N_FOLDS = 5


def kfold_bounds(n: int, n_folds: int = N_FOLDS) -> np.ndarray:
    """Boundaries of sklearn's unshuffled KFold: the first n % k folds get one extra sample."""
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def _solve(gram: np.ndarray, xty: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Coefficients (alphas x features x targets) of (G + a I) w = X'y for every alpha."""
    p = gram.shape[0]
    a = np.broadcast_to(gram, (len(alphas), p, p)).copy()
    a[:, np.arange(p), np.arange(p)] += alphas[:, None]
    return np.linalg.solve(a, np.broadcast_to(xty, (len(alphas),) + xty.shape))


def _fold_scores(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """R^2 (uniform average over targets) of each alpha's predictions; pred is alphas x samples x targets."""
    ss_res = np.sum((y[None] - pred) ** 2, axis=1)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)[None]
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    r2 = np.where(ss_tot != 0, r2, np.where(ss_res == 0, 1.0, 0.0))
    return r2.mean(axis=1)


def ridge_grid_search_r2(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray,
                         alphas: np.ndarray = ALPHAS, n_folds: int = N_FOLDS) -> tuple[float, np.ndarray]:
    """Pick alpha by mean 5-fold CV R^2 (first best), refit on all train samples, return (eval R^2, eval pred)."""
    x = np.asarray(x_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    alphas = np.asarray(alphas, dtype=np.float64)
    shift_x, shift_y = x.mean(axis=0), y.mean(axis=0)
    xs, ys = x - shift_x, y - shift_y  # shifting first keeps the block-sum centring well conditioned
    bounds = kfold_bounds(len(x), n_folds)
    blocks = [slice(bounds[k], bounds[k + 1]) for k in range(n_folds)]
    grams = np.stack([xs[b].T @ xs[b] for b in blocks])
    xtys = np.stack([xs[b].T @ ys[b] for b in blocks])
    sx = np.stack([xs[b].sum(axis=0) for b in blocks])
    sy = np.stack([ys[b].sum(axis=0) for b in blocks])
    counts = np.diff(bounds)

    def normal_eq(train: np.ndarray) -> tuple[np.ndarray, ...]:
        n = counts[train].sum()
        mx, my = sx[train].sum(axis=0) / n, sy[train].sum(axis=0) / n
        gram = grams[train].sum(axis=0) - n * np.outer(mx, mx)
        xty = xtys[train].sum(axis=0) - n * np.outer(mx, my)
        return gram, xty, mx, my

    scores = np.zeros((n_folds, len(alphas)))
    for k in range(n_folds):
        train = np.arange(n_folds) != k
        gram, xty, mx, my = normal_eq(train)
        coefs = _solve(gram, xty, alphas)  # alphas x features x targets
        flat = coefs.transpose(1, 0, 2).reshape(len(mx), -1)  # one matmul for all alphas
        pred = (xs[blocks[k]] @ flat - mx @ flat).reshape(-1, len(alphas), ys.shape[1]).transpose(1, 0, 2) + my
        scores[k] = _fold_scores(ys[blocks[k]], pred)
    means = scores.mean(axis=0)
    means = np.where(np.isnan(means), np.nanmin(means) - 1 if np.isfinite(means).any() else 0.0, means)
    best = int(np.flatnonzero(means == means.max())[0])

    gram, xty, mx, my = normal_eq(np.ones(n_folds, dtype=bool))
    coef = _solve(gram, xty, alphas[best : best + 1])[0]
    pred = (np.asarray(x_eval, dtype=np.float64) - shift_x - mx) @ coef + (my + shift_y)
    y_eval = np.asarray(y_eval, dtype=np.float64)
    return float(_fold_scores(y_eval, pred[None])[0]), pred
