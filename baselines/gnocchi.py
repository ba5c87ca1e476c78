"""GNOCCHI baseline: conditional latent diffusion of population activity from a disentangled trial code.

Our adaptation of McCart et al. 2024 (arXiv 2407.21195; only the abstract is public, no code), built on
InfoDiffusion (Wang et al. 2023). Every design choice and why:

- **Code c.** A conv encoder maps a trial's held-in spikes (log1p counts, input dropout `input_dropout`)
  to a deterministic code c (`code_dim`, 8-32). InfoDiffusion keeps c informative (it must help the
  denoiser) and close to N(0, I) with a biased MMD penalty (kernel exp(-mean (x - y)^2 / d)) against as
  many prior draws as the batch holds, weight `mmd_scale` (0.1). At d = 16 that kernel is nearly flat over
  prior draws (~e^(-1/8)), so it barely notices codes shrunk towards 0 and trials generated from c ~ N(0, I)
  come out wrong (median Fano 5-9 against 2.5-2.9 real). `mmd_bandwidth` puts another width in place of d:
  the default 1 (chosen on two development stand-ins' train trials, benchmarks/bench_gnocchi_mmd.py) makes
  prior samples realistic at unchanged co-bps (paired on three data seeds); 0 is InfoDiffusion's d. The encoder sees
  held-in spikes only, in training as at prediction, so co-smoothing never needs held-out data of an eval
  trial.
- **Latent diffusion (LDNS-style), not diffusion on counts.** A spike autoencoder (non-causal convs over
  all neurons' log1p counts of the window and the forward bins -> `latent_dim` channels every
  `latent_stride` bins; decoder: linear interpolation back to every bin, then a linear Poisson readout
  to every neuron) is trained first with coordinated dropout (`ae_cd_rate`: the loss counts only entries
  hidden at the input, so the autoencoder cannot copy spikes), a temporal smoothness penalty and a small
  L2 on the latents, at its own learning rate and schedule (`ae_lr`, `ae_lr_schedule`: its validation loss
  bottoms out well before `ae_max_epochs`, and on mc_maze_small a constant rate there beat the cosine decay's
  lower one on internal validation). The diffusion model then runs on the standardised latents. Why: (1) speed: a
  diffusion model pays K samples x S DDIM steps of denoiser calls per trial at prediction, on top of
  its training; on the shared CPU the U-Net over 16 channels at all 180 bins of a 5 ms trial took 0.31 s
  per training step of 32 trials, and at stride 4 it sees 45 steps; neurons as channels (100-200)
  would widen every layer's input further; (2) the latents are smooth and continuous, so
  Gaussian diffusion fits them, whereas raw counts are discrete and mostly zero; (3) rates come out
  through a proper Poisson readout, and their mean over samples has far less variance than averaged
  sampled spike trains.
- **Denoiser.** A 1-D temporal U-Net (latent channels as channels, `unet_widths` per level, one
  residual block per level) predicts the added noise. Each block's group norm is adaptive: scale and
  shift from the sinusoidal step embedding, then a second scale and shift from c (DiffAE/InfoDiffusion
  conditioning). The output conv starts at zero.
- **Schedule and sampling.** Linear betas `beta_start`..`beta_end` (1e-5..1e-2) over `n_steps` (1000),
  DDPM training on noise prediction; DDIM sampling with `ddim_steps` steps and `ddim_eta` (1: fresh noise in
  every step; on four stand-ins' internal validation trials it beat the deterministic 0 by 0.001-0.006
  co-bps with guidance, the sample count 32 vs 8 and 100 vs 50 steps by nothing), the implied
  clean latent clamped at +-`clip_x0` (standardised units) in every step.
- **Loss weighting (`snr_weighting`).** The noise MSE equals the clean-latent MSE times the SNR, so at
  high noise, the only place where the denoiser must rely on c, plain noise prediction hardly rewards
  knowing the clean latent: with it the code collapsed (per-dimension std 0.03, co-bps -0.03 on synthetic
  mc_maze_small). Each step's noise MSE is weighted by max(1, 1/SNR_t) (Salimans & Ho's truncated SNR
  weighting in noise-prediction form): the clean-latent MSE wherever SNR < 1, the plain noise MSE
  elsewhere. With it the code carries the trial (co-bps +0.08 at the same budget).
- **Reconstruction term.** The clean latent implied by the noise prediction (soft-clipped,
  clip_x0 * tanh(x / clip_x0)) is read out to log-rates and scored by the Poisson NLL of the actual
  spikes of all neurons (window + forward bins, NaN left out). Loss = weighted noise MSE +
  `recon_scale` x that NLL + `mmd_scale` x MMD. This ties c to what co-smoothing scores: held-out and
  forward spikes.
- **Co-smoothing as posterior inference (our addition).** For each trial, c from its held-in spikes;
  `n_samples` DDIM samples of the latents (window + forward bins) given c, each step's predicted clean
  latent pulled toward the trial's held-in spikes by a proximal Poisson-likelihood step of strength
  `guidance` (DiffPIR's data step; baselines/gnocchi_guidance.py; one L-BFGS per sample, so no sample's
  step depends on the samples solved beside it, `guidance_solver`); rates = mean over samples of
  exp(readout) in spikes per bin, for held-in, held-out and forward bins. Why: the static code alone
  (guidance 0, plain conditional sampling) carried too little of the single trial: on a development
  stand-in (synthetic mc_maze_small, data seed 9, never reported) co-bps 0.14 on its eval trials and 0.09
  on the fit's internal validation trials, against 0.24 / 0.25 with guidance 3; the diffusion model given
  c stays the prior, the held-in spikes the evidence. `guidance` lists candidate strengths; the fit picks
  the one with the highest co-bps on its internal validation trials (never the eval trials) and writes
  the choice to gnocchi_guidance.json. Generation from a code alone (unseen conditions, samples) has no
  spikes and is unguided. Sampling uses its own generator seeded by the run seed, so a run is
  reproducible.
- **Training and selection.** Two stages on the same seeded train/valid split of the train trials
  (`valid_frac`; drawn from `valid_seed` when set, else from the run's seed), both through the shared Trainer:
  the autoencoder (monitor: NLL of entries hidden at the input on the valid trials, a fixed mask), then encoder
  + denoiser with the autoencoder frozen (monitor: the loss on the valid trials under fixed noise draws). Eval
  trials are never used. SBTT-style NaN handling: NaN spikes are zeroed at every input and left out of every
  loss.
- **Sweeps.** `nlb-eval sweep gnocchi` sees the diffusion stage only (its epochs, its validation loss, its
  snapshots of the whole model); a trial resumed from a snapshot (interruption, PBT exploit, the rebuild of
  the chosen model) loads the trained autoencoder from it instead of training it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from nlb_suite.baseline_api import Rates, RunContext, TrialSet
from nlb_suite.errors import ConfigFieldError, NLBInputError, check_choice
from nlb_suite.jsonio import write_json
from nlb_suite.metrics import bits_per_spike
from nlb_suite.seeding import seed_everything

from .diffusion import BETA_RANGE, betas_in_range, ddim_sample, linear_schedule, mmd, predicted_x0, q_sample
from .gnocchi_guidance import SOLVERS, AffineReadout, LogRates, held_in_correction
from .gnocchi_model import Gnocchi, GnocchiDims
from .lfads_model import masked_recon
from .torch_core import (
    SCHEDULES,
    TorchBaseline,
    Trainer,
    TrainHooks,
    TrainSettings,
    active_hooks,
    autocast,
    check_ranges,
    check_seed_field,
    cpu_compute,
    internal_split,
    split_seed,
    to_device,
    training_hooks,
)

VALID_DRAWS = 4  # fixed (step, noise) draws per valid trial for the diffusion stage's validation loss
GUIDANCE_FILE = "gnocchi_guidance.json"  # the guidance strength chosen on the internal validation trials


@dataclass
class GnocchiConfig:
    """Networks, diffusion, loss weights, sampling and training knobs (defaults: mid-sized, 5 ms maze)."""

    # what a run recorded before a field existed did, where that is not the field's default (so an old run
    # folder is never taken for one made with the new behaviour; benchmarks/bench_models.py `reusable`)
    BEFORE_FIELD: ClassVar[dict[str, object]] = {"guidance_solver": "joint"}

    code_dim: int = 16
    enc_width: int = 64
    enc_pool: int = 8
    input_dropout: float = 0.2
    latent_dim: int = 16
    latent_stride: int = 4  # bins per latent step (the diffusion runs at 1/stride of the bin rate)
    ae_width: int = 64
    ae_kernel: int = 9
    ae_cd_rate: float = 0.3
    ae_smooth_scale: float = 1.0
    ae_l2_scale: float = 1e-3
    ae_lr: float = 3e-3
    ae_max_epochs: int = 300
    ae_lr_schedule: str = "cosine"  # the autoencoder stage's own schedule (one of torch_core.SCHEDULES)
    unet_widths: tuple[int, ...] = (64, 128)
    emb_dim: int = 64
    dropout: float = 0.1
    n_steps: int = 1000
    beta_start: float = 1e-5
    beta_end: float = 1e-2
    snr_weighting: str = "truncated"  # noise-MSE weight per step: "truncated" max(1, 1/SNR) or "none"
    mmd_scale: float = 0.1
    mmd_bandwidth: float = 1.0  # the MMD kernel's exp(-mean (x - y)^2 / bandwidth); 0: code_dim (InfoDiffusion's)
    recon_scale: float = 1.0
    ddim_steps: int = 50
    ddim_eta: float = 1.0  # stochastic (DDPM-like) steps: internal-validation co-bps of guided sampling +0.001..0.006
    clip_x0: float = 5.0  # clamp of the predicted clean (standardised) latent in each DDIM step; 0: off
    n_samples: int = 8
    guidance: tuple[float, ...] = (0.0, 1.0, 3.0, 10.0)  # held-in guidance strengths; >1: chosen on validation
    guidance_iters: int = 10  # L-BFGS iterations of each proximal step
    guidance_solver: str = "per_sample"  # one L-BFGS per sample; "joint": one over the batch (before 2026-12-05)
    predict_batch: int = 512
    valid_frac: float = 0.2
    valid_seed: Optional[int] = None  # the split's seed (and its fixed validation draws); None: the run's seed
    cpu_threads: int = 1
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 1000
    patience: int = 1000
    grad_clip: float = 1.0
    lr_schedule: str = "cosine"
    warmup_epochs: int = 10
    lr_min_ratio: float = 0.05
    plateau_factor: float = 0.95
    plateau_patience: int = 6

    def __post_init__(self) -> None:
        positive = ("code_dim", "enc_width", "enc_pool", "latent_dim", "latent_stride", "ae_width", "ae_kernel", "ae_lr",
                    "ae_max_epochs", "emb_dim", "n_steps", "ddim_steps", "n_samples", "guidance_iters", "predict_batch")
        non_negative = ("ae_smooth_scale", "ae_l2_scale", "mmd_scale", "mmd_bandwidth", "recon_scale", "ddim_eta",
                        "clip_x0", "cpu_threads")
        check_ranges(self, "gnocchi", positive, non_negative, unit_open=("input_dropout", "ae_cd_rate", "dropout"),
                     fractions=("valid_frac",))
        check_seed_field(self.valid_seed, "gnocchi", "valid_seed")
        if not self.guidance or any(not (np.isfinite(g) and g >= 0) for g in self.guidance):
            raise ConfigFieldError("gnocchi", "guidance", f"must be a non-empty list of strengths >= 0 "
                                   f"(got {list(self.guidance)!r})")
        if not self.unet_widths or any(int(w) < 1 for w in self.unet_widths):
            raise ConfigFieldError("gnocchi", "unet_widths", f"must be a non-empty list of positive widths "
                                   f"(got {list(self.unet_widths)!r})")
        check_choice(self.snr_weighting, "gnocchi", "snr_weighting", WEIGHTINGS)
        if self.ddim_eta > 1:
            raise ConfigFieldError("gnocchi", "ddim_eta", f"must be in [0, 1] (got {self.ddim_eta})")
        if self.ddim_steps > self.n_steps:
            raise ConfigFieldError("gnocchi", "ddim_steps", f"({self.ddim_steps}) exceeds n_steps ({self.n_steps})",
                                   also=("n_steps",))
        if not betas_in_range(self.beta_start, self.beta_end):
            raise ConfigFieldError("gnocchi", "beta_start", f"and beta_end must be {BETA_RANGE} "
                                   f"(got {self.beta_start}, {self.beta_end})", also=("beta_end",))
        self.train_settings().check("gnocchi")
        check_choice(self.ae_lr_schedule, "gnocchi", "ae_lr_schedule", SCHEDULES)
        check_choice(self.guidance_solver, "gnocchi", "guidance_solver", SOLVERS)

    def train_settings(self, stage: str = "diffusion") -> TrainSettings:
        """The shared trainer's settings for a stage ("autoencoder" or "diffusion")."""
        settings = TrainSettings.from_config(self, "valid_loss")
        if stage == "autoencoder":
            settings = dataclasses.replace(settings, lr=self.ae_lr, max_epochs=self.ae_max_epochs,
                                           lr_schedule=self.ae_lr_schedule,
                                           patience=min(self.patience, self.ae_max_epochs),
                                           warmup_epochs=min(self.warmup_epochs, self.ae_max_epochs - 1))
        return settings

    def dims(self, n_in: int, n_all: int) -> GnocchiDims:
        """Network sizes for the given neuron counts."""
        names = {f.name for f in dataclasses.fields(GnocchiDims)} - {"n_in", "n_all", "unet_widths"}
        return GnocchiDims(n_in=n_in, n_all=n_all, unet_widths=tuple(int(w) for w in self.unet_widths),
                           **{k: getattr(self, k) for k in names})


