"""Poisson GLMs (log link) for many output neurons at once, sharing one design matrix.

Solves, for every output column k independently, scikit-learn's `PoissonRegressor` objective

    mean_n(mu_nk - y_nk * eta_nk) + alpha/2 * ||w_k||^2,   eta = X w_k + b_k,  mu = exp(eta)

(= mean Poisson deviance / 2 + alpha/2 ||w||^2 up to a constant; the intercept is not penalised).
All neurons are fitted together: L-BFGS with a per-neuron line search, vectorised over neurons, so
each iteration is two matrix products over the shared design matrix instead of one matrix-vector
product per neuron. Each neuron's L-BFGS uses as initial inverse Hessian the exact inverse Hessian at
the start point (zero weights, intercept log mean count: ybar_k X'X/n + ridge, one shared product), so
the badly scaled, strongly correlated log-smoothed-spike features converge in tens of iterations
instead of sklearn's hundreds. Units without a spike get no weights and rate 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ETA_MAX = 50.0  # log-rate cap while searching (exp(50) per bin is already absurd)
EMPTY_INTERCEPT = float(np.log(1e-9))  # neurons without a spike: rate 1e-9, no weights
_ROUNDOFF = 64 * np.finfo(np.float64).eps


@dataclass
class PoissonGLM:
    """Fitted weights: `coef` (features x neurons), `intercept` (neurons,), and how the fit went."""

    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int
    converged: np.ndarray  # (neurons,) bool: gradient below tol

    def log_rates(self, X: np.ndarray) -> np.ndarray:
        """Linear predictor X @ coef + intercept (rows x neurons)."""
        return np.asarray(X, dtype=np.float64) @ self.coef + self.intercept

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted rates exp(X @ coef + intercept) (rows x neurons)."""
        return np.exp(self.log_rates(X))


def _check(X: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"poisson glm: X {X.shape} and Y {Y.shape} must be (rows x features), (rows x neurons)")
    if X.shape[0] == 0:
        raise ValueError("poisson glm: no rows to fit")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("poisson glm: X and Y must be finite (drop NaN rows first)")
    if (Y < 0).any():
        raise ValueError("poisson glm: Y must be non-negative counts")
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"poisson glm: alpha must be >= 0 (got {alpha!r})")
    return X, Y


class _Problem:
    """The objective of the still-active neurons, with X augmented by a ones column (the intercept)."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, alpha: float):
        self.X = np.hstack([X, np.ones((X.shape[0], 1))])
        self.Y = Y  # counts of the active neurons only (shrinks as neurons converge)
        self.n = X.shape[0]
        self.pen = np.r_[np.full(X.shape[1], alpha), 0.0]  # ridge weight per parameter

    def keep(self, mask: np.ndarray) -> None:
        """Drop the converged neurons from the active set."""
        self.Y = self.Y[:, mask]

    def value(self, eta: np.ndarray, W: np.ndarray, which=slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Objective per neuron and the rates, from linear predictor eta and weights W (of `which`)."""
        mu = np.exp(np.minimum(eta, ETA_MAX))
        data = (mu.sum(axis=0) - np.einsum("nk,nk->k", self.Y[:, which], eta)) / self.n
        return data + 0.5 * (self.pen[:, None] * W * W).sum(axis=0), mu

    def gradient(self, mu: np.ndarray, W: np.ndarray) -> np.ndarray:
        """Gradient (params x neurons) of all active neurons from their rates and weights."""
        mu -= self.Y  # in place: mu is not needed afterwards
        return self.X.T @ mu / self.n + self.pen[:, None] * W


def _spd_inverse(H: np.ndarray) -> np.ndarray:
    """Inverses of symmetric positive (semi)definite matrices, with a tiny ridge where singular."""
    p = H.shape[-1]
    scale = np.maximum(np.abs(np.diagonal(H, axis1=1, axis2=2)).max(axis=1), 1e-300)
    eye = np.eye(p)
    for jitter in (0.0, 1e-12, 1e-9, 1e-6):
        try:
            L = np.linalg.cholesky(H + jitter * scale[:, None, None] * eye)
        except np.linalg.LinAlgError:
            continue
        Linv = np.linalg.solve(L, np.broadcast_to(eye, H.shape))
        return np.swapaxes(Linv, 1, 2) @ Linv
    return np.linalg.pinv(H, hermitian=True)


def _two_loop(G: np.ndarray, S: list, Yh: list, Hinv: np.ndarray) -> np.ndarray:
    """L-BFGS direction -H G per neuron (columns), from history pairs and initial inverse Hessians."""
    q = G.copy()
    alphas = []
    for s, y in zip(reversed(S), reversed(Yh)):
        rho = 1.0 / np.einsum("pk,pk->k", y, s)
        a = rho * np.einsum("pk,pk->k", s, q)
        q -= a * y
        alphas.append((rho, a))
    r = np.einsum("kij,jk->ik", Hinv, q)
    for (s, y), (rho, a) in zip(zip(S, Yh), reversed(alphas)):
        b = rho * np.einsum("pk,pk->k", y, r)
        r += (a - b) * s
    return -r


