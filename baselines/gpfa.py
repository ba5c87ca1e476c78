"""The `gpfa` baseline: GPFA latents -> Ridge -> held-in rates -> Poisson GLM -> held-out rates (NLB'21 recipe).

Published recipe (nlb_tools examples/baselines/gpfa, elephant GPFA at 5 ms): GPFA is fitted on the train
trials' held-in spikes (elephant takes the square root of the counts); orthonormalised posterior-mean latents of every trial go through a Ridge
(alpha1) to the held-in spikes, the predictions are clipped at 1e-10 and are the held-in rates; those
held-in rates (not their log) are the features of a per-neuron Poisson GLM (alpha2) to the held-out spikes.

Differences from the published script, on purpose:
- the Ridge is fitted on the train trials only (the script also stacks the eval trials' held-in spikes
  into it), so the rates of a trial set never depend on which other trials are predicted with it;
- forward rates: None by default, as in the script. `forward: true` extrapolates the GP posterior past
  the window (K_fo K_oo^-1 E[x | y], exact for the model; it decays to the prior mean within ~tau) and
  reads it out with the window's Ridge and GLM. It is weak: the prior mean is the window's average rate,
  not the forward window's (synthetic mc_maze_small: fp-bps ~ -0.1 held-in, ~ +0.03 held-out). A Ridge
  refitted on train forward spikes overfits the fading latents at alpha1 = 0 (worse), so it is not used;
- eval NaN bins (recording gaps) are filled with the unit's mean (no evidence) before inference.
The held-out GLM is a private per-neuron replica of sklearn's PoissonRegressor fit (`_poisson_glm`):
baselines/glm.py (vectorised) was not committed yet when this was written; switch to it once it lands,
checking that it keeps sklearn's early-stopped lbfgs path at alpha2 = 0 (see `_poisson_glm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.optimize import minimize

from nlb_suite.baseline_api import Baseline, Rates, RunContext, TrialSet
from nlb_suite.blas_threads import blas_threads
from nlb_suite.errors import check_field

from .gpfa_core import (
    EMResult,
    GPFAParams,
    extrapolate_means,
    fit_em,
    infer_means,
    orthonormal_transform,
    segments,
)


@dataclass
class GPFAConfig:
    """GPFA and readout settings (defaults follow elephant's GPFA and the NLB'21 script)."""

    latent_dim: int = 20  # GPFA x_dim (published per dataset: configs/gpfa/<dataset>.yaml)
    alpha1: float = 0.0  # Ridge penalty, latents -> held-in spikes
    alpha2: float = 0.0  # Poisson GLM penalty, held-in rates -> held-out spikes
    em_iters: int = 500  # maximum EM iterations (elephant em_max_iters)
    tol: float = 1e-8  # EM stops when the LL gain is below tol times the gain since iteration 2
    tau_init_ms: float = 100.0  # initial GP timescale of every latent
    eps: float = 1e-3  # GP noise variance (fixed, as in elephant)
    min_var_frac: float = 0.01  # private variance floor, as a fraction of each unit's variance
    seg_len: int = 20  # training segment length in bins (elephant cuts trials into 20-bin pieces); 0 = whole trials
    sqrt_counts: bool = True  # fit GPFA on sqrt(counts), as elephant's GPFA does (get_seqs use_sqrt=True)
    orthonormalize: bool = True  # use elephant's orthonormalised latents as readout features
    learn_timescales: bool = True  # optimise tau in the M-step
    forward: bool = False  # forward rates by GP extrapolation (weak; see the module docstring)
    rate_floor: float = 1e-10  # clip of the Ridge held-in rates
    glm_max_iter: int = 12500  # L-BFGS iterations of each held-out GLM (the script retries 500 -> 12500)
    cpu_threads: int = 1  # BLAS threads during fit/predict; the last bits of the fit move with the count

    def __post_init__(self) -> None:
        check_field(self.cpu_threads, "gpfa", "cpu_threads", ">= 1", lambda v: v >= 1)


class GPFABaseline(Baseline):
    name = "gpfa"
    uses_seed = False  # no random draw: every seed gives the same rates
    description = "GPFA latents (batched exact EM) -> Ridge held-in rates -> Poisson GLM held-out (NLB'21 recipe)"
    Config = GPFAConfig

    def __init__(self, config: GPFAConfig, context: RunContext):
        super().__init__(config, context)
        self.em: Optional[EMResult] = None
        self._orth: Optional[np.ndarray] = None
        self._ridge: Optional[tuple[np.ndarray, np.ndarray]] = None
        self._glm: Optional[tuple[np.ndarray, np.ndarray]] = None

    # ----- contract --------------------------------------------------------------------------------
    def fit(self, train: TrialSet) -> None:
        """Fit GPFA on the train held-in spikes, then the Ridge and the held-out GLM on train latents."""
        with blas_threads(self.config.cpu_threads):
            self._fit(train)

    def predict(self, trials: TrialSet) -> Rates:
        """Rates of any trials from their held-in spikes (posterior-mean latents, then the two readouts)."""
        with blas_threads(self.config.cpu_threads):
            return self._predict(trials)

    def latents(self, trials: TrialSet) -> np.ndarray:
        """(n, T, latent_dim) posterior-mean latents (orthonormalised as the readout sees them), for state R2."""
        assert self.em is not None, "fit() first"
        with blas_threads(self.config.cpu_threads):
            return self._orthed(self._means(trials))

    # ----- pieces ----------------------------------------------------------------------------------
    def _fit(self, train: TrialSet) -> None:
        cfg = self.config
        if train.spikes_heldout is None:
            raise ValueError("gpfa: the train set needs held-out spikes")
        y = self._observations(train.spikes_heldin)
        self.em = fit_em(
            segments(y, cfg.seg_len), cfg.latent_dim, em_iters=cfg.em_iters, tol=cfg.tol,
            tau_init_bins=cfg.tau_init_ms / self.context.bin_ms, eps=cfg.eps, min_var_frac=cfg.min_var_frac,
            learn_timescales=cfg.learn_timescales,
        )
        p = self.em.params
        self._orth = orthonormal_transform(p.C) if cfg.orthonormalize else np.eye(p.x_dim)
        feats = _flat(self._orthed(self._means(train)))
        self._ridge = _ridge(feats, _flat(train.spikes_heldin), cfg.alpha1)
        heldin_rates = _clip_rates(feats, self._ridge, cfg.rate_floor)
        self._glm = _poisson_glm(heldin_rates, _flat(train.spikes_heldout), cfg.alpha2, cfg.glm_max_iter)

    def _means(self, trials: TrialSet) -> np.ndarray:
        """(n, p, T) posterior-mean latents of trials from their held-in spikes."""
        return infer_means(self._fill(self._observations(trials.spikes_heldin), self.em.params), self.em.params)

    def _predict(self, trials: TrialSet) -> Rates:
        assert self.em is not None, "fit() first"
        means = self._means(trials)
        heldin, heldout = self._readout(self._orthed(means), self._ridge)
        out = Rates(heldin=heldin, heldout=heldout)
        n_fwd = trials.forward_bins.shape[1] if trials.forward_bins is not None else self.context.n_forward_bins
        if self.config.forward and n_fwd > 0:
            fwd = self._orthed(extrapolate_means(means, self.em.params, n_fwd))
            out.heldin_forward, out.heldout_forward = self._readout(fwd, self._ridge)
        return out

    def _observations(self, spikes: np.ndarray) -> np.ndarray:
        """What GPFA models: counts (or their square root), float64."""
        y = np.asarray(spikes, dtype=np.float64)
        return np.sqrt(y) if self.config.sqrt_counts else y

    @staticmethod
    def _fill(y: np.ndarray, params: GPFAParams) -> np.ndarray:
        """NaN bins set to the unit's mean, i.e. no evidence about the latents."""
        if not np.isnan(y).any():
            return y
        return np.where(np.isnan(y), params.d, y)

    def _orthed(self, means: np.ndarray) -> np.ndarray:
        """(n, T, p) readout features from (n, p, T) posterior means: (orthonormalised) latents."""
        return np.swapaxes(means, 1, 2) @ self._orth.T

    def _readout(self, feats: np.ndarray, ridge: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Held-in (Ridge, clipped) and held-out (GLM on held-in rates) rates, (n, T, units) float32."""
        n, t, _ = feats.shape
        heldin = _clip_rates(_flat(feats), ridge, self.config.rate_floor)
        w, b = self._glm
        heldout = np.exp(np.clip(heldin @ w + b, -700.0, 50.0))
        return heldin.reshape(n, t, -1).astype(np.float32), heldout.reshape(n, t, -1).astype(np.float32)


# ----- readout regressions ---------------------------------------------------------------------------

def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(-1, a.shape[-1])


def _clip_rates(x: np.ndarray, ridge: tuple[np.ndarray, np.ndarray], floor: float) -> np.ndarray:
    """Ridge predictions clipped from below (the published 1e-10 rectification)."""
    w, b = ridge
    return np.maximum(x @ w + b, floor)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """sklearn Ridge(alpha, fit_intercept=True) for all outputs at once: weights (f, k), intercept (k,)."""
    xm, ym = x.mean(0), y.mean(0)
    xc = x - xm
    gram = xc.T @ xc + alpha * np.eye(x.shape[1])
    rhs = xc.T @ (y - ym)
    try:
        w = np.linalg.solve(gram, rhs) if alpha > 0 else np.linalg.lstsq(xc, y - ym, rcond=None)[0]
    except np.linalg.LinAlgError:
        w = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return w, ym - xm @ w


def _poisson_loss(theta: np.ndarray, x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """sklearn's PoissonRegressor objective and gradient for one neuron (theta = weights then intercept)."""
    n, f = x.shape
    eta = np.clip(x @ theta[:f] + theta[f], -700.0, 700.0)
    mu = np.exp(eta)
    resid = (mu - y) / n
    grad = np.empty(f + 1)
    grad[:f] = x.T @ resid + alpha * theta[:f]
    grad[f] = resid.sum()
    return float((mu - y * eta).sum() / n + 0.5 * alpha * theta[:f] @ theta[:f]), grad


def _poisson_glm(x: np.ndarray, y: np.ndarray, alpha: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron Poisson GLMs exactly as sklearn's PoissonRegressor(alpha, solver lbfgs, tol 1e-4) fits them.

    Same objective (mean of exp(eta) - y eta, plus alpha/2 |w|^2), start (w = 0, intercept = log mean y) and
    L-BFGS-B settings. With alpha = 0 (the published setting) the problem is ill-posed (held-in rates are
    nearly collinear), and this early-stopped path is what the published numbers rest on; a fully converged
    fit overfits badly, so the optimiser is part of the recipe.
    """
    n, f = x.shape
    w = np.zeros((f, y.shape[1]))
    b = np.zeros(y.shape[1])
    for k in range(y.shape[1]):
        yk = y[:, k]
        theta0 = np.zeros(f + 1)
        theta0[f] = np.log(max(yk.mean(), 1e-300))
        res = minimize(_poisson_loss, theta0, args=(x, yk, alpha), jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "maxls": 50, "gtol": 1e-4, "ftol": 64 * np.finfo(float).eps})
        w[:, k], b[k] = res.x[:f], res.x[f]
    return w, b