@dataclass
class GnocchiData:
    """Device tensors of a trial set: held-in input (NaN zeroed) and, for train sets, all-neuron counts."""

    x: torch.Tensor  # (n, T, n_in)
    x_obs: torch.Tensor  # 1 where observed
    counts: Optional[torch.Tensor] = None  # (n, T + F, n_all), NaN zeroed
    weight: Optional[torch.Tensor] = None  # 1 where observed


def prepare(trials: TrialSet, n_fwd: int, device: torch.device) -> GnocchiData:
    """Move a TrialSet to the device once; NaN entries become 0 with weight 0."""
    x = np.asarray(trials.spikes_heldin, dtype=np.float32)
    data = GnocchiData(x=to_device(np.nan_to_num(x), device), x_obs=to_device(~np.isnan(x), device))
    if trials.spikes_heldout is None:
        return data
    n = x.shape[0]
    window = np.concatenate([x, np.asarray(trials.spikes_heldout, dtype=np.float32)], axis=2)
    fwd_parts = [trials.spikes_heldin_forward, trials.spikes_heldout_forward]
    if any(p is None for p in fwd_parts):
        fwd = np.full((n, n_fwd, window.shape[2]), np.nan, dtype=np.float32)
    else:
        fwd = np.concatenate([np.asarray(p, dtype=np.float32) for p in fwd_parts], axis=2)
    full = np.concatenate([window, fwd], axis=1)
    data.counts = to_device(np.nan_to_num(full), device)
    data.weight = to_device(~np.isnan(full), device)
    return data


