"""Co-smoothing as posterior inference: a trial's held-in spikes guide GNOCCHI's DDIM sampler.

The diffusion model given the code c is a prior over the trial's latents; the Poisson likelihood of the
held-in spikes through the autoencoder's readout is the data term. In every DDIM step the predicted clean
latent x0_hat is replaced by the proximal point (DiffPIR's data step, Zhu et al. 2023, with a Poisson
data term instead of a Gaussian one)

    x0' = argmin_z  sum_observed [exp(eta(z)) - y eta(z)]  +  |z - x0_hat|^2 / (2 scale (1 - ab_t))

where eta(z) are the held-in log-rates of the window. 1 - ab_t is the posterior variance of a unit-variance
clean sample given x_t, so the noisy early steps follow the spikes and the late ones keep the denoiser's
detail; `scale` sets how far the spikes may pull (0: plain conditional sampling from c). Log-rates are
linear in z, so the problem is convex. Each sample's problem is its own: L-BFGS runs per sample (its own
curvature pairs and its own backtracking step, vectorised over the batch) for a fixed iteration count, so
no sample's step depends on the samples solved beside it (the noise draws still follow the batch order).
The first design (`joint_proximal`, kept as `guidance_solver: joint` to reproduce the results made with it
before 2026-12-05) ran one L-BFGS over the whole batch: its line search and curvature pairs were shared by
512 samples, and in 10 iterations the median sample stopped 19-22 % of the way short of its optimum at the
early DDIM steps (2-13 % on 120-sample batches), though the scores hardly moved (benchmarks/RESULTS.md,
"The guidance solver").
The gradient of each evaluation comes from the readout's adjoint (AffineReadout: the held-in log-rates are
an interpolation and a linear map of the latents), not from autograd, into buffers reused across the
solve; the joint solver keeps autograd through the model's own readout, as it ran.
Held-out and forward rates then come from latents consistent with what the held-in neurons did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch

from .diffusion import Correction

SOLVERS = ("per_sample", "joint")  # guidance_solver: poisson_proximal, joint_proximal


@dataclass(frozen=True, eq=False)
class AffineReadout:
    """Held-in log-rates affine in the standardised latents z, eta = P (z * std + mean) W' + b, with the
    adjoint of its linear part, so that the proximal solver's gradient is two matrix products, not an
    autograd pass through the readout (which took most of guided sampling's time on CPU)."""

    interp: torch.Tensor  # (T, L): each window bin's linear-interpolation weights on the latent steps
    weight: torch.Tensor  # (n, d): the readout's rows for the held-in neurons
    bias: torch.Tensor  # (n,)
    std: torch.Tensor  # (d,): z * std + mean are the autoencoder's latents
    mean: torch.Tensor  # (d,)

    def __call__(self, z: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, L, d) standardised latents -> (B, T, n) held-in log-rates (written into `out` when given)."""
        bins = self.interp @ (z * self.std + self.mean)
        if out is None:
            return torch.nn.functional.linear(bins, self.weight, self.bias)
        torch.addmm(self.bias, bins.flatten(0, 1), self.weight.T, out=out.view(-1, out.shape[-1]))
        return out

    def linear(self, v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, T, n) into `out`: the map's linear part applied to v (J v, no bias)."""
        torch.mm((self.interp @ (v * self.std)).flatten(0, 1), self.weight.T, out=out.view(-1, out.shape[-1]))
        return out

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """(B, T, n) -> (B, L, d): the transpose of the map's linear part applied to r (J' r)."""
        return (self.interp.T @ (r @ self.weight)) * self.std


# clean latents (B, L, d) -> held-in log-rates (B, T, n_in): any callable (gradient by autograd), or an
# AffineReadout (gradient by its adjoint)
LogRates = Union[AffineReadout, Callable[[torch.Tensor], torch.Tensor]]


def poisson_proximal(x0_hat: torch.Tensor, log_rates: LogRates, spikes: torch.Tensor, observed: torch.Tensor,
                     variance: float, iters: int, memory: int = 10, backtracks: int = 10,
                     scratch: Optional[SolverScratch] = None) -> torch.Tensor:
    """Per row: argmin_z sum observed * (exp(eta) - y * eta) + |z - x0_hat|^2 / (2 variance), eta = log_rates(z).

    `spikes` (NaN zeroed) and `observed` (1 where a count exists) match log_rates' output; log_rates must act
    on each row alone. `iters` L-BFGS iterations per row (`memory` curvature pairs, Armijo backtracking from
    the full step, halving at most `backtracks` times; a row with no decrease, or none float32 can resolve,
    stays put from then on). Gradients go to z only (never into the networks' weights); float32 whatever
    the caller's autocast. An AffineReadout's evaluations write into `scratch` (made here when not given; a
    caller solving for the same spikes again passes one to reuse).
    """
    target = x0_hat.detach().float()
    n = target.shape[0]
    z = target.clone()
    if isinstance(log_rates, AffineReadout) and scratch is None:
        scratch = SolverScratch(spikes)
    elif scratch is not None and (scratch.raw.shape[1:] != spikes.shape[1:] or len(scratch.raw) < n):
        raise ValueError(f"poisson_proximal: scratch buffers {tuple(scratch.raw.shape)} do not fit spikes "
                         f"{tuple(spikes.shape)}: expected as many rows or more, the same bins and neurons")
    f, g, eta = _row_objective(z, log_rates, spikes, observed, target, variance, scratch)
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (s, y, 1 / s'y) per row, oldest first
    scale = _cauchy_scale(z, g, eta, log_rates, observed, variance, scratch)  # H0 = scale * I until pairs exist
    stalled = torch.zeros(n, dtype=torch.bool, device=z.device)  # no step found: its next try would be the same
    for _ in range(iters):
        direction = -_two_loop(g.flatten(1), pairs, scale)
        slope = (g.flatten(1) * direction).sum(1)
        step = torch.ones(n, device=z.device)
        # rows whose directional derivative is below what float32 terms can resolve have converged: they stay
        pending = torch.nonzero((slope < -1e-7 * (1.0 + f.abs())) & ~stalled).flatten()
        z_new, f_new, g_new = z.clone(), f.clone(), g.clone()
        for _ in range(backtracks + 1):
            if len(pending) == 0:
                break
            every = len(pending) == n  # no copies of the spikes when every row is tried
            trial = z + (step[:, None] * direction).view_as(z) if every else \
                z[pending] + (step[pending, None] * direction[pending]).view_as(z[pending])
            f_trial, g_trial, _ = _row_objective(trial, log_rates, *((spikes, observed, target) if every else
                                                 (spikes[pending], observed[pending], target[pending])), variance,
                                                 scratch)
            ok = f_trial <= f[pending] + 1e-4 * step[pending] * slope[pending]
            done = pending[ok]
            z_new[done], f_new[done], g_new[done] = trial[ok], f_trial[ok], g_trial[ok]
            pending = pending[~ok]
            step[pending] = step[pending] / 2
        stalled[pending] = True
        s, y = (z_new - z).flatten(1), (g_new - g).flatten(1)
        sy = (s * y).sum(1)
        curved = sy > 1e-10  # convex: s'y > 0 wherever the row moved
        pairs = (pairs + [(s, y, torch.where(curved, 1.0 / sy.clamp(min=1e-10), torch.zeros_like(sy)))])[-memory:]
        scale = torch.where(curved, sy / (y * y).sum(1).clamp(min=1e-30), scale)
        z, f, g = z_new, f_new, g_new
    return z.to(x0_hat.dtype)


def joint_proximal(x0_hat: torch.Tensor, log_rates: LogRates, spikes: torch.Tensor, observed: torch.Tensor,
                   variance: float, iters: int) -> torch.Tensor:
    """The design before 2026-12-05: the sum of every row's objective minimised by one torch L-BFGS (strong
    Wolfe line search, `iters` iterations), so rows share steps and curvature and depend on each other."""
    target = x0_hat.detach().float()
    z = target.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([z], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        with torch.enable_grad(), torch.autocast(z.device.type, enabled=False):
            eta = log_rates(z).clamp(max=10.0)
            loss = ((torch.exp(eta) - spikes * eta) * observed).sum() + (z - target).pow(2).sum() / (2 * variance)
            z.grad, = torch.autograd.grad(loss, z)
        return loss.detach()

    optimiser.step(objective)
    return z.detach().to(x0_hat.dtype)


class SolverScratch:
    """Full-size (rows, T, n) buffers that a solve's objective evaluations reuse (a prefix for fewer rows), as do
    the DDIM steps of one batch of samples: a fresh tensor of that size is a new allocation whose page faults
    cost as much as the arithmetic on it."""

    def __init__(self, like: torch.Tensor):  # float32 and contiguous whatever `like` is (out= views need both)
        self.raw, self.rates, self.terms = (torch.empty(like.shape, dtype=torch.float32, device=like.device)
                                            for _ in range(3))

    def take(self, rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.raw[:rows], self.rates[:rows], self.terms[:rows]


def _row_objective(z: torch.Tensor, log_rates: LogRates, spikes: torch.Tensor, observed: torch.Tensor,
                   target: torch.Tensor, variance: float, scratch: Optional[SolverScratch] = None,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's proximal objective (n,), its per-bin sums added in float64 so that the line search can
    still tell values apart near the optimum; its gradient in z (rows are independent: the sum's gradient is
    every row's); and the log-rates at z (before the clamp the objective applies), for `_cauchy_scale`.
    An AffineReadout's gradient comes from its adjoint, in `scratch`'s buffers (the log-rates returned are
    then valid until the next evaluation)."""
    if isinstance(log_rates, AffineReadout):
        return _affine_row_objective(z, log_rates, spikes, observed, target, variance,
                                     (scratch or SolverScratch(spikes)).take(len(z)))
    with torch.enable_grad(), torch.autocast(z.device.type, enabled=False):
        z = z.detach().requires_grad_(True)
        raw = log_rates(z)
        eta = raw.clamp(max=10.0)
        per_row = _per_row((torch.exp(eta) - spikes * eta) * observed, z, target, variance)
        grad, = torch.autograd.grad(per_row.sum(), z)
    return per_row.detach(), grad, raw.detach()


def _per_row(terms: torch.Tensor, z: torch.Tensor, target: torch.Tensor, variance: float) -> torch.Tensor:
    """Each row's objective from its likelihood terms (rows, T, n): per-bin sums added in float64, so that the
    line search can still tell values apart near the optimum, plus the pull |z - target|^2 / (2 variance)."""
    return (terms.sum(-1).flatten(1).double().sum(1)
            + (z - target).pow(2).sum(-1).flatten(1).double().sum(1) / (2 * variance))


def _affine_row_objective(z: torch.Tensor, readout: AffineReadout, spikes: torch.Tensor, observed: torch.Tensor,
                          target: torch.Tensor, variance: float,
                          buffers: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_row_objective` with the gradient from the readout's adjoint: (exp(eta) - y) * observed, zero where
    the clamp at 10 holds eta (as autograd's clamp passes no gradient there), taken back through J'; the
    full-size values are written into `buffers` (raw log-rates, rates then residuals, loss terms)."""
    raw, rates, terms = buffers
    with torch.no_grad(), torch.autocast(z.device.type, enabled=False):
        readout(z, out=raw)
        clamped = clamp_mask(raw)
        eta = raw.clamp(max=10.0) if clamped is not None else raw
        torch.exp(eta, out=rates)
        per_row = _per_row(torch.addcmul(rates, spikes, eta, value=-1.0, out=terms).mul_(observed), z, target,
                           variance)
        residual = rates.sub_(spikes).mul_(observed)
        if clamped is not None:
            residual.masked_fill_(clamped, 0.0)
        grad = readout.adjoint(residual).add_(z - target, alpha=1.0 / variance)
    return per_row, grad, raw


def clamp_mask(raw: torch.Tensor) -> Optional[torch.Tensor]:
    """Where the clamp at 10 holds the log-rates, or None where it holds nowhere (the cheap, common case on CPU).
    Off the CPU the mask is always returned: asking whether it is empty would make the evaluation wait for the
    device (one wait fewer per evaluation; the line search's own waits remain)."""
    if raw.device.type != "cpu":
        return raw > 10.0
    # one reduction, no full-size mask, in the common case; a NaN maximum is not "<= 10", so it makes the mask
    return None if raw.numel() == 0 or bool(raw.max() <= 10.0) else raw > 10.0


def _cauchy_scale(z: torch.Tensor, grad: torch.Tensor, eta: torch.Tensor, log_rates: LogRates,
                  observed: torch.Tensor, variance: float, scratch: Optional[SolverScratch] = None) -> torch.Tensor:
    """Per row, the step along -grad that minimises the objective's quadratic model at z: |g|^2 / g'Hg, with
    H = J' diag(observed rates) J + I / variance and J g = log_rates(z + g) - eta, eta = log_rates(z) (exact:
    log-rates are affine in z), or an AffineReadout's linear part applied to g (in `scratch`'s buffers, whose
    raw log-rates `eta` may be). One more pass through the readout, no gradient."""
    with torch.no_grad(), torch.autocast(z.device.type, enabled=False):
        if isinstance(log_rates, AffineReadout) and scratch is not None:
            _, rates, jg = scratch.take(len(z))
            torch.clamp(eta, max=10.0, out=rates).exp_()
            curvature = log_rates.linear(grad, out=jg).pow_(2).mul_(observed).mul_(rates).flatten(1).sum(1)
        else:
            jg = log_rates(z + grad) - eta
            curvature = (torch.exp(eta.clamp(max=10.0)) * observed * jg.pow(2)).flatten(1).sum(1)
    gg = grad.flatten(1).pow(2).sum(1)
    return gg / (curvature + gg / variance).clamp(min=1e-30)


def _two_loop(grad: torch.Tensor, pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
              scale: torch.Tensor) -> torch.Tensor:
    """L-BFGS's two-loop recursion per row: the inverse-Hessian estimate times `grad` (n, D); a pair with
    rho 0 (no curvature seen) drops out."""
    q, alphas = grad.clone(), []
    for s, y, rho in reversed(pairs):
        a = rho * (s * q).sum(1)
        q = q - a[:, None] * y
        alphas.append(a)
    r = scale[:, None] * q
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * (y * r).sum(1)
        r = r + (a - b)[:, None] * s
    return r


def held_in_correction(log_rates: LogRates, spikes: torch.Tensor, observed: torch.Tensor, scale: float,
                       iters: int, clip: float = 0.0, solver: str = "per_sample") -> Correction:
    """The DDIM step's correction for these held-in spikes: the proximal point above (by `solver`, one of
    SOLVERS), clamped at +-`clip`. Every DDIM step solves for the same spikes, so the per-sample solver's
    buffers for an AffineReadout are made once here, not once a step."""
    if solver not in SOLVERS:
        raise ValueError(f"guidance solver {solver!r}: expected one of {', '.join(SOLVERS)}")
    scratch = SolverScratch(spikes) if solver == "per_sample" and isinstance(log_rates, AffineReadout) else None

    def correct(x0_hat: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        variance = scale * (1.0 - alpha_bar)
        if variance <= 0:
            return x0_hat
        z = poisson_proximal(x0_hat, log_rates, spikes, observed, variance, iters, scratch=scratch) \
            if solver == "per_sample" else joint_proximal(x0_hat, log_rates, spikes, observed, variance, iters)
        return z.clamp(-clip, clip) if clip > 0 else z

    return correct
