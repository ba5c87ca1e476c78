"""GNOCCHI networks: spike autoencoder (latent space + Poisson readout), code encoder and conditional 1-D U-Net.

Shapes: spikes and latents are (batch, time, channels) at the interface; the convolutions work on
(batch, channels, time) inside. Design reasons are in baselines/gnocchi.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GnocchiDims:
    """Sizes of every GNOCCHI network for one dataset."""

    n_in: int  # held-in neurons (encoder input)
    n_all: int  # held-in + held-out neurons (autoencoder input and readout)
    latent_dim: int
    latent_stride: int
    ae_width: int
    ae_kernel: int
    code_dim: int
    enc_width: int
    enc_pool: int
    unet_widths: tuple[int, ...]
    emb_dim: int
    dropout: float


def groups_for(channels: int) -> int:
    """GroupNorm groups: up to 8, dividing the channel count."""
    return math.gcd(8, channels)


class SpikeAutoencoder(nn.Module):
    """Non-causal conv encoder of all neurons' counts -> latents at 1/`latent_stride` of the bin rate;
    decoder: linear interpolation back to every bin, then a linear Poisson readout to log-rates."""

    def __init__(self, d: GnocchiDims):
        super().__init__()
        pad = d.ae_kernel // 2
        self.stride = d.latent_stride
        self.encoder = nn.Sequential(
            nn.Conv1d(d.n_all, d.ae_width, d.ae_kernel, padding=pad), nn.GELU(),
            nn.Conv1d(d.ae_width, d.ae_width, max(d.ae_kernel, d.latent_stride), stride=d.latent_stride,
                      padding=max(d.ae_kernel, d.latent_stride) // 2), nn.GELU(),
            nn.Conv1d(d.ae_width, d.latent_dim, 1),
        )
        self.readout = nn.Linear(d.latent_dim, d.n_all)

    def latent_length(self, n_bins: int) -> int:
        """Latent steps for a window of `n_bins` bins."""
        return -(-n_bins // self.stride)

    def encode(self, counts: torch.Tensor) -> torch.Tensor:
        """(B, T, n_all) counts -> (B, ceil(T / stride), latent_dim) latents (log1p of the counts goes in)."""
        n_bins = counts.shape[1]
        h = F.pad(torch.log1p(counts).transpose(1, 2), (0, self.latent_length(n_bins) * self.stride - n_bins))
        return self.encoder(h)[:, :, :self.latent_length(n_bins)].transpose(1, 2)

    def at_bins(self, latents: torch.Tensor, n_bins: int) -> torch.Tensor:
        """(B, L, latent_dim) latents -> (B, n_bins, latent_dim): linear interpolation to every bin."""
        if self.stride == 1:
            return latents[:, :n_bins]
        up = F.interpolate(latents.transpose(1, 2), size=self.latent_length(n_bins) * self.stride,
                           mode="linear", align_corners=False)
        return up[:, :, :n_bins].transpose(1, 2)

    def log_rates(self, latents: torch.Tensor, n_bins: int) -> torch.Tensor:
        """(B, L, latent_dim) latents -> (B, n_bins, n_all) log-rates in spikes per bin."""
        return self.readout(self.at_bins(latents, n_bins))


class CodeEncoder(nn.Module):
    """Held-in spikes (B, T, n_in) -> code c (B, code_dim): strided convs, adaptive pooling, linear."""

    def __init__(self, d: GnocchiDims):
        super().__init__()
        w = d.enc_width
        self.net = nn.Sequential(
            nn.Conv1d(d.n_in, w, 5, padding=2), nn.GELU(),
            nn.Conv1d(w, w, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv1d(w, w, 5, stride=2, padding=2), nn.GELU(),
            nn.AdaptiveAvgPool1d(d.enc_pool),
        )
        self.out = nn.Linear(w * d.enc_pool, d.code_dim)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.net(torch.log1p(spikes).transpose(1, 2))
        return self.out(h.flatten(1))


def step_embedding(steps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer diffusion steps (B,) -> (B, dim), as in DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=steps.device, dtype=torch.float32) / half)
    args = steps.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class AdaGroupNorm(nn.Module):
    """GroupNorm whose scale and shift come from the step embedding and, separately, from the code.

    h = GN(h) * (1 + s_t) + b_t, then h * (1 + s_c) + b_c (DiffAE / InfoDiffusion conditioning).
    """

    def __init__(self, channels: int, emb_dim: int, code_dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups_for(channels), channels)
        self.from_step = nn.Linear(emb_dim, 2 * channels)
        self.from_code = nn.Linear(code_dim, 2 * channels)

    def forward(self, h: torch.Tensor, emb: torch.Tensor, code: torch.Tensor) -> torch.Tensor:  # noqa: D102
        s_t, b_t = self.from_step(emb)[:, :, None].chunk(2, dim=1)
        s_c, b_c = self.from_code(code)[:, :, None].chunk(2, dim=1)
        return (self.norm(h) * (1 + s_t) + b_t) * (1 + s_c) + b_c


class ResBlock(nn.Module):
    """conv -> AdaGN(step, code) -> GELU -> dropout -> conv, plus a (1x1 when the width changes) skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, code_dim: int, dropout: float):
        super().__init__()
        self.norm_in = nn.GroupNorm(groups_for(c_in), c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.ada = AdaGroupNorm(c_out, emb_dim, code_dim)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor, code: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.conv1(F.gelu(self.norm_in(x)))
        h = self.conv2(self.drop(F.gelu(self.ada(h, emb, code))))
        return h + self.skip(x)


class ConditionalUNet1d(nn.Module):
    """Temporal U-Net over latents (B, L, latent_dim) predicting the added noise, conditioned on step and code.

    One ResBlock per level, stride-2 down/up-sampling between levels, skip concatenation; the time axis
    is zero-padded to a multiple of 2^(levels - 1) and cropped back.
    """

    def __init__(self, d: GnocchiDims):
        super().__init__()
        widths = list(d.unet_widths)
        self.emb_dim = d.emb_dim
        self.step_mlp = nn.Sequential(nn.Linear(d.emb_dim, d.emb_dim), nn.GELU(), nn.Linear(d.emb_dim, d.emb_dim))
        self.inp = nn.Conv1d(d.latent_dim, widths[0], 3, padding=1)
        blk = dict(emb_dim=d.emb_dim, code_dim=d.code_dim, dropout=d.dropout)
        self.down = nn.ModuleList([ResBlock(widths[max(i - 1, 0)], w, **blk) for i, w in enumerate(widths)])
        self.pool = nn.ModuleList([nn.Conv1d(w, w, 3, stride=2, padding=1) for w in widths[:-1]])
        self.mid = ResBlock(widths[-1], widths[-1], **blk)
        self.up = nn.ModuleList([ResBlock(2 * w, w, **blk) for w in widths[:-1]][::-1])
        self.unpool = nn.ModuleList([nn.ConvTranspose1d(widths[i + 1], w, 4, stride=2, padding=1)
                                     for i, w in enumerate(widths[:-1])][::-1])
        self.out_norm = nn.GroupNorm(groups_for(widths[0]), widths[0])
        self.out = nn.Conv1d(widths[0], d.latent_dim, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, steps: torch.Tensor, code: torch.Tensor) -> torch.Tensor:  # noqa: D102
        length = x.shape[1]
        factor = 2 ** (len(self.pool))
        h = F.pad(x.transpose(1, 2), (0, (-length) % factor))
        emb = self.step_mlp(step_embedding(steps, self.emb_dim))
        h = self.inp(h)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb, code)
            if i < len(self.pool):
                skips.append(h)
                h = self.pool[i](h)
        h = self.mid(h, emb, code)
        for unpool, block in zip(self.unpool, self.up):
            h = block(torch.cat([unpool(h), skips.pop()], dim=1), emb, code)
        return self.out(F.gelu(self.out_norm(h)))[:, :, :length].transpose(1, 2)


