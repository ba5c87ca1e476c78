"""GPFA (Yu et al. 2009) fitted by EM with exact inference, batched over equal-length trials.

Model: latents x_i(t) ~ independent GPs with squared-exponential kernels
K_i(t, s) = (1 - eps_i) exp(-gamma_i (t - s)^2 / 2) + eps_i [t == s]   (gamma_i = (bin / tau_i)^2),
observations y_t = C x_t + d + e_t, e_t ~ N(0, diag(R)). Same parametrisation as elephant's GPFA.

Speed: every trial (or training segment) has the same length T, so the posterior precision
M = blockdiag_i(K_i^-1) + (C^T R^-1 C) (x) I_T (latent-major order, size x_dim*T) is one matrix per EM
iteration: it is Cholesky-factored once and all trials are solved together as one multi-RHS solve.
The sufficient statistics of the M-step are then a handful of matrix products.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg as sla
from scipy.optimize import minimize

LOG_2PI = float(np.log(2.0 * np.pi))
LOG_GAMMA_BOUNDS = (np.log(1e-8), np.log(4.0))  # tau between 0.5 bin and 10^4 bins


@dataclass
class GPFAParams:
    """GPFA parameters: loadings C (q, p), mean d (q,), private variances R (q,), GP gamma and eps (p,)."""

    C: np.ndarray
    d: np.ndarray
    R: np.ndarray
    gamma: np.ndarray
    eps: np.ndarray

    @property
    def x_dim(self) -> int:
        return self.C.shape[1]

    def tau_bins(self) -> np.ndarray:
        """GP timescales in bins (tau = bin / sqrt(gamma))."""
        return 1.0 / np.sqrt(self.gamma)


@dataclass
class EMResult:
    """Fitted parameters and the EM trace (data log-likelihood before each M-step, seconds per iteration)."""

    params: GPFAParams
    log_likelihoods: list[float] = field(default_factory=list)
    iteration_times: list[float] = field(default_factory=list)


# ----- kernels ---------------------------------------------------------------------------------------

def sq_dists(t: int) -> np.ndarray:
    """(t, t) squared time differences in bins."""
    idx = np.arange(t, dtype=np.float64)
    return (idx[:, None] - idx[None, :]) ** 2


def rbf_kernels(gamma: np.ndarray, eps: np.ndarray, t: int) -> np.ndarray:
    """(p, t, t) GP prior covariances of all latents over t bins."""
    dsq = sq_dists(t)
    smooth = (1.0 - eps)[:, None, None] * np.exp(-0.5 * gamma[:, None, None] * dsq)
    return smooth + eps[:, None, None] * np.eye(t)


def cross_kernels(gamma: np.ndarray, eps: np.ndarray, t_obs: int, t_new: np.ndarray) -> np.ndarray:
    """(p, len(t_new), t_obs) prior covariances between new time points and observed bins (no eps: t != s)."""
    dsq = (np.asarray(t_new, dtype=np.float64)[:, None] - np.arange(t_obs, dtype=np.float64)[None, :]) ** 2
    return (1.0 - eps)[:, None, None] * np.exp(-0.5 * gamma[:, None, None] * dsq)


def _chol_inv_logdet(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of a stack of SPD matrices via Cholesky."""
    low = np.linalg.cholesky(k)
    logdet = 2.0 * np.log(np.diagonal(low, axis1=-2, axis2=-1)).sum(-1)
    eye = np.broadcast_to(np.eye(k.shape[-1]), k.shape)
    linv = np.linalg.solve(low, eye)
    return np.swapaxes(linv, -1, -2) @ linv, logdet


# ----- initialisation ------------------------------------------------------------------------------