@dataclass
class AutoencoderStage:
    """Where fit()'s autoencoder stage leaves the diffusion stage: the trials on the device, the split, and the
    generator whose next draws are the diffusion stage's validation noise."""

    data: GnocchiData
    train_ids: torch.Tensor
    valid_ids: torch.Tensor
    rng: np.random.Generator


WEIGHTINGS = ("truncated", "none")


def noise_weight(alpha_bar: torch.Tensor, weighting: str) -> torch.Tensor:
    """Per-step weight of the noise MSE: "truncated" max(1, 1/SNR) = max(1, (1 - ab) / ab), "none" 1.

    The noise MSE equals the clean-sample MSE times SNR, so at high noise (SNR ~ 0.007 at the last step)
    plain noise prediction barely rewards knowing x0 - exactly where only the code c can tell it. The
    truncated weight makes the loss the clean-sample MSE wherever SNR < 1 and leaves it as is elsewhere
    (the max(SNR, 1) weighting of Salimans & Ho 2022, written for noise prediction).
    """
    if weighting == "none":
        return torch.ones_like(alpha_bar)
    return torch.clamp((1 - alpha_bar) / alpha_bar, min=1.0)


def soft_clip(x: torch.Tensor, limit: float) -> torch.Tensor:
    """limit * tanh(x / limit) (identity when limit is 0): bounded, with a gradient everywhere."""
    return limit * torch.tanh(x / limit) if limit > 0 else x