class Gnocchi(nn.Module):
    """All GNOCCHI parts in one module (one state dict): autoencoder, code encoder, denoiser."""

    def __init__(self, d: GnocchiDims):
        super().__init__()
        self.dims = d
        self.autoencoder = SpikeAutoencoder(d)
        self.encoder = CodeEncoder(d)
        self.denoiser = ConditionalUNet1d(d)
        self.register_buffer("latent_mean", torch.zeros(d.latent_dim))
        self.register_buffer("latent_std", torch.ones(d.latent_dim))

    def standardise(self, latents: torch.Tensor) -> torch.Tensor:
        """Autoencoder latents -> the unit-scale space the diffusion runs in."""
        return (latents - self.latent_mean) / self.latent_std

    def latents_at_bins(self, standard: torch.Tensor, n_bins: int) -> torch.Tensor:
        """Standardised latents -> the autoencoder's latents at every one of `n_bins` bins."""
        return self.autoencoder.at_bins(standard * self.latent_std + self.latent_mean, n_bins)

    def log_rates_of(self, standard: torch.Tensor, n_bins: int) -> torch.Tensor:
        """Standardised latents -> log-rates of all neurons in `n_bins` bins through the Poisson readout."""
        return self.autoencoder.log_rates(standard * self.latent_std + self.latent_mean, n_bins)
