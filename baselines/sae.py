"""NODE-SAE and GRU-SAE baselines (Sedler, Versteeg & Pandarinath 2023) on the shared Trainer.

Both encode a trial's held-in spikes into an initial latent state, roll the latent state forward over the
window and the forward bins, and read every neuron's log-rate out linearly (Poisson NLL on held-in,
held-out and forward spikes of the train trials; a seeded 20 % of them validate; `fit_forward: false`
scores the window only, as the paper did, and the forward rates are then the dynamics' untrained
extrapolation). NODE-SAE rolls forward by
residual Euler steps of an MLP vector field and trains with gradual loss unmasking: the loss covers the
first k steps, k = unmask_start + unmask_step * (epoch // unmask_every), up to every step (unmask_start 0:
no unmasking, the GRU-SAE's setting). The checkpoint kept is the one with the best validation NLL over every
fitted step. Their latents (the trajectory in the window) are scored by state R2 on synthetic data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from nlb_suite.baseline_api import Rates, RunContext, TrialSet
from nlb_suite.errors import NLBInputError, check_choice
from nlb_suite.seeding import seed_everything

from .lfads import LFADSData, prepare
from .lfads_model import masked_recon
from .sae_model import DYNAMICS, SAE, SAEDims
from .torch_core import (
    TorchBaseline,
    Trainer,
    TrainSettings,
    autocast,
    check_ranges,
    cpu_compute,
)


@dataclass
class SAEConfig:
    """Network, unmasking and training knobs (defaults: the paper's NODE-SAE settings)."""

    dynamics: str = "node"
    latent_dim: int = 3
    enc_dim: int = 64
    vf_hidden: int = 128
    vf_layers: int = 1
    step_size: float = 0.1
    residual: bool = True
    dropout: float = 0.05
    unmask_start: int = 5  # steps scored at epoch 0 (0: every step from the start)
    unmask_step: int = 5
    unmask_every: int = 150
    fit_forward: bool = True  # the loss covers the forward bins too (false: the window only, the paper's)
    valid_frac: float = 0.2
    predict_batch: int = 1024
    cpu_threads: int = 1  # torch CPU threads during fit/predict (0: torch's default)
    lr: float = 5e-3
    weight_decay: float = 1e-5
    batch_size: int = 650
    max_epochs: int = 3000
    patience: int = 3000
    grad_clip: float = 200.0
    lr_schedule: str = "none"
    warmup_epochs: int = 0
    lr_min_ratio: float = 0.01
    plateau_factor: float = 0.95
    plateau_patience: int = 6

    def __post_init__(self) -> None:
        check_choice(self.dynamics, "sae", "dynamics", DYNAMICS)
        positive = ("latent_dim", "enc_dim", "vf_hidden", "step_size", "unmask_step", "unmask_every",
                    "predict_batch")
        non_negative = ("vf_layers", "unmask_start", "cpu_threads")
        check_ranges(self, "sae", positive, non_negative, unit_open=("dropout",), fractions=("valid_frac",))
        self.train_settings().check("sae")

    def train_settings(self) -> TrainSettings:
        return TrainSettings.from_config(self, "valid_recon")

    def dims(self, n_in: int, n_out: int, n_fwd: int) -> SAEDims:
        names = {f.name for f in dataclasses.fields(SAEDims)} - {"n_in", "n_out", "n_fwd"}
        return SAEDims(n_in=n_in, n_out=n_out, n_fwd=n_fwd, **{k: getattr(self, k) for k in names})


@dataclass
class GRUSAEConfig(SAEConfig):
    """GRU-SAE: the paper's comparison settings (lr 1e-3, weight decay 1e-4, no unmasking)."""

    dynamics: str = "gru"
    unmask_start: int = 0
    lr: float = 1e-3
    weight_decay: float = 1e-4


def unmasked_steps(epoch: int, n_steps: int, start: int, step: int, every: int) -> int:
    """Steps the loss covers at `epoch`: start + step * (epoch // every), capped at n_steps (start 0: all)."""
    if start <= 0:
        return n_steps
    return int(min(n_steps, start + step * (epoch // every)))


class SAEBaseline(TorchBaseline):
    """Shared fit/predict of the sequential autoencoders; subclasses fix the dynamics and defaults."""

    name = "node_sae"
    description = ("NODE-SAE: biGRU encoder -> initial state -> MLP vector field by residual Euler steps -> "
                   "linear readout; gradual loss unmasking")
    Config = SAEConfig

    model: Optional[SAE]

    def __init__(self, config: SAEConfig, context: RunContext):
        super().__init__(config, context)
        self.curves: list[dict] = []

    def _fit(self, train: TrialSet) -> None:
        """Seeded train/valid split of the train trials, then training with the shared Trainer."""
        cfg, ctx = self.config, self.context
        n, t, n_in = self.fit_shape(train)
        seed_everything(ctx.seed)
        train_ids, valid_ids = self.hold_out(n, cfg.valid_frac, ctx.seed)
        data = prepare(train, ctx.n_forward_bins, self.device)
        n_steps = data.target.shape[1] if cfg.fit_forward else t  # the steps the loss covers
        self.model = model = SAE(cfg.dims(n_in, data.target.shape[2], ctx.n_forward_bins)).to(self.device)
        with torch.no_grad():  # start the readout at each neuron's mean log-rate
            counts, weight = data.target[train_ids], data.weight[train_ids]
            mean = (counts * weight).sum((0, 1)) / weight.sum((0, 1)).clamp(min=1.0)
            model.readout.bias.copy_(torch.log(mean.clamp(min=1e-3)))

        def step(batch: torch.Tensor, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = train_ids[batch]
            k = unmasked_steps(epoch, n_steps, cfg.unmask_start, cfg.unmask_step, cfg.unmask_every)
            with autocast(self.device):
                log_rates, _ = model(self.model_input(data, idx))
            weight = data.weight[idx].clone()
            weight[:, k:] = 0  # k <= n_steps: never beyond the fitted steps
            loss = masked_recon(log_rates, data.target[idx], weight, torch.ones_like(weight))
            return loss, {"unmasked_steps": float(k)}

        def validate(epoch: int) -> dict[str, float]:
            idx = valid_ids
            with autocast(self.device):
                log_rates, _ = model(self.model_input(data, idx))
            w = data.weight[idx].clone()
            w[:, n_steps:] = 0
            recon = float(masked_recon(log_rates, data.target[idx], w, torch.ones_like(w)))
            window_w, heldout_w = w.clone(), w.clone()
            window_w[:, t:] = 0
            heldout_w[:, :, :n_in] = 0
            return {"valid_loss": recon, "valid_recon": recon,
                    "valid_window_nll": float(masked_recon(log_rates.float(), data.target[idx], window_w,
                                                           torch.ones_like(window_w))),
                    "valid_heldout_nll": float(masked_recon(log_rates.float(), data.target[idx], heldout_w,
                                                            torch.ones_like(heldout_w)))}

        trainer = Trainer(model, cfg.train_settings(), self.device, ctx.run_dir, name=self.name)
        self.curves = trainer.fit(len(train_ids), step, validate, progress=ctx.extras.get("progress"),
                                  on_epoch=ctx.extras.get("on_epoch"))

    @staticmethod
    def model_input(data: LFADSData, idx: torch.Tensor) -> torch.Tensor:
        """Held-in spikes of a batch with missing (NaN) entries zeroed."""
        return data.x[idx] * data.x_obs[idx]

    def _run(self, trials: TrialSet) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-rates (n, T + F, all neurons), latents (n, T + F, latent_dim)) in eval mode."""
        if self.model is None:
            raise NLBInputError(f"baseline {self.name}: predict() before fit()")
        with cpu_compute(self.config.cpu_threads, self.device), torch.no_grad():
            self.model.eval()
            data = prepare(dataclasses.replace(trials, spikes_heldout=None), self.context.n_forward_bins,
                           self.device)
            outs = [self.model(self.model_input(data, torch.arange(s, min(s + self.config.predict_batch,
                                                                             data.x.shape[0]), device=self.device)))
                    for s in range(0, data.x.shape[0], self.config.predict_batch)]
        return torch.cat([o[0].float() for o in outs]), torch.cat([o[1].float() for o in outs])

    def predict(self, trials: TrialSet) -> Rates:
        """Held-in, held-out and forward rates (spikes per bin)."""
        rates = torch.exp(self._run(trials)[0]).cpu().numpy().astype(np.float32)
        t, n_in = trials.spikes_heldin.shape[1], trials.spikes_heldin.shape[2]
        return Rates(heldin=rates[:, :t, :n_in], heldout=rates[:, :t, n_in:],
                     heldin_forward=rates[:, t:, :n_in], heldout_forward=rates[:, t:, n_in:])

    def latents(self, trials: TrialSet) -> np.ndarray:
        """(n, T, latent_dim) latent trajectory in the trials' windows."""
        return self._run(trials)[1][:, : trials.spikes_heldin.shape[1]].cpu().numpy()


class NodeSAEBaseline(SAEBaseline):
    name = "node_sae"
    Config = SAEConfig


class GRUSAEBaseline(SAEBaseline):
    name = "gru_sae"
    description = "GRU-SAE: biGRU encoder -> initial state -> input-free GRU latent dynamics -> linear readout"
    Config = GRUSAEConfig