def smoothness(latents: torch.Tensor) -> torch.Tensor:
    """Mean squared bin-to-bin change of the latents (the autoencoder's temporal smoothness penalty)."""
    return (latents[:, 1:] - latents[:, :-1]).pow(2).mean()


def split_generator(config: GnocchiConfig, run_seed: int) -> np.random.Generator:
    """The generator a fit at `run_seed` draws its train/valid split from, then its fixed validation draws."""
    return np.random.default_rng(split_seed(config.valid_seed, run_seed))


def validation_ids(config: GnocchiConfig, run_seed: int, n_trials: int) -> np.ndarray:
    """The indices of the internal validation trials a fit of `n_trials` train trials at `run_seed` holds out (as
    `fit` draws them): what a diagnostic of a saved fit scores on."""
    return internal_split(n_trials, config.valid_frac, split_generator(config, run_seed))[1]


class GnocchiBaseline(TorchBaseline):
    name = "gnocchi"
    description = ("GNOCCHI: latent diffusion of population activity conditioned on a disentangled trial code "
                   "(InfoDiffusion MMD), DDIM sampling, rates from the mean of samples")
    Config = GnocchiConfig

    model: Optional[Gnocchi]

    def __init__(self, config: GnocchiConfig, context: RunContext):
        super().__init__(config, context)
        self.schedule = linear_schedule(config.n_steps, config.beta_start, config.beta_end)
        self.curves: dict[str, list[dict]] = {}
        self._latent_cache: dict[str, np.ndarray] = {}  # latents of the last two predict() calls, by held-in spikes
        self.chosen_guidance: Optional[float] = None  # chosen by fit on validation (or read by load) among several
        self.guidance_scores: dict[float, float] = {}  # internal-validation co-bps per candidate strength

    def build(self, n_in: int, n_all: int) -> Gnocchi:
        """A fresh network on the device for these neuron counts."""
        self.model = Gnocchi(self.config.dims(n_in, n_all)).to(self.device)
        return self.model

    # ----- inputs and losses ------------------------------------------------------------------------

    def encoder_input(self, data: GnocchiData, idx: torch.Tensor, train: bool) -> torch.Tensor:
        """Held-in spikes of a batch, NaN zeroed; in training, input dropout with inverse scaling."""
        x = data.x[idx] * data.x_obs[idx]
        rate = self.config.input_dropout
        if train and rate > 0:
            x = x * torch.bernoulli(torch.full_like(x, 1.0 - rate)) / (1.0 - rate)
        return x

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Codes c of held-in spike batches (B, T, n_in) -> (B, code_dim)."""
        return self.model.encoder(x)

    def diffusion_loss(self, data: GnocchiData, latents: torch.Tensor, idx: torch.Tensor, steps: torch.Tensor,
                       noise: torch.Tensor, train: bool, prior_generator: Optional[torch.Generator] = None
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """SNR-weighted noise MSE + recon_scale * Poisson NLL of the implied clean latent + mmd_scale * MMD.

        `prior_generator` draws the MMD's prior samples (validation: a fixed stream, training's untouched)."""
        cfg, model = self.config, self.model
        code = self.codes(self.encoder_input(data, idx, train))
        x0 = latents[idx]
        x_t = q_sample(x0, steps, noise, self.schedule)
        eps = model.denoiser(x_t, steps, code)
        ab = self.schedule.alphas_bar.to(self.device)[steps].float()
        mse = ((eps - noise).pow(2).mean((1, 2)) * noise_weight(ab, cfg.snr_weighting)).mean()
        x0_hat = soft_clip(predicted_x0(x_t, eps, ab), cfg.clip_x0)
        log_rates = model.log_rates_of(x0_hat, data.counts.shape[1]).clamp(max=10.0)
        recon = masked_recon(log_rates, data.counts[idx], data.weight[idx], torch.ones_like(data.weight[idx]))
        prior = torch.randn(code.shape, generator=prior_generator, device=code.device, dtype=code.dtype)
        penalty = mmd(code, prior, cfg.mmd_bandwidth)
        total = mse + cfg.recon_scale * recon + cfg.mmd_scale * penalty
        return total, {"noise_mse": float(mse.detach()), "recon": float(recon.detach()),
                       "mmd": float(penalty.detach())}

    def autoencoder_loss(self, data: GnocchiData, idx: torch.Tensor, keep: torch.Tensor
                         ) -> tuple[torch.Tensor, dict[str, float]]:
        """Poisson NLL of entries hidden at the input (keep = 0) + smoothness + L2 of the latents."""
        cfg, ae = self.config, self.model.autoencoder
        counts, weight = data.counts[idx], data.weight[idx]
        latents = ae.encode(counts * weight * keep / (1.0 - cfg.ae_cd_rate))
        hidden = weight * (1.0 - keep)
        nll = masked_recon(ae.log_rates(latents, counts.shape[1]), counts, hidden, torch.ones_like(hidden))
        smooth, l2 = smoothness(latents), latents.pow(2).mean()
        total = nll + cfg.ae_smooth_scale * smooth + cfg.ae_l2_scale * l2
        return total, {"nll": float(nll.detach()), "smooth": float(smooth.detach())}

    # ----- fit --------------------------------------------------------------------------------------

    def _stage_dir(self, stage: str) -> Optional[Path]:
        run_dir = self.context.run_dir
        if run_dir is None or stage == "diffusion":
            return run_dir  # the diffusion stage's curves.csv is the run's main curve (drawn in the report)
        folder = Path(run_dir) / stage
        folder.mkdir(exist_ok=True)
        return folder

    def _fit(self, train: TrialSet) -> None:
        """Seeded train/valid split of the train trials; autoencoder, then code encoder + denoiser (the validation
        trials also choose the guidance strength)."""
        stage = self.fit_autoencoder_stage(train)
        self._fit_diffusion(stage.data, stage.train_ids, stage.valid_ids, stage.rng)
        self._choose_guidance(train)

    def fit_autoencoder_stage(self, train: TrialSet) -> AutoencoderStage:
        """The first stage of fit() alone: the seeded train/valid split, a fresh network, the autoencoder trained
        (or, when a sweep resumes from a snapshot, loaded) and frozen. What the diffusion stage continues from; on
        its own, a cheap look at an autoencoder design (benchmarks/bench_gnocchi_reach.py)."""
        cfg, ctx = self.config, self.context
        n, _, n_in = self.fit_shape(train)
        seed_everything(ctx.seed)
        rng = split_generator(cfg, ctx.seed)  # the split and the fixed valid draws
        train_ids, valid_ids = self.hold_out(n, cfg.valid_frac, rng)  # rng's later draws follow the split
        data = prepare(train, ctx.n_forward_bins, self.device)
        model = self.build(n_in, n_in + train.spikes_heldout.shape[2])
        with torch.no_grad():  # start the readout at each neuron's mean log-rate
            counts, weight = data.counts[train_ids], data.weight[train_ids]
            mean = (counts * weight).sum((0, 1)) / weight.sum((0, 1)).clamp(min=1.0)
            model.autoencoder.readout.bias.copy_(torch.log(mean.clamp(min=1e-3)))
        # A sweep's hooks (per-epoch reports, snapshots, resume) reach the diffusion stage only: its valid
        # loss is the run's score and its snapshot holds the whole model (autoencoder and latent
        # standardisation included); resuming from one loads the trained autoencoder instead of training it.
        hooks = active_hooks()
        snapshot = hooks.resume["module"] if hooks is not None and hooks.resume is not None else None
        with training_hooks(TrainHooks()):
            self._fit_autoencoder(data, train_ids, valid_ids, rng, snapshot)
        return AutoencoderStage(data, train_ids, valid_ids, rng)

    def _choose_guidance(self, train: TrialSet) -> None:
        """The guidance strength with the highest co-bps on the internal validation trials (the only one, when
        `guidance` lists one); the scores and the choice go to gnocchi_guidance.json in the run folder."""
        scales = [float(g) for g in self.config.guidance]
        self.chosen_guidance, self.guidance_scores = None, {}
        if len(scales) == 1:
            return  # nothing to choose: guidance_scale() gives the one value
        keep = self.valid_ids
        valid = train.held_in_only().rows(keep)
        t, n_in = train.spikes_heldin.shape[1:]
        codes = self.encode(valid)
        for scale in scales:
            rates = self._posterior_mean(valid, scale, codes)[0]
            self.guidance_scores[scale] = bits_per_spike(rates[:, :t, n_in:], train.spikes_heldout[keep])
        self.chosen_guidance = max(scales, key=lambda g: self.guidance_scores[g])  # the first of equals
        if self.context.run_dir is not None:
            write_json(Path(self.context.run_dir) / GUIDANCE_FILE, {
                "rule": "highest co-bps of the held-out neurons on the fit's internal validation trials",
                "n_validation_trials": len(keep), "candidates": scales,
                "validation_co_bps": [self.guidance_scores[g] for g in scales], "chosen": self.chosen_guidance})

    def _fit_autoencoder(self, data: GnocchiData, train_ids: torch.Tensor, valid_ids: torch.Tensor,
                         rng: np.random.Generator, snapshot: Optional[dict] = None) -> None:
        """Train the autoencoder (with `snapshot`, a whole-model state dict: load it instead); freeze it."""
        cfg, model = self.config, self.model
        shape = tuple(data.counts[valid_ids].shape)
        # drawn even when restoring: the diffusion stage's validation draws come next from the same rng
        valid_keep = to_device(rng.random(shape, dtype=np.float32) >= cfg.ae_cd_rate, self.device)
        if snapshot is not None:
            model.load_state_dict(snapshot)
            self._freeze_autoencoder(data, train_ids, standardise=False)
            return

        def step(batch: torch.Tensor, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = train_ids[batch]
            keep = torch.bernoulli(torch.full(tuple(data.counts[idx].shape), 1.0 - cfg.ae_cd_rate, device=self.device))
            with autocast(self.device):
                return self.autoencoder_loss(data, idx, keep)

        def validate(epoch: int) -> dict[str, float]:
            with autocast(self.device):
                total, logs = self.autoencoder_loss(data, valid_ids, valid_keep)
            return {"valid_loss": float(total), "valid_nll": logs["nll"]}

        trainer = Trainer(model.autoencoder, cfg.train_settings("autoencoder"), self.device,
                          self._stage_dir("autoencoder"), name="gnocchi_autoencoder")
        self.curves["autoencoder"] = trainer.fit(len(train_ids), step, validate, progress=self.context.extras.get(
            "progress"))
        self._freeze_autoencoder(data, train_ids, standardise=True)

    def _freeze_autoencoder(self, data: GnocchiData, train_ids: torch.Tensor, standardise: bool) -> None:
        """The diffusion stage's standardised train latents (with `standardise`: the standardisation set from
        the train trials first); the autoencoder's weights frozen."""
        model = self.model
        model.autoencoder.eval()
        with torch.no_grad():
            latents = model.autoencoder.encode(data.counts * data.weight)
            if standardise:
                model.latent_mean.copy_(latents[train_ids].mean((0, 1)))
                model.latent_std.copy_(latents[train_ids].std((0, 1)).clamp(min=1e-4))
        self._train_latents = model.standardise(latents).detach()
        for p in model.autoencoder.parameters():
            p.requires_grad_(False)

    def _fit_diffusion(self, data: GnocchiData, train_ids: torch.Tensor, valid_ids: torch.Tensor,
                       rng: np.random.Generator) -> None:
        cfg, model = self.config, self.model
        latents = self._train_latents
        n_steps = self.schedule.n_steps
        valid_idx = valid_ids.repeat(VALID_DRAWS)
        valid_steps = torch.as_tensor(rng.integers(0, n_steps, len(valid_idx)), device=self.device)
        valid_noise = to_device(rng.standard_normal((len(valid_idx), *latents.shape[1:])), self.device)

        def step(batch: torch.Tensor, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
            idx = train_ids[batch]
            steps = torch.randint(0, n_steps, (len(idx),), device=self.device)
            noise = torch.randn((len(idx), *latents.shape[1:]), device=self.device)
            with autocast(self.device):
                return self.diffusion_loss(data, latents, idx, steps, noise, train=True)

        def validate(epoch: int) -> dict[str, float]:
            # the same draws every epoch (the validation seed's), and the training stream is left alone
            prior = torch.Generator(device=self.device).manual_seed(split_seed(cfg.valid_seed, self.context.seed))
            with autocast(self.device):
                total, logs = self.diffusion_loss(data, latents, valid_idx, valid_steps, valid_noise, train=False,
                                                  prior_generator=prior)
            return {"valid_loss": float(total), "valid_noise_mse": logs["noise_mse"], "valid_recon": logs["recon"]}

        # the whole model goes to the trainer (the frozen autoencoder has no gradients, so AdamW skips it):
        # gnocchi_best.pt then holds every weight and the latent standardisation, a complete fitted model
        trainer = Trainer(model, cfg.train_settings("diffusion"), self.device, self._stage_dir("diffusion"),
                          name="gnocchi")
        self.curves["diffusion"] = trainer.fit(len(train_ids), step, validate,
                                               progress=self.context.extras.get("progress"),
                                               on_epoch=self.context.extras.get("on_epoch"))

    # ----- codes, sampling, predict -----------------------------------------------------------------

    def load(self, checkpoint: Path, n_in: int, n_all: int) -> None:
        """Restore a fitted model from a run's gnocchi_best.pt (every weight and the latent standardisation)
        and the guidance strength its fit chose (gnocchi_guidance.json beside it)."""
        self.build(n_in, n_all)
        self.model.load_state_dict(torch.load(checkpoint, map_location=self.device, weights_only=True))
        self.model.eval()
        choice = Path(checkpoint).parent / GUIDANCE_FILE
        if choice.exists():
            self.chosen_guidance = float(json.loads(choice.read_text())["chosen"])
        elif len(self.config.guidance) > 1:
            raise NLBInputError(f"baseline gnocchi: {choice} is missing: it names the guidance strength the fit "
                                f"chose (or set guidance to one value)")

    def _check_fitted(self) -> None:
        if self.model is None:
            raise NLBInputError("baseline gnocchi: predict() before fit()")

    def guidance_scale(self) -> float:
        """The held-in guidance strength predict() uses: the configured one, or the fit's choice among several."""
        self._check_fitted()
        if self.chosen_guidance is None:
            if len(self.config.guidance) > 1:
                raise NLBInputError("baseline gnocchi: no guidance strength chosen (fit() or load() first)")
            return float(self.config.guidance[0])
        return self.chosen_guidance

    def encode(self, trials: TrialSet) -> np.ndarray:
        """Codes c (n, code_dim) of trials from their held-in spikes (the latent space of the benchmarks)."""
        self._check_fitted()
        self.model.eval()
        data = prepare(dataclasses.replace(trials, spikes_heldout=None), self.context.n_forward_bins, self.device)
        with cpu_compute(self.config.cpu_threads, self.device), torch.no_grad():
            idx = torch.arange(data.x.shape[0], device=self.device)
            return self.codes(self.encoder_input(data, idx, train=False)).float().cpu().numpy()

    def sample_rates(self, codes: np.ndarray, n_samples: int, seed: int, n_bins: int, mean: bool = False,
                     spikes: Optional[np.ndarray] = None, scale: float = 0.0) -> np.ndarray:
        """Rates of DDIM samples of the latents given codes, through the readout (spikes per bin); with the
        trials' held-in `spikes` and `scale` > 0, samples of the posterior guided by them (as predict does).

        (n, n_samples, n_bins, n_all), or with `mean` their average over samples, (n, n_bins, n_all),
        without holding every sample in memory.
        """
        return self._sample(codes, n_samples, seed, n_bins, mean, spikes, scale)[0]

    def _sample(self, codes: np.ndarray, n_samples: int, seed: int, n_bins: int, mean: bool,
                spikes: Optional[np.ndarray] = None, scale: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(rates, latents read out at every bin), per sample or averaged over samples; with held-in `spikes`
        (n, T, n_in) and `scale` > 0, every sample guided by its trial's spikes (gnocchi_guidance.py)."""
        self._check_fitted()
        cfg, model = self.config, self.model
        model.eval()
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        code = torch.as_tensor(np.asarray(codes, dtype=np.float32), device=self.device)
        per_chunk = max(1, cfg.predict_batch // n_samples)  # whole trials per chunk
        rates_out, latents_out = [], []
        with cpu_compute(cfg.cpu_threads, self.device), torch.no_grad():
            progress = self.context.extras.get("progress")  # guided sampling of thousands of trials takes minutes
            for start in tqdm(range(0, len(code), per_chunk), desc="sample", leave=False,
                              disable=None if progress is None else not progress):
                rows = code[start:start + per_chunk].repeat_interleave(n_samples, dim=0)

                def denoise(x: torch.Tensor, steps: torch.Tensor, rows=rows) -> torch.Tensor:
                    with autocast(self.device):
                        return model.denoiser(x, steps, rows).float()

                shape = (len(rows), model.autoencoder.latent_length(n_bins), model.dims.latent_dim)
                correct = None
                if spikes is not None and scale > 0:
                    correct = self._held_in_correction(spikes[start:start + per_chunk], n_samples, n_bins, scale)
                x0 = ddim_sample(denoise, shape, self.schedule, cfg.ddim_steps, cfg.ddim_eta, generator,
                                 self.device, cfg.clip_x0, correct)
                rates = torch.exp(model.log_rates_of(x0, n_bins).clamp(max=10.0))
                latents = model.latents_at_bins(x0, n_bins)
                for part, out in ((rates, rates_out), (latents, latents_out)):
                    part = part.reshape(-1, n_samples, *part.shape[1:])
                    out.append((part.mean(1) if mean else part).cpu())
        return torch.cat(rates_out).numpy(), torch.cat(latents_out).numpy()

    def _held_in_correction(self, spikes: np.ndarray, n_samples: int, n_bins: int, scale: float):
        """The DDIM correction toward these trials' held-in spikes, each trial repeated for its samples."""
        y = torch.as_tensor(np.asarray(spikes, dtype=np.float32), device=self.device).repeat_interleave(n_samples, 0)
        observed = (~torch.isnan(y)).float()
        t, n_in = y.shape[1:]
        solver = self.config.guidance_solver
        return held_in_correction(self.held_in_log_rates(n_bins, t, n_in, adjoint=solver == "per_sample"),
                                  torch.nan_to_num(y), observed, scale, self.config.guidance_iters, self.config.clip_x0,
                                  solver)

    def held_in_log_rates(self, n_bins: int, t: int, n_in: int, adjoint: bool = True) -> LogRates:
        """The first `n_in` neurons' log-rates in the first `t` of `n_bins` bins, what guidance fits to the
        held-in spikes: an AffineReadout of the standardised latents (the solver's gradient by its adjoint,
        half the CPU time of autograd's), or with `adjoint` False the model's readout of every neuron and bin
        cut down, differentiated by autograd, as the joint solver has always run it (so it reproduces its runs)."""
        net = self.model
        if not adjoint:
            return lambda z: net.log_rates_of(z, n_bins)[:, :t, :n_in]
        ae = net.autoencoder
        steps = ae.latent_length(n_bins)
        with torch.no_grad():  # a one-hot latent per step, interpolated: each bin's weight on each step
            interp = ae.at_bins(torch.eye(steps, dtype=torch.float32, device=self.device)[None], n_bins)[0, :t]
            return AffineReadout(interp, ae.readout.weight[:n_in].detach().float(),
                                 ae.readout.bias[:n_in].detach().float(), net.latent_std.float(),
                                 net.latent_mean.float())

    def _posterior_mean(self, trials: TrialSet, scale: float, codes: Optional[np.ndarray] = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """(rates, latents) over window + forward bins, averaged over `n_samples` DDIM samples given the trials'
        codes and guided by their held-in spikes at `scale` (codes encoded here unless given)."""
        codes = self.encode(trials) if codes is None else codes
        return self._sample(codes, self.config.n_samples, self.context.seed,
                            trials.spikes_heldin.shape[1] + self.context.n_forward_bins, mean=True,
                            spikes=trials.spikes_heldin, scale=scale)

    @staticmethod
    def _key(trials: TrialSet) -> str:
        return hashlib.sha1(np.ascontiguousarray(trials.spikes_heldin).tobytes()).hexdigest()

    def predict(self, trials: TrialSet) -> Rates:
        """Held-in, held-out and forward rates: the mean over `n_samples` DDIM samples given c, guided by the
        held-in spikes (held-in spikes only)."""
        t, n_in = trials.spikes_heldin.shape[1], trials.spikes_heldin.shape[2]
        rates, latents = self._posterior_mean(trials, self.guidance_scale())
        rates = rates.astype(np.float32)
        self._latent_cache = {**dict(list(self._latent_cache.items())[-1:]), self._key(trials): latents[:, :t]}
        return Rates(heldin=rates[:, :t, :n_in], heldout=rates[:, :t, n_in:],
                     heldin_forward=rates[:, t:, :n_in], heldout_forward=rates[:, t:, n_in:])

    def latents(self, trials: TrialSet) -> np.ndarray:
        """(n, T, latent_dim) autoencoder latents at every window bin, averaged over the DDIM samples that
        gave the rates (kept from predict() on the same trials; sampled again otherwise), for state R2."""
        cached = self._latent_cache.get(self._key(trials))
        if cached is not None:
            return cached
        return self._posterior_mean(trials, self.guidance_scale())[1][:, :trials.spikes_heldin.shape[1]]