def fit_poisson_glm(X: np.ndarray, Y: np.ndarray, alpha: float = 0.0, *, max_iter: int = 1000,
                    tol: float = 1e-7, history: int = 10) -> PoissonGLM:
    """Fit one Poisson GLM per column of Y on the shared features X, all neurons at once.

    A neuron stops when max |gradient| <= tol (or when no step decreases its objective any more).
    """
    X, Y = _check(X, Y, alpha)
    if max_iter < 1 or not tol > 0 or history < 0:
        raise ValueError("poisson glm: need max_iter >= 1, tol > 0 and history >= 0")
    p, k = X.shape[1] + 1, Y.shape[1]
    ybar = Y.mean(axis=0)
    W = np.zeros((p, k))
    W[-1] = np.where(ybar > 0, np.log(np.maximum(ybar, 1e-300)), EMPTY_INTERCEPT)
    converged = ybar <= 0  # no spikes: nothing to fit
    cols = np.flatnonzero(~converged)
    prob = _Problem(X, Y[:, cols], alpha)
    it = 0
    if cols.size:
        it = _lbfgs(prob, W, cols, converged, _initial_inverse(prob, ybar[cols]), max_iter, tol, history)
    return PoissonGLM(W[:-1].copy(), W[-1].copy(), it, converged)


def _lbfgs(prob: _Problem, W: np.ndarray, cols: np.ndarray, converged: np.ndarray, Hinv: np.ndarray,
           max_iter: int, tol: float, history: int) -> int:
    """Batched L-BFGS over the neurons `cols`, updating W and `converged` in place; returns iterations."""
    Wc = W[:, cols]
    eta = prob.X @ Wc
    f, mu = prob.value(eta, Wc)
    G = prob.gradient(mu, Wc)
    S: list = []
    Yh: list = []
    it = 0
    while it < max_iter:
        it += 1
        D = _descent_direction(G, S, Yh, Hinv)
        XD = prob.X @ D
        t, f, eta, mu = _line_search(prob, eta, XD, Wc, D, f, np.einsum("pk,pk->k", G, D))
        s = t * D
        Wc = Wc + s
        G_new = prob.gradient(mu, Wc)
        y = G_new - G
        G = G_new
        W[:, cols] = Wc
        if history and (np.einsum("pk,pk->k", s, y) > 0).all():
            S.append(s)
            Yh.append(y)
            del S[:-history], Yh[:-history]
        gmax = np.abs(G).max(axis=0)
        done = (gmax <= tol) | (t == 0)  # t == 0: no decrease left at machine precision
        if done.any():
            converged[cols[done]] = gmax[done] <= 10 * tol
            keep = ~done
            cols, Wc, eta, f, G, Hinv = cols[keep], Wc[:, keep], eta[:, keep], f[keep], G[:, keep], Hinv[keep]
            S, Yh = [a[:, keep] for a in S], [a[:, keep] for a in Yh]
            prob.keep(keep)
            if cols.size == 0:
                break
    return it


def _descent_direction(G: np.ndarray, S: list, Yh: list, Hinv: np.ndarray) -> np.ndarray:
    """L-BFGS direction, or the preconditioned gradient for neurons where that is not a descent."""
    D = _two_loop(G, S, Yh, Hinv)
    bad = np.einsum("pk,pk->k", G, D) >= 0
    if bad.any():
        D[:, bad] = -np.einsum("kij,jk->ik", Hinv[bad], G[:, bad])
    return D


def _initial_inverse(prob: _Problem, ybar: np.ndarray) -> np.ndarray:
    """Exact inverse Hessians at the start point (zero weights): ybar_k * X'X/n + ridge, one product."""
    C = prob.X.T @ prob.X / prob.n
    H = ybar[:, None, None] * C
    p = C.shape[0]
    H[:, np.arange(p), np.arange(p)] += prob.pen
    return _spd_inverse(H)


def _line_search(prob: _Problem, eta: np.ndarray, XD: np.ndarray, W: np.ndarray, D: np.ndarray,
                 f: np.ndarray, slope: np.ndarray, c1: float = 1e-4, max_halvings: int = 40) -> tuple:
    """Per-neuron Armijo backtracking from step 1 (step 0 where nothing decreases the objective).

    Changes within rounding error of the objective count as no increase, so steps stay possible at
    gradients far below sqrt(eps).
    Returns the steps, and the objective, linear predictor and rates at the accepted points.
    """
    t = np.ones(len(f))
    f = f + _ROUNDOFF * np.abs(f)  # (a copy) accept changes within rounding error (lets tiny tols converge)
    f_new, mu = prob.value(eta + XD, W + D)
    eta_new = eta + XD
    todo = np.flatnonzero(~(f_new <= f + c1 * slope))
    for _ in range(max_halvings):
        if todo.size == 0:
            break
        t[todo] *= 0.5
        tt = t[todo]
        e = eta[:, todo] + tt * XD[:, todo]
        f_t, mu_t = prob.value(e, W[:, todo] + tt * D[:, todo], todo)
        eta_new[:, todo], mu[:, todo], f_new[todo] = e, mu_t, f_t
        todo = todo[~(f_t <= f[todo] + c1 * tt * slope[todo])]
    if todo.size:  # give up: stay where we were
        t[todo] = 0.0
        eta_new[:, todo] = eta[:, todo]
        f_new[todo], mu[:, todo] = prob.value(eta[:, todo], W[:, todo], todo)
    return t, f_new, eta_new, mu
