"""The LFADS network (Sussillo et al. 2016; design of lfads-torch), its priors and its masked Poisson loss.

Encoders read the held-in spikes of the encoded window; the decoder runs `T + forward` steps (controller
inputs are zero past the window), so the readout also predicts the forward bins. All tensors are
(batch, time, channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LFADSDims:
    """Sizes and fixed architecture constants of one LFADS network (defaults live in LFADSConfig only;
    build it with `LFADSConfig.dims`)."""

    n_in: int
    n_out: int  # readout channels: held-in + held-out neurons
    n_fwd: int
    ic_enc_dim: int
    ci_enc_dim: int
    con_dim: int
    co_dim: int
    ic_dim: int
    gen_dim: int
    fac_dim: int
    ci_lag: int
    cell_clip: float
    ic_post_var_min: float
    dropout: float
    ic_prior_var: float
    co_prior_tau: float
    co_prior_nvar: float


@dataclass
class LFADSOutput:
    """Log-rates over T + forward steps and what the KL terms need."""

    log_rates: torch.Tensor  # (B, T + F, n_out)
    ic_mean: torch.Tensor
    ic_std: torch.Tensor
    co_mean: torch.Tensor  # (B, T + F, co_dim)
    co_std: torch.Tensor
    factors: torch.Tensor


class ClippedGRUCell(nn.GRUCell):
    """GRU cell whose hidden state is clipped to ±cell_clip."""

    def __init__(self, input_size: int, hidden_size: int, clip: float):
        super().__init__(input_size, hidden_size)
        self.clip = clip

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.clamp(super().forward(x, h), -self.clip, self.clip)


class NormedLinear(nn.Linear):
    """Linear map without bias whose weight rows have unit norm (LFADS factors)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def normed_weight(self) -> torch.Tensor:
        """The row-normalised weight (compute once per sequence, not per step)."""
        return F.normalize(self.weight, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.linear(x, self.normed_weight())


def gaussian_kl(mean_q: torch.Tensor, std_q: torch.Tensor, mean_p: torch.Tensor, var_p: float) -> torch.Tensor:
    """Analytic KL(N(mean_q, std_q²) || N(mean_p, var_p)) summed over the last axis, per trial."""
    var_q = std_q**2
    kl = 0.5 * (math.log(var_p) - torch.log(var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0)
    return kl.sum(-1)


class AR1Prior(nn.Module):
    """Independent AR(1) prior per controller output: α = exp(−1/τ), learnable τ and noise variance."""

    def __init__(self, dim: int, tau: float, nvar: float):
        super().__init__()
        self.logtaus = nn.Parameter(torch.full((dim,), math.log(tau)))
        self.lognvars = nn.Parameter(torch.full((dim,), math.log(nvar)))

    def log_prob(self, u: torch.Tensor) -> torch.Tensor:
        """log p(u) per trial for u (B, T, dim): u_0 ~ N(0, σ²/(1−α²)), u_t ~ N(α u_{t−1}, σ²)."""
        alphas = torch.exp(-1.0 / torch.exp(self.logtaus))
        logpvars = self.lognvars - torch.log(1 - alphas**2)
        means = torch.cat([torch.zeros_like(u[:, :1]), alphas * u[:, :-1]], dim=1)
        logvars = torch.cat([logpvars.expand_as(u[:, :1]), self.lognvars.expand_as(u[:, 1:])], dim=1)
        lp = -0.5 * (math.log(2 * math.pi) + logvars + (u - means) ** 2 / torch.exp(logvars))
        return lp.sum((1, 2))

    def kl(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """One-sample Monte Carlo KL(q || p) per trial for q = N(mean, std²) over (B, T, dim)."""
        q = torch.distributions.Normal(mean, std)
        u = q.rsample()
        return q.log_prob(u).sum((1, 2)) - self.log_prob(u)


class LFADS(nn.Module):
    """IC encoder, controller-input encoder, controller, generator, normalised factors and readout."""

    def __init__(self, dims: LFADSDims):
        super().__init__()
        d = self.dims = dims
        self.drop = nn.Dropout(d.dropout)
        self.ic_enc = nn.GRU(d.n_in, d.ic_enc_dim, batch_first=True, bidirectional=True)
        self.ic_linear = nn.Linear(2 * d.ic_enc_dim, 2 * d.ic_dim)
        self.ic_to_g0 = nn.Linear(d.ic_dim, d.gen_dim)
        self.ci_enc = nn.GRU(d.n_in, d.ci_enc_dim, batch_first=True, bidirectional=True)
        self.con = ClippedGRUCell(2 * d.ci_enc_dim + d.fac_dim, d.con_dim, d.cell_clip)
        self.con_h0 = nn.Parameter(torch.zeros(d.con_dim))
        self.co_linear = nn.Linear(d.con_dim, 2 * d.co_dim)
        self.gen = ClippedGRUCell(d.co_dim, d.gen_dim, d.cell_clip)
        self.factors = NormedLinear(d.gen_dim, d.fac_dim)
        self.readout = nn.Linear(d.fac_dim, d.n_out)
        self.ic_prior_mean = nn.Parameter(torch.zeros(d.ic_dim))
        self.co_prior = AR1Prior(d.co_dim, d.co_prior_tau, d.co_prior_nvar)

    def controller_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """CI encoder outputs, forward half delayed and backward half advanced by ci_lag, zero-padded."""
        lag = self.dims.ci_lag
        ci, _ = self.ci_enc(x)
        fwd, bwd = ci.split(self.dims.ci_enc_dim, dim=2)
        fwd = F.pad(fwd, (0, 0, lag, 0))[:, : x.shape[1]]
        bwd = F.pad(bwd, (0, 0, 0, lag))[:, lag:]
        return F.pad(torch.cat([fwd, bwd], dim=2), (0, 0, 0, self.dims.n_fwd))

    def forward(self, x: torch.Tensor, sample: bool = True) -> LFADSOutput:
        """Decode T + forward steps from held-in input x (B, T, n_in); `sample=False` uses posterior means."""
        d = self.dims
        x = self.drop(x)
        _, h_n = self.ic_enc(x)
        ic_mean, ic_logvar = self.ic_linear(self.drop(torch.cat([h_n[0], h_n[1]], dim=1))).split(d.ic_dim, dim=1)
        ic_std = torch.sqrt(torch.exp(ic_logvar) + d.ic_post_var_min)
        ic = ic_mean + ic_std * torch.randn_like(ic_std) if sample else ic_mean
        gen = torch.clamp(self.ic_to_g0(ic), -d.cell_clip, d.cell_clip)
        ci = self.drop(self.controller_inputs(x))
        con = self.con_h0.expand(x.shape[0], -1)
        w_fac = self.factors.normed_weight()
        fac = F.linear(self.drop(gen), w_fac)
        co_means, co_stds, facs = [], [], []
        for t in range(ci.shape[1]):
            con = self.con(self.drop(torch.cat([ci[:, t], fac], dim=1)), con)
            co_mean, co_logvar = self.co_linear(con).split(d.co_dim, dim=1)
            co_std = torch.exp(0.5 * co_logvar)
            u = co_mean + co_std * torch.randn_like(co_std) if sample else co_mean
            gen = self.gen(u, gen)
            fac = F.linear(self.drop(gen), w_fac)
            co_means.append(co_mean)
            co_stds.append(co_std)
            facs.append(fac)
        factors = torch.stack(facs, dim=1)
        return LFADSOutput(log_rates=self.readout(factors), ic_mean=ic_mean, ic_std=ic_std,
                           co_mean=torch.stack(co_means, 1), co_std=torch.stack(co_stds, 1), factors=factors)

    def kl_terms(self, out: LFADSOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch-mean KL of the IC (analytic) and of the controller outputs (one-sample MC), in float32."""
        kl_ic = gaussian_kl(out.ic_mean.float(), out.ic_std.float(), self.ic_prior_mean, self.dims.ic_prior_var).mean()
        kl_co = self.co_prior.kl(out.co_mean.float(), out.co_std.float()).mean()
        return kl_ic, kl_co

    def l2_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """0.5·‖W_hh‖²/size of the generator and controller recurrent weights."""
        def l2(w: torch.Tensor) -> torch.Tensor:
            return 0.5 * (w**2).sum() / w.numel()
        return l2(self.gen.weight_hh), l2(self.con.weight_hh)


def poisson_nll(log_rates: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Elementwise Poisson NLL without the log(k!) constant."""
    return torch.exp(log_rates) - counts * log_rates


def masked_recon(log_rates: torch.Tensor, counts: torch.Tensor, weight: torch.Tensor,
                 grad_mask: torch.Tensor) -> torch.Tensor:
    """Mean Poisson NLL over entries with weight 1; gradients only where grad_mask is 1 (coordinated dropout).

    The value is the full masked mean (for logging); entries with grad_mask 0 contribute it detached.
    Entries with weight 0 (NaN under SBTT, sample-validation holdouts) count neither in value nor gradient,
    and the mean over the observed entries rescales by the observed fraction.
    """
    nll = poisson_nll(log_rates.float(), counts) * weight
    nll = nll * grad_mask + (nll * (1 - grad_mask)).detach()
    return nll.sum() / weight.sum().clamp(min=1.0)
