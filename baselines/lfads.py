"""LFADS baseline: sequential VAE with controller inputs, coordinated dropout, sample validation and SBTT.

Trains on the train trials (a train/valid split of them, seeded by `valid_seed` or else the run's seed) to
reconstruct held-in, held-out and forward spikes from the held-in spikes of the encoded window. Coordinated
dropout (CD) drops input entries each step and passes reconstruction gradients only through the dropped held-in
entries. Sample validation (SV) withholds a fixed random mask of input entries from training and scores them on
the validation trials (the early-stopping metric when `sv_early_stop`). `monitor` names the validation metric
that early stopping and a sweep's selection watch: reconstruction of every observed entry, the held-out neurons
alone (what co-bps scores), the held-back SV entries, or the whole loss. SBTT: NaN spikes are zeroed at the
input and left out of the loss (a mean over observed entries). Predictions are exp(log-rates) from the posterior
mean, or the average over `n_samples` posterior samples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from nlb_suite.baseline_api import Rates, RunContext, TrialSet
from nlb_suite.errors import ConfigFieldError, NLBInputError
from nlb_suite.seeding import seed_everything

from .lfads_model import LFADS, LFADSDims, LFADSOutput, masked_recon
from .torch_core import (
    TorchBaseline,
    Trainer,
    TrainSettings,
    autocast,
    check_ranges,
    check_seed_field,
    cpu_compute,
    split_seed,
    to_device,
)

# validation metrics on the internal validation trials (each a mean Poisson NLL per observed entry, except
# valid_loss): every entry not held back for SV, the held-out neurons alone, the SV entries, the scaled loss
MONITORS = ("valid_recon", "valid_heldout_nll", "valid_sv_nll", "valid_loss")


@dataclass
class LFADSConfig:
    """Architecture, priors, loss weights, augmentations and training knobs (defaults: NLB 5 ms maze)."""

    ic_enc_dim: int = 100
    ci_enc_dim: int = 80
    con_dim: int = 80
    co_dim: int = 4
    ic_dim: int = 100
    gen_dim: int = 100
    fac_dim: int = 40
    ci_lag: int = 1
    cell_clip: float = 5.0
    ic_post_var_min: float = 1e-4
    dropout: float = 0.02
    ic_prior_var: float = 0.1
    co_prior_tau: float = 10.0
    co_prior_nvar: float = 0.1
    kl_ic_scale: float = 1e-7
    kl_co_scale: float = 1e-7
    l2_gen_scale: float = 1e-4
    l2_con_scale: float = 1e-4
    kl_start_epoch: int = 0
    kl_increase_epoch: int = 80
    l2_start_epoch: int = 0
    l2_increase_epoch: int = 80
    loss_scale: float = 1e4
    cd_rate: float = 0.3
    sv_rate: float = 0.0
    sv_early_stop: bool = False
    monitor: str = "auto"  # auto: valid_sv_nll with sv_early_stop, else valid_recon; or one of MONITORS
    valid_frac: float = 0.2
    valid_seed: Optional[int] = None  # the split's seed (and the sample-validation mask's); None: the run's seed
    refit: bool = False  # after early stopping chose the epoch: train again on every train trial (torch_core)
    n_samples: int = 0  # 0: posterior mean; N: average of N posterior samples
    predict_batch: int = 256
    cpu_threads: int = 1  # torch CPU threads during fit/predict (0: torch's default)
    lr: float = 4e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 1000
    patience: int = 200
    grad_clip: float = 200.0
    lr_schedule: str = "plateau"
    warmup_epochs: int = 0
    lr_min_ratio: float = 0.0025
    plateau_factor: float = 0.95
    plateau_patience: int = 6

    def __post_init__(self) -> None:
        positive = ("ic_enc_dim", "ci_enc_dim", "con_dim", "co_dim", "ic_dim", "gen_dim", "fac_dim",
                    "cell_clip", "ic_post_var_min", "ic_prior_var", "co_prior_tau", "co_prior_nvar",
                    "loss_scale", "predict_batch")
        non_negative = ("ci_lag", "cpu_threads", "kl_ic_scale", "kl_co_scale", "l2_gen_scale", "l2_con_scale",
                        "kl_start_epoch", "kl_increase_epoch", "l2_start_epoch", "l2_increase_epoch", "n_samples")
        check_ranges(self, "lfads", positive, non_negative, unit_open=("dropout", "cd_rate", "sv_rate"),
                     fractions=("valid_frac",))
        check_seed_field(self.valid_seed, "lfads", "valid_seed")
        if self.sv_early_stop and self.sv_rate == 0:
            raise ConfigFieldError("lfads", "sv_early_stop", "needs sv_rate > 0", also=("sv_rate",))
        if self.monitor not in ("auto", *MONITORS):
            raise ConfigFieldError("lfads", "monitor", f"must be auto or one of {', '.join(MONITORS)} "
                                   f"(got {self.monitor!r})")
        if self.sv_early_stop and self.monitor not in ("auto", "valid_sv_nll"):
            raise ConfigFieldError("lfads", "sv_early_stop", f"contradicts monitor={self.monitor} "
                                   "(sv_early_stop means monitor=valid_sv_nll)", also=("monitor",))
        if self.monitor == "valid_sv_nll" and self.sv_rate == 0:
            raise ConfigFieldError("lfads", "monitor", "=valid_sv_nll needs sv_rate > 0", also=("sv_rate",))
        self.train_settings().check("lfads")

    def resolved_monitor(self) -> str:
        """The validation metric early stopping (and a sweep's selection) minimises."""
        if self.monitor != "auto":
            return self.monitor
        return "valid_sv_nll" if self.sv_early_stop else "valid_recon"

    def train_settings(self) -> TrainSettings:
        """The shared trainer's settings from this config."""
        return TrainSettings.from_config(self, self.resolved_monitor())

    def dims(self, n_in: int, n_out: int, n_fwd: int) -> LFADSDims:
        """Network sizes for the given neuron and forward-bin counts."""
        names = {f.name for f in dataclasses.fields(LFADSDims)} - {"n_in", "n_out", "n_fwd"}
        return LFADSDims(n_in=n_in, n_out=n_out, n_fwd=n_fwd, **{k: getattr(self, k) for k in names})


def ramp(epoch: int, start: int, length: int) -> float:
    """Linear 0 → 1 weight over `length` epochs from `start`."""
    if length == 0:
        return float(epoch >= start)
    return float(np.clip((epoch - start + 1) / length, 0.0, 1.0))


@dataclass
class LFADSData:
    """Device tensors of a trial set: held-in input, full targets (T + forward, all neurons) and weights."""

    x: torch.Tensor  # (n, T, n_in), NaN zeroed
    x_obs: torch.Tensor  # (n, T, n_in) 1 where observed
    target: Optional[torch.Tensor] = None  # (n, T + F, n_in + n_out), NaN zeroed
    weight: Optional[torch.Tensor] = None  # 1 where observed


def prepare(trials: TrialSet, n_fwd: int, device: torch.device) -> LFADSData:
    """Move a TrialSet to the device once; NaN entries become 0 with weight 0 (SBTT)."""
    x = np.asarray(trials.spikes_heldin, dtype=np.float32)
    data = LFADSData(x=to_device(np.nan_to_num(x), device), x_obs=to_device(~np.isnan(x), device))
    if trials.spikes_heldout is None:
        return data
    n, t, _ = x.shape
    parts = [x, np.asarray(trials.spikes_heldout, dtype=np.float32)]
    enc = np.concatenate(parts, axis=2)
    fwd_parts = [trials.spikes_heldin_forward, trials.spikes_heldout_forward]
    if any(p is None for p in fwd_parts):
        fwd = np.full((n, n_fwd, enc.shape[2]), np.nan, dtype=np.float32)
    else:
        fwd = np.concatenate([np.asarray(p, dtype=np.float32) for p in fwd_parts], axis=2)
    full = np.concatenate([enc, fwd], axis=1)
    data.target = to_device(np.nan_to_num(full), device)
    data.weight = to_device(~np.isnan(full), device)
    return data


class LFADSBaseline(TorchBaseline):
    name = "lfads"
    description = "LFADS sequential VAE with controller inputs, coordinated dropout, sample validation and SBTT"
    Config = LFADSConfig

    model: Optional[LFADS]

    def __init__(self, config: LFADSConfig, context: RunContext):
        super().__init__(config, context)
        self.curves: list[dict] = []

    # ----- losses -----------------------------------------------------------------------------------

    def input_masks(self, x_shape: tuple, sv: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Input multiplier (CD·SV masks with inverse scaling) and the CD mask (1 = kept at the input)."""
        cfg = self.config
        keep = 1.0 - sv
        scale = 1.0 / (1.0 - cfg.sv_rate)
        cd = torch.ones(x_shape, device=sv.device)
        if train and cfg.cd_rate > 0:
            cd = torch.bernoulli(torch.full(x_shape, 1.0 - cfg.cd_rate, device=sv.device))
            scale = scale / (1.0 - cfg.cd_rate)
        return keep * cd * scale, cd

    @staticmethod
    def model_input(data: LFADSData, idx: torch.Tensor, mult: torch.Tensor) -> torch.Tensor:
        """Held-in input of a batch: missing (NaN) entries zeroed (SBTT), then the CD/SV multiplier."""
        return data.x[idx] * data.x_obs[idx] * mult

    def loss(self, out: LFADSOutput, data: LFADSData, idx: torch.Tensor, sv: torch.Tensor,
             cd: Optional[torch.Tensor], epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Scaled LFADS loss for a batch; `cd` (kept-at-input mask) routes held-in gradients, None = all."""
        cfg = self.config
        t, n_in = sv.shape[1], sv.shape[2]
        weight = data.weight[idx].clone()
        weight[:, :t, :n_in] *= data.x_obs[idx] * (1.0 - sv)
        grad_mask = torch.ones_like(weight)
        if cd is not None:
            grad_mask[:, :t, :n_in] = 1.0 - cd
        recon = masked_recon(out.log_rates, data.target[idx], weight, grad_mask)
        kl_ic, kl_co = self.model.kl_terms(out)
        l2_gen, l2_con = self.model.l2_terms()
        kl_w = ramp(epoch, cfg.kl_start_epoch, cfg.kl_increase_epoch)
        l2_w = ramp(epoch, cfg.l2_start_epoch, cfg.l2_increase_epoch)
        total = cfg.loss_scale * (recon + l2_w * (cfg.l2_gen_scale * l2_gen + cfg.l2_con_scale * l2_con)
                                  + kl_w * (cfg.kl_ic_scale * kl_ic + cfg.kl_co_scale * kl_co))
        return total, {"recon": float(recon.detach()), "kl_ic": float(kl_ic.detach()),
                       "kl_co": float(kl_co.detach()), "kl_ramp": kl_w}

    # ----- fit / predict ----------------------------------------------------------------------------

    def build(self, n_in: int, n_out: int) -> LFADS:
        """A fresh network on the device for these neuron counts."""
        self.model = LFADS(self.config.dims(n_in, n_out, self.context.n_forward_bins)).to(self.device)
        return self.model

    def _fit(self, train: TrialSet) -> None:
        """Seeded train/valid split of the train trials, then early-stopped training."""
        cfg, ctx = self.config, self.context
        n, t, n_in = self.fit_shape(train)
        if cfg.ci_lag >= t:
            raise ConfigFieldError("lfads", "ci_lag", f"={cfg.ci_lag} must be under the {t} encoded bins")
        seed_everything(ctx.seed)
        rng = np.random.default_rng(split_seed(cfg.valid_seed, ctx.seed))  # the split and the sample-validation mask
        train_ids, valid_ids = self.hold_out(n, cfg.valid_frac, rng)  # rng's later draws follow the split
        sv_all = torch.zeros((n, t, n_in), device=self.device)  # fixed sample-validation mask (1 = held back)
        if cfg.sv_rate > 0:
            sv_all = to_device(rng.random((n, t, n_in), dtype=np.float32) < cfg.sv_rate, self.device)
        data = prepare(train, ctx.n_forward_bins, self.device)
        model = self.build(n_in, n_in + train.spikes_heldout.shape[2])
        with torch.no_grad():  # start the readout at each neuron's mean log-rate
            counts, weight = data.target[train_ids], data.weight[train_ids]
            mean = (counts * weight).sum((0, 1)) / weight.sum((0, 1)).clamp(min=1.0)
            model.readout.bias.copy_(torch.log(mean.clamp(min=1e-3)))

        def step(batch: torch.Tensor, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = train_ids[batch]
            sv = sv_all[idx]
            mult, cd = self.input_masks(sv.shape, sv, train=True)
            with autocast(self.device):
                out = model(self.model_input(data, idx, mult), sample=True)
            return self.loss(out, data, idx, sv, cd if cfg.cd_rate > 0 else None, epoch)

        def validate(epoch: int) -> dict[str, float]:
            idx, sv = valid_ids, sv_all[valid_ids]
            mult, _ = self.input_masks(sv.shape, sv, train=False)
            with autocast(self.device):
                out = model(self.model_input(data, idx, mult), sample=False)
            total, logs = self.loss(out, data, idx, sv, None, epoch)
            log_rates = out.log_rates.float()
            heldout_w = data.weight[idx].clone()
            heldout_w[:, :, :n_in] = 0
            metrics = {"valid_loss": float(total), "valid_recon": logs["recon"],
                       "valid_heldout_nll": float(masked_recon(log_rates, data.target[idx], heldout_w,
                                                               torch.ones_like(heldout_w)))}
            if cfg.sv_rate > 0:
                sv_w = torch.zeros_like(heldout_w)
                sv_w[:, :t, :n_in] = sv * data.x_obs[idx]
                metrics["valid_sv_nll"] = float(masked_recon(log_rates, data.target[idx], sv_w, torch.ones_like(sv_w)))
            return metrics

        trainer = Trainer(model, cfg.train_settings(), self.device, ctx.run_dir, name="lfads")
        self.curves = trainer.fit(len(train_ids), step, validate, progress=ctx.extras.get("progress"),
                                  on_epoch=ctx.extras.get("on_epoch"))

    def log_rates(self, trials: TrialSet) -> torch.Tensor:
        """Log-rates (n, T + F, n_in + n_out): posterior mean, or log of the mean over posterior samples."""
        if self.model is None:
            raise NLBInputError("baseline lfads: predict() before fit()")
        with cpu_compute(self.config.cpu_threads, self.device), torch.no_grad():
            return self._log_rates(trials)

    def _log_rates(self, trials: TrialSet) -> torch.Tensor:
        self.model.eval()
        data = prepare(dataclasses.replace(trials, spikes_heldout=None), self.context.n_forward_bins, self.device)
        chunks = []
        for start in range(0, data.x.shape[0], self.config.predict_batch):
            x = data.x[start:start + self.config.predict_batch]
            with autocast(self.device):
                if self.config.n_samples == 0:
                    out = self.model(x, sample=False).log_rates.float()
                else:
                    rates = sum(torch.exp(self.model(x, sample=True).log_rates.float())
                                for _ in range(self.config.n_samples))
                    out = torch.log(rates / self.config.n_samples)
            chunks.append(out)
        return torch.cat(chunks)

    def latents(self, trials: TrialSet) -> np.ndarray:
        """(n, T, fac_dim) factors of the posterior mean in the trials' windows, for state R2."""
        if self.model is None:
            raise NLBInputError("baseline lfads: latents() before fit()")
        with cpu_compute(self.config.cpu_threads, self.device), torch.no_grad():
            self.model.eval()
            x = prepare(dataclasses.replace(trials, spikes_heldout=None), self.context.n_forward_bins, self.device).x
            t = x.shape[1]
            chunks = [self.model(x[s:s + self.config.predict_batch], sample=False).factors.float()[:, :t]
                      for s in range(0, x.shape[0], self.config.predict_batch)]
        return torch.cat(chunks).cpu().numpy()

    def predict(self, trials: TrialSet) -> Rates:
        """Held-in, held-out and forward rates (spikes per bin)."""
        rates = torch.exp(self.log_rates(trials)).cpu().numpy().astype(np.float32)
        t, n_in = trials.spikes_heldin.shape[1], trials.spikes_heldin.shape[2]
        return Rates(heldin=rates[:, :t, :n_in], heldout=rates[:, :t, n_in:],
                     heldin_forward=rates[:, t:, :n_in], heldout_forward=rates[:, t:, n_in:])
