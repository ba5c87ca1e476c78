"""NDT baseline: a non-recurrent transformer trained by masked modelling (Ye & Pandarinath 2021).

Fits on the train trials (an internal train/valid split seeded by `valid_seed`, fixed across model seeds so
that runs of different seeds share their validation trials: ensembles are selected on them). Each step masks
`mask_ratio` of the bins (spans up to `max_span` bins once the span ramp has passed), corrupts the masked
held-in entries (zero / random count / kept) and minimises the Poisson NLL of the masked held-in entries and
of every held-out and forward entry. Early stopping monitors `valid_nll`: the NLL of the held-out and
forward entries of the validation trials from an unmasked pass (what co-bps and fp-bps score).
Design choices beyond the paper's code: the readout bias starts at each neuron's mean log-rate (fewer
epochs on CPU), the span ramp raises the longest allowed span linearly (NDT ramps the probability of using
spans), and missing (NaN) spikes are zero inputs left out of the loss, as for LFADS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from nlb_suite.baseline_api import Rates, RunContext, TrialSet
from nlb_suite.errors import ConfigFieldError, NLBInputError, check_choice
from nlb_suite.seeding import seed_everything

from .ndt_model import (
    MASK_MODES,
    NDT,
    POSITIONS,
    TFIXUP_SCOPES,
    NDTDims,
    NDTOutput,
    check_heads,
    corrupt,
    loss_weights,
    poisson_nll,
    sample_mask,
    span_limit,
)
from .torch_core import (
    TorchBaseline,
    Trainer,
    TrainSettings,
    autocast,
    check_ranges,
    check_seed_field,
    cpu_compute,
    to_device,
)


@dataclass
class NDTConfig:
    """Network, masking and training knobs (defaults: the published NLB maze settings)."""

    n_layers: int = 4
    n_heads: int = 2
    ffn_dim: int = 128
    embed_dim: int = 0
    linear_embedder: bool = False
    model_dim: int = 0
    max_spikes: int = 20
    position: str = "learned"
    tfixup: str = "full"
    dropout: float = 0.5
    dropout_embedding: float = 0.5
    dropout_rates: float = 0.5
    context_forward: int = 50
    context_backward: int = 50
    mask_ratio: float = 0.25
    mask_mode: str = "timestep"
    mask_zero_ratio: float = 0.8  # of the masked entries: zeroed
    mask_random_ratio: float = 0.5  # of the masked entries not zeroed: a random count (the rest are kept)
    max_span: int = 5
    span_ramp_start: int = 8000
    span_ramp_end: int = 12000
    valid_frac: float = 0.2
    valid_seed: int = 0  # the internal validation split; fixed across model seeds
    refit: bool = False  # after early stopping chose the epoch: train again on every train trial (torch_core)
    predict_batch: int = 256
    cpu_threads: int = 1
    lr: float = 1e-3
    weight_decay: float = 5e-5
    batch_size: int = 64
    max_epochs: int = 50500
    patience: int = 3000
    grad_clip: float = 200.0
    lr_schedule: str = "cosine"
    warmup_epochs: int = 5000
    lr_min_ratio: float = 0.0
    plateau_factor: float = 0.95
    plateau_patience: int = 6

    def __post_init__(self) -> None:
        who = type(self).__name__.replace("Config", "").lower()
        positive = ("n_layers", "n_heads", "ffn_dim", "max_spikes", "max_span", "predict_batch")
        non_negative = ("embed_dim", "model_dim", "span_ramp_start", "span_ramp_end", "cpu_threads")
        check_ranges(self, who, positive, non_negative, unit_open=("dropout", "dropout_embedding", "dropout_rates"),
                     unit_closed=("mask_zero_ratio", "mask_random_ratio"), fractions=("mask_ratio", "valid_frac"))
        check_seed_field(self.valid_seed, who, "valid_seed")
        for key in ("context_forward", "context_backward"):
            if getattr(self, key) < -1:
                raise ConfigFieldError(who, key, f"must be -1 (no limit) or >= 0 (got {getattr(self, key)})")
        for key, choices in (("position", POSITIONS), ("tfixup", TFIXUP_SCOPES), ("mask_mode", MASK_MODES)):
            check_choice(getattr(self, key), who, key, choices)
        if self.model_dim > 0:  # then the token width is model_dim whatever the data (else a fit checks it)
            check_heads(who, self.n_heads, self.model_dim, ("model_dim",), "model_dim")
        if self.span_ramp_end < self.span_ramp_start:
            raise ConfigFieldError(who, "span_ramp_end", f"({self.span_ramp_end}) is before span_ramp_start "
                                   f"({self.span_ramp_start})", also=("span_ramp_start",))
        self.train_settings().check(who)

    def train_settings(self) -> TrainSettings:
        return TrainSettings.from_config(self, "valid_nll")

    def dims(self, n_neurons: int, n_steps: int, spatial: bool) -> NDTDims:
        names = {f.name for f in dataclasses.fields(NDTDims)} - {"n_neurons", "n_steps", "spatial"}
        return NDTDims(n_neurons=n_neurons, n_steps=n_steps, spatial=spatial, **{k: getattr(self, k) for k in names})


@dataclass
class NDTData:
    """Device tensors of a trial set: held-in counts and, for train sets, targets over bins + forward."""

    x: torch.Tensor  # (n, T, n_in) NaN zeroed
    x_obs: torch.Tensor  # (n, T, n_in) 1 where observed
    target: Optional[torch.Tensor] = None  # (n, T + F, n_in + n_out) NaN zeroed
    weight: Optional[torch.Tensor] = None  # 1 where observed


def prepare(trials: TrialSet, n_fwd: int, device: torch.device) -> NDTData:
    """Move a TrialSet to the device once; NaN entries become 0 with weight 0."""
    x = np.asarray(trials.spikes_heldin, dtype=np.float32)
    data = NDTData(x=to_device(np.nan_to_num(x), device), x_obs=to_device(~np.isnan(x), device))
    if trials.spikes_heldout is None:
        return data
    n = x.shape[0]
    enc = np.concatenate([x, np.asarray(trials.spikes_heldout, dtype=np.float32)], axis=2)
    fwd_parts = [trials.spikes_heldin_forward, trials.spikes_heldout_forward]
    if any(p is None for p in fwd_parts):
        fwd = np.full((n, n_fwd, enc.shape[2]), np.nan, dtype=np.float32)
    else:
        fwd = np.concatenate([np.asarray(p, dtype=np.float32) for p in fwd_parts], axis=2)
    full = np.concatenate([enc, fwd], axis=1)
    data.target = to_device(np.nan_to_num(full), device)
    data.weight = to_device(~np.isnan(full), device)
    return data


def tokens(heldin: torch.Tensor, n_neurons: int, n_fwd: int) -> torch.Tensor:
    """(n, T + F, n_neurons) input: the held-in counts, zeros for held-out neurons and forward bins."""
    n, t, n_in = heldin.shape
    out = heldin.new_zeros((n, t + n_fwd, n_neurons))
    out[:, :t, :n_in] = heldin
    return out


class NDTBaseline(TorchBaseline):
    name = "ndt"
    description = "Neural Data Transformer: masked modelling with banded attention (non-recurrent)"
    Config = NDTConfig
    spatial = False

    model: Optional[NDT]

    def __init__(self, config: NDTConfig, context: RunContext):
        super().__init__(config, context)
        self.curves: list[dict] = []

    def build(self, n_neurons: int, n_steps: int) -> NDT:
        """A fresh network on the device (shape errors are one line)."""
        dims = self.config.dims(n_neurons, n_steps, self.spatial)
        dims.check(self.name)
        self.model = NDT(dims).to(self.device)
        return self.model

    # ----- losses -----------------------------------------------------------------------------------

    def masked_batch(self, x: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted held-in input, mask) for a training batch at `epoch`."""
        cfg = self.config
        span = span_limit(epoch, cfg.max_span, cfg.span_ramp_start, cfg.span_ramp_end)
        mask = sample_mask(tuple(x.shape), cfg.mask_ratio, cfg.mask_mode, span, x.device)
        return corrupt(x, mask, cfg.mask_zero_ratio, cfg.mask_random_ratio), mask

    def recon_loss(self, out: NDTOutput, data: NDTData, idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n_out = data.target.shape[2] - mask.shape[2]
        weight = loss_weights(mask & (data.x_obs[idx] > 0), n_out, self.context.n_forward_bins) * data.weight[idx]
        return poisson_nll(out.log_rates.float(), data.target[idx], weight)

    def extra_loss(self, data: NDTData, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Additional training loss (STNDT: contrastive); none for NDT."""
        return torch.zeros((), device=self.device), {}

    # ----- fit / predict ----------------------------------------------------------------------------

    def _fit(self, train: TrialSet) -> None:
        """Split drawn by `valid_seed` (not the model seed), then masked-modelling training."""
        cfg, ctx = self.config, self.context
        n, t, n_in = self.fit_shape(train)
        seed_everything(ctx.seed)
        train_ids, valid_ids = self.hold_out(n, cfg.valid_frac, cfg.valid_seed)
        data = prepare(train, ctx.n_forward_bins, self.device)
        n_neurons = data.target.shape[2]
        model = self.build(n_neurons, t + ctx.n_forward_bins)
        with torch.no_grad():  # start the readout at each neuron's mean log-rate
            counts, weight = data.target[train_ids], data.weight[train_ids]
            mean = (counts * weight).sum((0, 1)) / weight.sum((0, 1)).clamp(min=1.0)
            model.readout.bias.copy_(torch.log(mean.clamp(min=1e-3)))
        gen = torch.Generator(device="cpu").manual_seed(cfg.valid_seed)  # a fixed mask for the valid masked loss
        valid_mask = (torch.rand((len(valid_ids), t, 1), generator=gen) < cfg.mask_ratio).to(self.device)
        valid_mask = valid_mask.expand(len(valid_ids), t, n_in)
        scored = data.weight[valid_ids].clone()
        scored[:, :t, :n_in] = 0  # held-out and forward entries only

        def step(batch: torch.Tensor, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = train_ids[batch]
            x, mask = self.masked_batch(data.x[idx], epoch)
            with autocast(self.device):
                out = model(tokens(x, n_neurons, ctx.n_forward_bins))
            recon = self.recon_loss(out, data, idx, mask)
            extra, logs = self.extra_loss(data, idx)
            return recon + extra, {"recon": float(recon.detach()), **logs}

        def validate(epoch: int) -> dict[str, float]:
            x = data.x[valid_ids]
            with autocast(self.device):
                masked = model(tokens(x * ~valid_mask, n_neurons, ctx.n_forward_bins))
                plain = model(tokens(x, n_neurons, ctx.n_forward_bins))
            return {"valid_loss": float(self.recon_loss(masked, data, valid_ids, valid_mask)),
                    "valid_nll": float(poisson_nll(plain.log_rates.float(), data.target[valid_ids], scored))}

        trainer = Trainer(model, cfg.train_settings(), self.device, ctx.run_dir, name=self.name)
        self.curves = trainer.fit(len(train_ids), step, validate, progress=ctx.extras.get("progress"),
                                  on_epoch=ctx.extras.get("on_epoch"))

    def _unmasked(self, trials: TrialSet, field: str) -> torch.Tensor:
        """One NDTOutput field for all steps (n, T + F, ...) from the held-in spikes, unmasked, in eval mode."""
        if self.model is None:
            raise NLBInputError(f"baseline {self.name}: predict() or latents() before fit()")
        with cpu_compute(self.config.cpu_threads, self.device), torch.no_grad():
            self.model.eval()
            data = prepare(dataclasses.replace(trials, spikes_heldout=None), self.context.n_forward_bins, self.device)
            n_neurons, n_fwd = self.model.dims.n_neurons, self.context.n_forward_bins
            chunks = []
            for start in range(0, data.x.shape[0], self.config.predict_batch):
                x = data.x[start:start + self.config.predict_batch]
                with autocast(self.device):
                    chunks.append(getattr(self.model(tokens(x, n_neurons, n_fwd)), field).float())
            return torch.cat(chunks)

    def log_rates(self, trials: TrialSet) -> torch.Tensor:
        """Log-rates (n, T + F, held-in + held-out) from the held-in spikes, unmasked, in eval mode."""
        return self._unmasked(trials, "log_rates")

    def latents(self, trials: TrialSet) -> np.ndarray:
        """(n, T, width): the encoder's normalised output in the trials' windows, for state R2.

        The rates are a linear readout of it, so it plays the role of LFADS's factors; its width (the number
        of neurons, or the model dimension) is usually above the true latent size, which state R2 penalises.
        """
        t = trials.spikes_heldin.shape[1]
        return self._unmasked(trials, "encoded")[:, :t].cpu().numpy()

    def predict(self, trials: TrialSet) -> Rates:
        rates = torch.exp(self.log_rates(trials)).cpu().numpy().astype(np.float32)
        t, n_in = trials.spikes_heldin.shape[1], trials.spikes_heldin.shape[2]
        return Rates(heldin=rates[:, :t, :n_in], heldout=rates[:, :t, n_in:],
                     heldin_forward=rates[:, t:, :n_in], heldout_forward=rates[:, t:, n_in:])
