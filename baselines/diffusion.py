"""Diffusion building blocks: linear beta schedule, DDPM forward noising, DDIM steps and the InfoVAE MMD.

Plain functions on torch tensors so that each piece can be checked against hand-computed values
(tests/test_gnocchi.py). Conventions follow Ho et al. 2020 (DDPM, noise prediction) and Song et al. 2021
(DDIM, `eta` = 0 deterministic, 1 = DDPM-like variance); the MMD is InfoVAE's / InfoDiffusion's biased
estimator with the Gaussian kernel exp(-mean_k (x_k - y_k)^2 / d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from nlb_suite.errors import NLBInputError

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, step index per row) -> predicted noise
Correction = Callable[[torch.Tensor, float], torch.Tensor]  # (predicted clean sample, alpha-bar_t) -> corrected one


@dataclass(frozen=True)
class NoiseSchedule:
    """beta_t and alpha-bar_t = prod_{s<=t} (1 - beta_s) for t = 0 .. n_steps - 1 (float64)."""

    betas: torch.Tensor
    alphas_bar: torch.Tensor

    @property
    def n_steps(self) -> int:
        return len(self.betas)


BETA_RANGE = "0 < beta_start <= beta_end < 1"


def betas_in_range(beta_start: float, beta_end: float) -> bool:
    """The linear schedule's rule (BETA_RANGE): both betas strictly inside (0, 1), non-decreasing; NaN fails."""
    return 0 < beta_start <= beta_end < 1


def linear_schedule(n_steps: int, beta_start: float, beta_end: float) -> NoiseSchedule:
    """Betas spaced linearly from beta_start to beta_end (DDPM's schedule); one-line error when out of range."""
    if n_steps < 1:
        raise NLBInputError(f"diffusion: n_steps must be at least 1 (got {n_steps})")
    if not betas_in_range(beta_start, beta_end):
        raise NLBInputError(f"diffusion: need {BETA_RANGE} (got {beta_start}, {beta_end})")
    betas = torch.linspace(beta_start, beta_end, n_steps, dtype=torch.float64)
    return NoiseSchedule(betas=betas, alphas_bar=torch.cumprod(1.0 - betas, dim=0))


def _per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) in the dtype/device of `like`, to broadcast over a batch."""
    return values.to(like).reshape(-1, *([1] * (like.dim() - 1)))


def q_sample(x0: torch.Tensor, steps: torch.Tensor, noise: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """x_t = sqrt(alpha-bar_t) x0 + sqrt(1 - alpha-bar_t) noise, one step index per batch row."""
    ab = _per_row(schedule.alphas_bar.to(x0.device)[steps], x0)
    return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise


def predicted_x0(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The clean sample implied by a noise prediction: (x_t - sqrt(1 - ab) eps) / sqrt(ab)."""
    ab = _per_row(alpha_bar, x_t) if alpha_bar.dim() else alpha_bar.to(x_t)
    return (x_t - (1.0 - ab).sqrt() * eps) / ab.sqrt()


def ddim_timesteps(n_train_steps: int, n_sample_steps: int) -> list[int]:
    """Descending step indices for DDIM: `n_sample_steps` evenly spaced over 0 .. n_train_steps - 1."""
    if not 1 <= n_sample_steps <= n_train_steps:
        raise NLBInputError(f"diffusion: ddim_steps must be from 1 to n_steps={n_train_steps} (got {n_sample_steps})")
    steps = np.unique(np.round(np.linspace(0, n_train_steps - 1, n_sample_steps)).astype(int))
    return [int(s) for s in steps[::-1]]


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float, alpha_bar_prev: float, eta: float = 0.0,
              noise: Optional[torch.Tensor] = None, clip_x0: float = 0.0,
              correct: Optional[Correction] = None) -> torch.Tensor:
    """One DDIM update x_t -> x_prev (Song et al. 2021, eq. 12); alpha_bar_prev = 1 gives the clean x0.

    sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t)) * sqrt(1 - ab_t / ab_prev);
    x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps + sigma * noise.
    `clip_x0` > 0 clamps x0_hat to [-clip_x0, clip_x0] and re-derives eps from it (DDPM's clipped
    denoising): early high-noise steps divide by sqrt(ab_t) and can overshoot far off the data.
    `correct` maps the (clipped) x0_hat to a data-consistent one before the update, and eps is re-derived
    from it likewise (DiffPIR's data step, Zhu et al. 2023: how observations guide the sampler).
    """
    ab_t = torch.as_tensor(alpha_bar_t, dtype=torch.float64)
    ab_prev = torch.as_tensor(alpha_bar_prev, dtype=torch.float64)
    x0 = predicted_x0(x_t, eps, ab_t)
    if clip_x0 > 0:
        x0 = x0.clamp(-clip_x0, clip_x0)
    if correct is not None:
        x0 = correct(x0, float(ab_t))
    if clip_x0 > 0 or correct is not None:
        eps = (x_t - ab_t.sqrt().to(x_t) * x0) / (1 - ab_t).sqrt().to(x_t)
    sigma = eta * torch.sqrt((1 - ab_prev) / (1 - ab_t)) * torch.sqrt(1 - ab_t / ab_prev)
    direction = torch.sqrt((1 - ab_prev - sigma**2).clamp(min=0.0))
    x_prev = ab_prev.sqrt().to(x_t) * x0 + direction.to(x_t) * eps
    if eta > 0 and float(sigma) > 0:
        if noise is None:
            raise ValueError("ddim_step: eta > 0 needs a noise tensor")
        x_prev = x_prev + sigma.to(x_t) * noise
    return x_prev


def ddim_sample(denoise: Denoiser, shape: tuple[int, ...], schedule: NoiseSchedule, n_sample_steps: int,
                eta: float, generator: torch.Generator, device: torch.device, clip_x0: float = 0.0,
                correct: Optional[Correction] = None) -> torch.Tensor:
    """Draw x_T ~ N(0, I) with `generator` and run `n_sample_steps` DDIM updates down to x0 (`correct`: see
    ddim_step)."""
    x = torch.randn(shape, generator=generator, device=device)
    steps = ddim_timesteps(schedule.n_steps, n_sample_steps)
    ab = schedule.alphas_bar
    for i, t in enumerate(steps):
        eps = denoise(x, torch.full((shape[0],), t, dtype=torch.long, device=device))
        ab_prev = float(ab[steps[i + 1]]) if i + 1 < len(steps) else 1.0
        noise = torch.randn(shape, generator=generator, device=device) if eta > 0 else None
        x = ddim_step(x, eps, float(ab[t]), ab_prev, eta, noise, clip_x0, correct)
    return x


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.0) -> torch.Tensor:
    """Kernel matrix k(x_i, y_j) = exp(-mean_k (x_ik - y_jk)^2 / bandwidth) for (n, d) and (m, d) inputs;
    bandwidth 0: d, InfoVAE's / InfoDiffusion's choice."""
    sq = (x[:, None, :] - y[None, :, :]).pow(2).mean(-1)
    return torch.exp(-sq / (bandwidth or x.shape[1]))


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.0) -> torch.Tensor:
    """Biased MMD^2 estimate between samples x (codes) and y (prior draws): mean k_xx + mean k_yy - 2 mean k_xy."""
    return (gaussian_kernel(x, x, bandwidth).mean() + gaussian_kernel(y, y, bandwidth).mean()
            - 2 * gaussian_kernel(x, y, bandwidth).mean())