def factor_analysis(y: np.ndarray, x_dim: int, max_iter: int = 1000, tol: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """Loadings (q, p) and private variances (q,) by ML factor analysis (sklearn's lapack FA, on the covariance)."""
    n, q = y.shape
    cov = np.cov(y, rowvar=False, bias=True)
    var = np.diag(cov).copy()
    psi = np.maximum(var, 1e-12)
    small = 1e-12
    const = q * LOG_2PI
    old_ll = -np.inf
    w = np.zeros((x_dim, q))
    for _ in range(max_iter):
        sqrt_psi = np.sqrt(psi) + small
        evals, evecs = np.linalg.eigh(cov / np.outer(sqrt_psi, sqrt_psi))
        order = np.argsort(evals)[::-1]
        s, v = evals[order], evecs[:, order]
        unexp = s[x_dim:].sum()
        s_top = s[:x_dim]
        w = (np.sqrt(np.maximum(s_top - 1.0, 0.0))[:, None] * v[:, :x_dim].T) * sqrt_psi
        ll = -0.5 * n * (const + np.log(s_top).sum() + unexp + np.log(psi).sum())
        psi = np.maximum(var - (w**2).sum(0), small)
        if ll - old_ll < tol:
            break
        old_ll = ll
    return w.T, psi


def init_params(y: np.ndarray, x_dim: int, tau_init_bins: float, eps: float) -> GPFAParams:
    """FA initialisation (as elephant): C, R from factor analysis of all bins, d the mean, one tau for all latents."""
    flat = y.reshape(-1, y.shape[-1])
    c, r = factor_analysis(flat, x_dim)
    gamma = np.full(x_dim, 1.0 / tau_init_bins**2)
    return GPFAParams(C=c, d=flat.mean(0), R=r, gamma=gamma, eps=np.full(x_dim, float(eps)))


def segments(y: np.ndarray, seg_len: int) -> np.ndarray:
    """Cut (n, T, q) trials into (n * k, seg_len, q) segments (elephant's cut_trials, evenly spread overlaps).

    seg_len <= 0 or >= T keeps whole trials.
    """
    n, t, q = y.shape
    if seg_len <= 0 or seg_len >= t:
        return y
    k = int(np.ceil(t / seg_len))
    starts = np.round(np.linspace(0, t - seg_len, k)).astype(int)
    idx = starts[:, None] + np.arange(seg_len)[None, :]
    return y[:, idx, :].reshape(n * k, seg_len, q)


# ----- E-step --------------------------------------------------------------------------------------

@dataclass
class Posterior:
    """Posterior of equal-length trials: means (n, p, T), shared covariance (p, T, p, T) or None, data LL."""

    means: np.ndarray
    cov: np.ndarray | None
    log_likelihood: float


def _precision(params: GPFAParams, t: int) -> tuple[np.ndarray, float]:
    """Posterior precision M (p*T, p*T, latent-major) and sum of log det K_i."""
    p = params.x_dim
    k_inv, logdet_k = _chol_inv_logdet(rbf_kernels(params.gamma, params.eps, t))
    g = params.C.T @ (params.C / params.R[:, None])
    m = np.zeros((p, t, p, t))
    diag = np.arange(t)
    m[:, diag, :, diag] = g  # G_ij on the time diagonal of every (i, j) block
    m[np.arange(p), :, np.arange(p), :] += k_inv
    return m.reshape(p * t, p * t), float(logdet_k.sum())


def data_sums(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit sum and sum of squares over all trials and bins (fixed during EM, so computed once)."""
    flat = y.reshape(-1, y.shape[-1])
    return flat.sum(0), np.einsum("nq,nq->q", flat, flat)


def _rhs(y: np.ndarray, params: GPFAParams) -> np.ndarray:
    """(n, p*T) latent-major C^T R^-1 (y_t - d) of every trial."""
    n, t, _ = y.shape
    w = params.C / params.R[:, None]
    return (y @ w - params.d @ w).transpose(0, 2, 1).reshape(n, -1)


def _factor(params: GPFAParams, t: int) -> tuple[np.ndarray, float]:
    """Cholesky factor of the posterior precision for length-t trials (shared by all trials), and log|K|."""
    m, logdet_k = _precision(params, t)
    chol, info = sla.lapack.dpotrf(m.T, lower=1, overwrite_a=1)  # m is symmetric: m.T is m in Fortran order
    if info != 0:
        raise np.linalg.LinAlgError(f"GPFA posterior precision is not positive definite (info={info})")
    return chol, logdet_k


def infer(y: np.ndarray, params: GPFAParams, need_cov: bool = True, need_ll: bool = True,
          sums: tuple[np.ndarray, np.ndarray] | None = None) -> Posterior:
    """Exact posterior of latents for (n, T, q) equal-length trials: one Cholesky, one batched solve."""
    n, t, q = y.shape
    p = params.x_dim
    chol, logdet_k = _factor(params, t)
    rhs = _rhs(y, params)
    sol, _ = sla.lapack.dpotrs(chol, rhs.T, lower=1)
    means = sol.T.reshape(n, p, t)
    cov = None
    if need_cov:
        inv, _ = sla.lapack.dpotri(chol, lower=1)
        inv = np.tril(inv)
        inv = inv + np.tril(inv, -1).T
        cov = inv.reshape(p, t, p, t)
    ll = np.nan
    if need_ll:
        sum_y, sum_yy = data_sums(y) if sums is None else sums
        d = params.d
        logdet_m = 2.0 * np.log(np.diagonal(chol)).sum()
        quad = ((sum_yy - 2.0 * d * sum_y + n * t * d**2) / params.R).sum() - np.vdot(rhs, sol.T)
        ll = -0.5 * (n * (t * q * LOG_2PI + t * np.log(params.R).sum() + logdet_k + logdet_m) + quad)
    return Posterior(means=means, cov=cov, log_likelihood=float(ll))


def infer_means(y: np.ndarray, params: GPFAParams, chunk: int = 4096) -> np.ndarray:
    """Posterior means (n, p, T) of equal-length trials (one factorisation, trials solved in chunks)."""
    n, t, _ = y.shape
    p = params.x_dim
    chol, _ = _factor(params, t)
    out = np.empty((n, p, t))
    for a in range(0, n, chunk):
        sol, _ = sla.lapack.dpotrs(chol, _rhs(y[a:a + chunk], params).T, lower=1)
        out[a:a + chunk] = sol.T.reshape(-1, p, t)
    return out


def log_likelihood(y: np.ndarray, params: GPFAParams) -> float:
    """Marginal data log-likelihood of (n, T, q) equal-length trials under `params`."""
    return infer(y, params, need_cov=False, need_ll=True).log_likelihood


# ----- M-step --------------------------------------------------------------------------------------

def update_loadings(y: np.ndarray, post: Posterior, params: GPFAParams, var_floor: np.ndarray,
                    sums: tuple[np.ndarray, np.ndarray] | None = None) -> GPFAParams:
    """C, d jointly by least squares on posterior moments; diagonal R floored at `var_floor`."""
    n, t, q = y.shape
    p = params.x_dim
    x = post.means.transpose(0, 2, 1).reshape(-1, p)
    y2 = y.reshape(-1, q)
    n_all = n * t
    p_auto = n * np.einsum("itjt->ij", post.cov) + x.T @ x
    sum_x = x.sum(0)
    sum_y, sum_yy = data_sums(y) if sums is None else sums
    sum_yx = y2.T @ x
    gram = np.zeros((p + 1, p + 1))
    gram[:p, :p], gram[:p, p], gram[p, :p], gram[p, p] = p_auto, sum_x, sum_x, n_all
    cd = sla.solve(gram, np.hstack([sum_yx, sum_y[:, None]]).T, assume_a="pos").T
    c, d = cd[:, :p], cd[:, p]
    r = d**2 + (sum_yy - 2.0 * d * sum_y - ((sum_yx - np.outer(d, sum_x)) * c).sum(1)) / n_all
    return replace(params, C=c, d=d, R=np.maximum(var_floor, r))


def _gamma_objective(log_gamma: np.ndarray, p_auto: np.ndarray, n: int, eps: np.ndarray,
                     dsq: np.ndarray) -> tuple[float, np.ndarray]:
    """-E[log p(x | gamma)] summed over latents (separable) and its gradient w.r.t. log gamma."""
    gamma = np.exp(log_gamma)
    smooth = (1.0 - eps)[:, None, None] * np.exp(-0.5 * gamma[:, None, None] * dsq)
    k = smooth + eps[:, None, None] * np.eye(dsq.shape[0])
    k_inv, logdet = _chol_inv_logdet(k)
    f = 0.5 * (n * logdet + np.einsum("itu,itu->i", k_inv, p_auto))
    dk = -0.5 * smooth * dsq
    kpk = k_inv @ p_auto @ k_inv
    df_dgamma = 0.5 * (n * np.einsum("itu,itu->i", k_inv, dk) - np.einsum("itu,itu->i", kpk, dk))
    return float(f.sum()), df_dgamma * gamma


def update_timescales(post: Posterior, params: GPFAParams, max_iter: int = 100) -> GPFAParams:
    """Each latent's gamma by gradient ascent (L-BFGS-B on log gamma) of its expected GP log-prior.

    The objective is a sum of independent per-latent terms, so one batched L-BFGS-B run finds every
    latent's own optimum while factoring all (T, T) kernels in one call per step.
    """
    n, p, t = post.means.shape
    p_auto = n * post.cov[np.arange(p), :, np.arange(p), :] + post.means.transpose(1, 2, 0) @ post.means.transpose(1, 0, 2)
    x0 = np.clip(np.log(params.gamma), *LOG_GAMMA_BOUNDS)
    res = minimize(_gamma_objective, x0, args=(p_auto, n, params.eps, sq_dists(t)), jac=True,
                   method="L-BFGS-B", bounds=[LOG_GAMMA_BOUNDS] * p, options={"maxiter": max_iter})
    f0, _ = _gamma_objective(x0, p_auto, n, params.eps, sq_dists(t))
    new = res.x if res.fun <= f0 else x0  # generalised EM: never step back
    return replace(params, gamma=np.exp(new))


# ----- EM ------------------------------------------------------------------------------------------

def fit_em(y: np.ndarray, x_dim: int, *, em_iters: int = 500, tol: float = 1e-8, tau_init_bins: float = 20.0,
           eps: float = 1e-3, min_var_frac: float = 0.01, learn_timescales: bool = True,
           init: GPFAParams | None = None) -> EMResult:
    """Fit GPFA to (n, T, q) equal-length sequences by EM; stops like elephant (relative LL gain < tol)."""
    y = np.asarray(y, dtype=np.float64)
    params = init if init is not None else init_params(y, x_dim, tau_init_bins, eps)
    var_floor = np.maximum(min_var_frac * y.reshape(-1, y.shape[-1]).var(0, ddof=1), 1e-9)  # silent units too
    sums = data_sums(y)
    result = EMResult(params=params)
    ll_base = ll_old = 0.0
    for it in range(1, em_iters + 1):
        tic = time.perf_counter()
        post = infer(y, params, sums=sums)
        ll = post.log_likelihood
        params = update_loadings(y, post, params, var_floor, sums)
        if learn_timescales:
            params = update_timescales(post, params)
        result.iteration_times.append(time.perf_counter() - tic)
        result.log_likelihoods.append(ll)
        result.params = params
        if it <= 2:
            ll_base = ll
        elif (ll - ll_base) < (1.0 + tol) * (ll_old - ll_base):
            break
        ll_old = ll
    return result


# ----- readout helpers -----------------------------------------------------------------------------

def orthonormal_transform(c: np.ndarray) -> np.ndarray:
    """(p, p) map of latents onto orthonormalised loadings (elephant's latent_variable_orth: diag(S) V^T)."""
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    return s[:, None] * vt


def extrapolate_means(means: np.ndarray, params: GPFAParams, n_new: int) -> np.ndarray:
    """GP posterior means (n, p, n_new) of the bins right after the trial: K_fo K_oo^-1 E[x_o | y].

    Exact because the future latents depend on the data only through the observed latents.
    """
    n, p, t = means.shape
    k_oo = rbf_kernels(params.gamma, params.eps, t)
    k_fo = cross_kernels(params.gamma, params.eps, t, np.arange(t, t + n_new))
    proj = np.linalg.solve(k_oo, np.swapaxes(k_fo, 1, 2))  # (p, t, n_new) = K_oo^-1 K_of
    return np.einsum("npt,ptf->npf", means, proj)
