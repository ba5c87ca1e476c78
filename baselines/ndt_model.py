"""The NDT and STNDT networks, their masking and their losses, in plain PyTorch.

NDT (Ye & Pandarinath 2021): a pre-norm transformer encoder over time bins. A token is one bin's vector of
counts of every neuron (held-out neurons are zero inputs, forward bins zero tokens), optionally embedded
(per-neuron count embedding or a linear map), scaled by sqrt(width), plus a position embedding (learned as in
NDT, or STNDT's fixed sinusoidal codes); self-attention sees only a band of bins (`context_forward` /
`context_backward`); T-Fixup scaling of the attention value/output and feed-forward weights (`tfixup`); a
linear readout gives log-rates of every neuron.

STNDT (Le & Shlizerman 2022) adds to every layer a spatial block: attention across neurons (each neuron's
time course is its feature vector), whose head-averaged N x N weights mix the temporal branch's output,
then a residual and a second feed-forward block; and an InfoNCE loss between two extra maskings of a batch.

Masked modelling: `mask_ratio` of the bins (or entries, mode "full") are masked per trial, in spans whose
longest allowed length ramps from 1 to `max_span` over training; a masked entry is zeroed, or replaced by a
random count, or kept. The reconstruction loss covers the masked held-in entries and every held-out and
forward entry (`loss_weights`), never an unmasked held-in one (it is visible at the input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from nlb_suite.errors import ConfigFieldError

MASK_MODES = ("timestep", "full")
POSITIONS = ("learned", "sinusoidal")
# "full": the T-Fixup paper's scaling of value (x sqrt 2), attention output and every feed-forward block;
# "reference": what the NDT/STNDT code ends up scaling (attention output and the temporal feed-forward only:
# its value name matches no parameter of torch's fused attention, and its spatial block is built after it);
# "off": PyTorch's default initialisation
TFIXUP_SCOPES = ("full", "reference", "off")


@dataclass
class NDTDims:
    """Sizes and regularisation of one network (taken from the baseline's config)."""

    n_neurons: int  # held-in + held-out: the width of a token before embedding
    n_steps: int  # encoded bins + forward bins
    n_layers: int = 4
    n_heads: int = 2
    ffn_dim: int = 128
    embed_dim: int = 0  # 0: counts as they are; k: each neuron's count looked up in a table of k-dim vectors
    linear_embedder: bool = False  # a linear map of the token (to n_neurons * max(embed_dim, 1))
    model_dim: int = 0  # > 0: a linear embedder to this width instead (a narrower network for CPUs)
    max_spikes: int = 20  # count embedding: larger counts share the last entry
    position: str = "learned"  # "learned": N(0, 1) tables trained with the rest (NDT); "sinusoidal": fixed (STNDT)
    tfixup: str = "full"  # which weights T-Fixup scales at initialisation (TFIXUP_SCOPES)
    dropout: float = 0.5  # attention, feed-forward and residual dropout
    dropout_embedding: float = 0.5  # after embedding + position
    dropout_rates: float = 0.5  # before the readout
    context_forward: int = -1  # bins ahead a bin may attend to (-1: all)
    context_backward: int = -1  # bins behind (-1: all)
    spatial: bool = False  # STNDT: add the spatial attention block to every layer

    @property
    def width(self) -> int:
        return self.model_dim if self.model_dim > 0 else self.n_neurons * max(self.embed_dim, 1)

    def check(self, who: str) -> None:
        """One-line errors for shapes the network cannot take."""
        if self.model_dim > 0:
            sizer, sizers, how = "model_dim", ("model_dim",), "model_dim"
        else:  # model_dim 0 lets the data's neurons set the width
            per_neuron = f" x embed_dim {self.embed_dim}" if self.embed_dim > 1 else ""
            sizer, sizers, how = "embed_dim", ("embed_dim", "model_dim"), f"{self.n_neurons} neurons{per_neuron}"
        check_heads(who, self.n_heads, self.width, sizers, how)
        if self.spatial and self.width != self.n_neurons:
            raise ConfigFieldError(who, sizer, f"={getattr(self, sizer)} makes the token width {self.width}, but the "
                                   f"spatial block mixes neurons, so it must be the {self.n_neurons} neurons "
                                   "(model_dim 0, embed_dim 0 or 1); use linear_embedder for a learned input map")


def check_heads(who: str, n_heads: int, width: int, sizers: tuple[str, ...], how: str) -> None:
    """ConfigFieldError unless n_heads divides the token width (`sizers`: the fields that set it, `how`: from what)."""
    if width % n_heads:
        raise ConfigFieldError(who, "n_heads", f"={n_heads} does not divide the token width {width} ({how}; set "
                               "n_heads, embed_dim or model_dim so that it does)", also=sizers)


def context_band(n_steps: int, forward: int, backward: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """(query, key) boolean matrix: bin i may attend to bin j when j - i <= forward and i - j <= backward
    (-1: no limit on that side). The diagonal is always allowed."""
    i = torch.arange(n_steps, device=device).unsqueeze(1)
    j = torch.arange(n_steps, device=device).unsqueeze(0)
    ok = torch.ones(n_steps, n_steps, dtype=torch.bool, device=device)
    if forward >= 0:
        ok &= (j - i) <= forward
    if backward >= 0:
        ok &= (i - j) <= backward
    return ok


def span_limit(epoch: int, max_span: int, ramp_start: int, ramp_end: int) -> int:
    """Longest span a mask may have at `epoch`: 1 until ramp_start, max_span from ramp_end, linear between."""
    if max_span <= 1 or epoch < ramp_start:
        return 1
    if epoch >= ramp_end:
        return max_span
    return 1 + int((max_span - 1) * (epoch - ramp_start) / (ramp_end - ramp_start))


def sample_mask(shape: tuple[int, int, int], ratio: float, mode: str, span: int,
                device: Optional[torch.device] = None) -> torch.Tensor:
    """Boolean (trials, bins, neurons) mask: True = masked. One span width w in 1..span is drawn per call;
    spans start where a Bernoulli(ratio / w) draw fires and cover w bins (clipped at the end), so about
    `ratio` of the bins (mode "timestep": every neuron of a bin) or entries (mode "full") are masked."""
    n, t, k = shape
    width = int(torch.randint(1, span + 1, (1,)).item()) if span > 1 else 1
    seeds_shape = (n, t, 1) if mode == "timestep" else (n, t, k)
    seeds = torch.rand(seeds_shape, device=device) < ratio / width
    mask = seeds.clone()
    for shift in range(1, width):  # a span from each seed forward in time
        mask[:, shift:] |= seeds[:, :-shift]
    return mask.expand(n, t, k) if mode == "timestep" else mask


def corrupt(x: torch.Tensor, mask: torch.Tensor, zero_ratio: float, random_ratio: float) -> torch.Tensor:
    """Masked entries of counts `x`: zeroed with probability zero_ratio; of the others, replaced by a random
    count in [0, max count of the batch) with probability random_ratio; the rest are kept."""
    out = x.clone()
    zero = mask & (torch.rand(x.shape, device=x.device) < zero_ratio)
    rand = mask & ~zero & (torch.rand(x.shape, device=x.device) < random_ratio)
    top = max(int(x.max().item()), 1)
    out[zero] = 0.0
    out[rand] = torch.randint(0, top, x.shape, device=x.device, dtype=x.dtype)[rand]
    return out


def loss_weights(mask_heldin: torch.Tensor, n_heldout: int, n_forward: int) -> torch.Tensor:
    """(trials, bins + forward, held-in + held-out) loss weights: 1 on masked held-in entries, 0 on unmasked
    held-in entries (they are visible at the input), 1 on every held-out entry and every forward entry."""
    n, t, _ = mask_heldin.shape
    heldout = torch.ones((n, t, n_heldout), device=mask_heldin.device)
    encoded = torch.cat([mask_heldin.float(), heldout], dim=2)
    forward = torch.ones((n, n_forward, encoded.shape[2]), device=mask_heldin.device)
    return torch.cat([encoded, forward], dim=1)


def poisson_nll(log_rates: torch.Tensor, counts: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean Poisson NLL (exp(l) - y l, without log y!) over entries with weight > 0."""
    nll = torch.exp(log_rates) - counts * log_rates
    return (nll * weight).sum() / weight.sum().clamp(min=1.0)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent over two views: rows of z1 and z2 (batch, features) are positives pairwise; every
    other row of the 2B is a negative. Cosine similarity / temperature, cross-entropy averaged over 2B rows."""
    z = F.normalize(torch.cat([z1, z2]).flatten(1), dim=1)
    b = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    positive = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, positive)


class Dropout(nn.Module):
    """Inverted dropout drawn with `rand_like`: the same rule as nn.Dropout, about 3x faster on CPU, where
    Bernoulli sampling dominated a training step (40 % of it)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


class BandedSelfAttention(nn.Module):
    """Multi-head self-attention over time restricted by a boolean band (True = may attend), with dropout
    on the attention weights."""

    def __init__(self, width: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, w // self.n_heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(w // self.n_heads)
        weights = self.drop(torch.softmax(scores.masked_fill(~band, float("-inf")), dim=-1))
        return self.out((weights @ v).transpose(1, 2).reshape(b, t, w))


class SpatialWeights(nn.Module):
    """STNDT's attention across neurons: head-averaged softmax(Q K^T / sqrt(d)) of neurons' time courses."""

    def __init__(self, n_steps: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads if n_steps % n_heads == 0 else 1
        self.qk = nn.Linear(n_steps, 2 * n_steps)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        b, n, t = s.shape
        q, k = self.qk(s).view(b, n, 2, self.n_heads, t // self.n_heads).permute(2, 0, 3, 1, 4)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(t // self.n_heads), dim=-1)
        return w.mean(dim=1)  # (b, n, n)


def feed_forward(width: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, width))


class EncoderLayer(nn.Module):
    """Pre-norm temporal attention + feed-forward; with `spatial`, STNDT's neuron-mixing block after it."""

    def __init__(self, dims: NDTDims):
        super().__init__()
        w, d = dims.width, dims.dropout
        self.norm1, self.norm2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.attn = BandedSelfAttention(w, dims.n_heads, d)
        self.ffn = feed_forward(w, dims.ffn_dim, d)
        self.drop1, self.drop2 = Dropout(d), Dropout(d)
        self.spatial = dims.spatial
        if dims.spatial:
            self.spatial_norm = nn.LayerNorm(dims.n_steps)
            self.spatial_weights = SpatialWeights(dims.n_steps, dims.n_heads)
            self.mix_norm1, self.mix_norm2 = nn.LayerNorm(w), nn.LayerNorm(w)
            self.mix_ffn = feed_forward(w, dims.ffn_dim, d)
            self.drop3, self.drop4 = Dropout(d), Dropout(d)

    def forward(self, x: torch.Tensor, band: torch.Tensor, spatial_src: Optional[torch.Tensor] = None):
        """x: (trials, steps, width); spatial_src: (trials, neurons, steps), the spatial branch's input."""
        x = x + self.drop1(self.attn(self.norm1(x), band))
        x = x + self.drop2(self.ffn(self.norm2(x)))
        if not self.spatial:
            return x
        weights = self.spatial_weights(self.spatial_norm(spatial_src))  # (b, n, n)
        mixed = (weights @ self.mix_norm1(x).transpose(1, 2)).transpose(1, 2)
        x = x + self.drop3(mixed)
        return x + self.drop4(self.mix_ffn(self.mix_norm2(x)))

    def tfixup(self, n_layers: int, scope: str = "full") -> None:
        """T-Fixup: scale attention output and feed-forward weights by 0.67 N^-1/4, with `scope` "full" also the
        value projection (x sqrt 2) and the spatial block's feed-forward; "reference" leaves those two as they are."""
        if scope == "off":
            return
        scale = 0.67 * n_layers ** -0.25
        with torch.no_grad():
            scaled = [self.attn.out, self.ffn[0], self.ffn[3]]
            if scope == "full":
                w = self.attn.out.weight.shape[0]
                self.attn.qkv.weight[2 * w:] *= scale * math.sqrt(2.0)
                if self.spatial:
                    scaled += [self.mix_ffn[0], self.mix_ffn[3]]
            for lin in scaled:
                lin.weight *= scale


@dataclass
class NDTOutput:
    log_rates: torch.Tensor  # (trials, steps, neurons)
    embedded: torch.Tensor  # (trials, steps, width): the embedded tokens (STNDT's contrast representation)
    spatial_embedded: Optional[torch.Tensor]  # (trials, neurons, steps) or None
    encoded: torch.Tensor  # (trials, steps, width): the encoder's normalised output


class NDT(nn.Module):
    """Tokens (trials, steps, neurons) of counts -> log-rates (trials, steps, neurons)."""

    def __init__(self, dims: NDTDims):
        super().__init__()
        self.dims = dims
        n, w = dims.n_neurons, dims.width
        if dims.linear_embedder or dims.model_dim > 0:
            self.embedder: nn.Module = nn.Linear(n, w)
        elif dims.embed_dim > 0:
            self.embedder = nn.Embedding(dims.max_spikes + 1, dims.embed_dim)
            nn.init.uniform_(self.embedder.weight, -0.1, 0.1)
        else:
            self.embedder = nn.Identity()
        self._add_position("position", dims.n_steps, w)
        self.embed_drop = Dropout(dims.dropout_embedding)
        if dims.spatial:
            self.spatial_embedder = nn.Linear(dims.n_steps, dims.n_steps)
            self._add_position("spatial_position", n, dims.n_steps)
        self.layers = nn.ModuleList(EncoderLayer(dims) for _ in range(dims.n_layers))
        for layer in self.layers:
            layer.tfixup(dims.n_layers, dims.tfixup)
        self.norm = nn.LayerNorm(w)
        self.rate_drop = Dropout(dims.dropout_rates)
        self.readout = nn.Linear(w, n)
        nn.init.uniform_(self.readout.weight, -0.1, 0.1)
        nn.init.zeros_(self.readout.bias)
        self.register_buffer("band", context_band(dims.n_steps, dims.context_forward, dims.context_backward),
                             persistent=False)

    def _add_position(self, name: str, n_positions: int, width: int) -> None:
        """A learned N(0, 1) table, or fixed sinusoidal codes (a buffer, rebuilt from the config on load)."""
        if self.dims.position == "sinusoidal":
            self.register_buffer(name, sinusoidal_positions(n_positions, width), persistent=False)
        else:
            self.register_parameter(name, nn.Parameter(torch.randn(n_positions, width)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens -> embedded tokens (before position), scaled by sqrt(width) as in NDT."""
        if isinstance(self.embedder, nn.Embedding):
            idx = x.clamp(0, self.dims.max_spikes).round().long()
            e = self.embedder(idx).flatten(2)
        else:
            e = self.embedder(x)
        return e * math.sqrt(self.dims.width)

    def embed_spatial(self, x: torch.Tensor) -> torch.Tensor:
        """STNDT's spatial tokens: each neuron's time course, linearly embedded and scaled by sqrt(steps)."""
        return self.spatial_embedder(x.transpose(1, 2)) * math.sqrt(self.dims.n_steps)

    def forward(self, x: torch.Tensor) -> NDTOutput:
        embedded = self.embed(x)
        h = self.embed_drop(embedded + self.position)
        spatial_embedded = spatial = None
        if self.dims.spatial:
            spatial_embedded = self.embed_spatial(x)
            spatial = self.embed_drop(spatial_embedded + self.spatial_position)
        for i, layer in enumerate(self.layers):
            src = None if not self.dims.spatial else (spatial if i == 0 else h.transpose(1, 2))
            h = layer(h, self.band, src)
        encoded = self.norm(h)
        log_rates = self.readout(self.rate_drop(encoded))
        return NDTOutput(log_rates, embedded, spatial_embedded, encoded)


def sinusoidal_positions(n_positions: int, width: int) -> torch.Tensor:
    """Vaswani et al.'s fixed codes: column 2i is sin(p / 10000^(2i / width)), column 2i + 1 its cosine."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    codes = torch.zeros(n_positions, width)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return codes
