"""STNDT baseline: NDT with spatial attention across neurons and a contrastive loss (Le & Shlizerman 2022).

Every layer adds the spatial block of `ndt_model.EncoderLayer` (neurons attend to neurons, time as features;
the N x N weights mix the temporal branch's output). Training adds an InfoNCE loss (SimCLR's NT-Xent,
temperature 0.07, weight 0.1) between two extra maskings of each batch (entries masked at
`contrast_mask_ratio` 0.05, half zeroed, half of the rest random counts), on the embedded inputs (temporal
and spatial tokens, STNDT's published `embedder` layer: that layer must be learned, so `linear_embedder`)
or on the encoder's output (`contrast_layer: encoder`). Validation and prediction do not use it. Masking,
loss locations, the split and early stopping are NDT's (see baselines/ndt.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nlb_suite.errors import ConfigFieldError, check_choice

from .ndt import NDTBaseline, NDTConfig, NDTData, tokens
from .ndt_model import corrupt, info_nce, sample_mask
from .torch_core import autocast, check_ranges

CONTRAST_LAYERS = ("embedder", "encoder")


@dataclass
class STNDTConfig(NDTConfig):
    """NDT's knobs plus the contrastive loss (defaults: STNDT's published NLB settings)."""

    linear_embedder: bool = True
    mask_mode: str = "full"
    contrast_weight: float = 0.1
    temperature: float = 0.07
    contrast_mask_ratio: float = 0.05
    contrast_zero_ratio: float = 0.5
    contrast_random_ratio: float = 0.5
    contrast_layer: str = "embedder"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(self, "stndt", positive=("temperature",), non_negative=("contrast_weight",),
                     unit_closed=("contrast_zero_ratio", "contrast_random_ratio"), fractions=("contrast_mask_ratio",))
        check_choice(self.contrast_layer, "stndt", "contrast_layer", CONTRAST_LAYERS)
        if self.contrast_layer == "embedder" and self.contrast_weight > 0 and not self.linear_embedder:
            raise ConfigFieldError("stndt", "contrast_layer", "=embedder needs linear_embedder=true (a fixed "
                                   "embedder gives the contrastive loss nothing to learn)",
                                   also=("linear_embedder", "contrast_weight"))


class STNDTBaseline(NDTBaseline):
    name = "stndt"
    description = "Spatiotemporal NDT: temporal + spatial attention, masked modelling and a contrastive loss"
    Config = STNDTConfig
    spatial = True

    def contrast_view(self, x: torch.Tensor) -> torch.Tensor:
        """One extra masking of a batch's held-in counts (entries, no spans), as tokens."""
        cfg = self.config
        mask = sample_mask(tuple(x.shape), cfg.contrast_mask_ratio, "full", 1, x.device)
        view = corrupt(x, mask, cfg.contrast_zero_ratio, cfg.contrast_random_ratio)
        return tokens(view, self.model.dims.n_neurons, self.context.n_forward_bins)

    def extra_loss(self, data: NDTData, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        if cfg.contrast_weight == 0:
            return torch.zeros((), device=self.device), {}
        v1, v2 = self.contrast_view(data.x[idx]), self.contrast_view(data.x[idx])
        with autocast(self.device):
            if cfg.contrast_layer == "embedder":
                nce = info_nce(self.model.embed(v1), self.model.embed(v2), cfg.temperature)
                nce = nce + info_nce(self.model.embed_spatial(v1), self.model.embed_spatial(v2), cfg.temperature)
            else:
                nce = info_nce(self.model(v1).encoded, self.model(v2).encoded, cfg.temperature)
        nce = nce.float()
        return cfg.contrast_weight * nce, {"contrast": float(nce.detach())}
