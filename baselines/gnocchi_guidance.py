"""Co-smoothing as posterior inference: a trial's held-in spikes guide GNOCCHI's DDIM sampler.

The diffusion model given the code c is a prior over the trial's latents; the Poisson likelihood of the
held-in spikes through the autoencoder's readout is the data term. In every DDIM step the predicted clean
latent x0_hat is replaced by the proximal point (DiffPIR's data step, Zhu et al. 2023, with a Poisson
data term instead of a Gaussian one)

    x0' = argmin_z  sum_observed [exp(eta(z)) - y eta(z)]  +  |z - x0_hat|^2 / (2 scale (1 - ab_t))

where eta(z) are the held-in log-rates of the window. 1 - ab_t is the posterior variance of a unit-variance
clean sample given x_t, so the noisy early steps follow the spikes and the late ones keep the denoiser's
detail; `scale` sets how far the spikes may pull (0: plain conditional sampling from c). Log-rates are
linear in z, so the problem is convex; L-BFGS with a fixed iteration count solves it deterministically.
Held-out and forward rates then come from latents consistent with what the held-in neurons did.
"""

from __future__ import annotations

from typing import Callable

import torch

from .diffusion import Correction

LogRates = Callable[[torch.Tensor], torch.Tensor]  # clean latents (B, L, d) -> held-in log-rates (B, T, n_in)


def poisson_proximal(x0_hat: torch.Tensor, log_rates: LogRates, spikes: torch.Tensor, observed: torch.Tensor,
                     variance: float, iters: int) -> torch.Tensor:
    """argmin_z sum observed * (exp(eta) - y * eta) + |z - x0_hat|^2 / (2 variance), eta = log_rates(z).

    `spikes` (NaN zeroed) and `observed` (1 where a count exists) match log_rates' output. Gradients go to
    z only (never into the networks' weights); float32 whatever the caller's autocast.
    """
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


def held_in_correction(log_rates: LogRates, spikes: torch.Tensor, observed: torch.Tensor, scale: float,
                       iters: int, clip: float = 0.0) -> Correction:
    """The DDIM step's correction for these held-in spikes: the proximal point above, clamped at +-`clip`."""

    def correct(x0_hat: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        variance = scale * (1.0 - alpha_bar)
        if variance <= 0:
            return x0_hat
        z = poisson_proximal(x0_hat, log_rates, spikes, observed, variance, iters)
        return z.clamp(-clip, clip) if clip > 0 else z

    return correct
