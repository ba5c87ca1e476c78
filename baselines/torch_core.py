"""Shared plain-PyTorch training core for the neural baselines (LFADS, NDT/STNDT, the SAEs, GNOCCHI).

`TorchBaseline` is what they share around training: the device, fitting under `cpu_compute`, the one-line
checks of the train trials, and the internal validation trials drawn by `internal_split`; `check_ranges`
checks their configs' numeric fields.

One `Trainer` runs the epoch loop: seeded mini-batches drawn as index tensors on the device (the data
already lives there, so no per-step host copies), AdamW, gradient clipping, a warm-up + cosine or
plateau learning-rate schedule, early stopping on a validation metric with patience, the best weights
checkpointed in run_dir (reloaded with `torch.load(..., weights_only=True)`), a tqdm bar with live
losses (silent when not a terminal) and `run_dir/curves.csv` (epoch, train_loss, valid_loss, extras).
bf16 autocast is used only on CUDA. Importing this module imports torch: only neural baselines do.

A baseline whose config sets `refit: true` (NDT, STNDT, LFADS) trains twice: the selection fit above on the
internal split chooses the epoch, then a refit on every train trial replays the selection fit's learning rates
up to that epoch with as many optimiser steps per epoch, and keeps its last weights (`refitting`).

Sweeps and schedulers (nlb_suite.sweep) reach every Trainer through `training_hooks(TrainHooks(...))`
around `Baseline.fit`: a per-epoch `report` callback that can snapshot the whole trainer (`EpochEnd.state()`:
weights, optimiser, schedule, best weights, curves, RNG) and a `resume` snapshot to continue from, with a
changed lr or weight decay written into the optimiser. A baseline that trains through Trainer gets
checkpointing, resume and population-based training without a line of its own.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import math
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from nlb_suite.baseline_api import Baseline, RunContext, TrialSet
from nlb_suite.errors import SEED_MAX, NLBInputError, check_choice, check_field
from nlb_suite.internal_validation import internal_validation
from nlb_suite.runs import CURVES_FILE, REFIT_CURVES_FILE

SCHEDULES = ("cosine", "plateau", "none")
StepFn = Callable[[torch.Tensor, int], tuple[torch.Tensor, dict[str, float]]]
ValidFn = Callable[[int], dict[str, float]]
EpochFn = Callable[[int, dict], None]


RANGE_RULES = {  # kind -> (what a value must be, test)
    "positive": ("> 0", lambda v: v > 0), "non_negative": (">= 0", lambda v: v >= 0),
    "unit_open": ("in [0, 1)", lambda v: 0 <= v < 1), "unit_closed": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "fractions": ("in (0, 1)", lambda v: 0 < v < 1),
}


def check_ranges(config: object, who: str, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                 unit_open: tuple[str, ...] = (), unit_closed: tuple[str, ...] = (),
                 fractions: tuple[str, ...] = ()) -> None:
    """One line naming `who`, the field and its range for the first of a config's values out of it: positive
    (> 0), non_negative (>= 0), unit_open ([0, 1)), unit_closed ([0, 1]) or fractions ((0, 1)); NaN and inf
    never pass."""
    kinds = {"positive": positive, "non_negative": non_negative, "unit_open": unit_open,
             "unit_closed": unit_closed, "fractions": fractions}
    for kind, keys in kinds.items():
        for key in keys:
            check_field(getattr(config, key), who, key, *RANGE_RULES[kind])


@dataclass
class TrainSettings:
    """Optimiser, schedule and stopping knobs shared by the neural baselines."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 20
    grad_clip: float = 200.0
    lr_schedule: str = "cosine"
    warmup_epochs: int = 0
    lr_min_ratio: float = 0.01
    plateau_factor: float = 0.95
    plateau_patience: int = 6
    monitor: str = "valid_loss"

    @classmethod
    def from_config(cls, config: object, monitor: str) -> TrainSettings:
        """The settings a baseline's config carries under the same field names, with its monitored metric."""
        names = {f.name for f in dataclasses.fields(cls)} - {"monitor"}
        return cls(monitor=monitor, **{k: getattr(config, k) for k in names})

    def check(self, who: str) -> None:
        """Raise NLBInputError naming `who` on an out-of-range value."""
        checks = (
            ("lr", "> 0", lambda v: v > 0), ("weight_decay", ">= 0", lambda v: v >= 0),
            ("batch_size", ">= 1", lambda v: v >= 1), ("max_epochs", ">= 1", lambda v: v >= 1),
            ("patience", ">= 1", lambda v: v >= 1), ("grad_clip", "> 0", lambda v: v > 0),
            ("warmup_epochs", ">= 0", lambda v: v >= 0), ("lr_min_ratio", "in [0, 1]", lambda v: 0 <= v <= 1),
            ("plateau_factor", "in (0, 1]", lambda v: 0 < v <= 1), ("plateau_patience", ">= 0", lambda v: v >= 0),
        )
        for key, expected, ok in checks:
            check_field(getattr(self, key), who, key, expected, ok)
        check_choice(self.lr_schedule, who, "lr_schedule", SCHEDULES)


FLUSH_DENORMALS = True  # False only to measure the old behaviour (benchmarks/bench_denormals.py)


@contextlib.contextmanager
def cpu_compute(n: int, device: torch.device) -> Iterator[None]:
    """CPU settings for a fit or a prediction, restored after the block: `n` intra-op threads (0: leave as is)
    and denormal floats flushed to zero.

    Small recurrent models gain nothing from more threads, and on shared, loaded cores spinning
    OpenMP threads make them far slower (15 s vs 236 s for the same LFADS fit on 2 busy cores).
    Training drifts values into the denormal range (|x| < 1.2e-38), where x86 arithmetic is many times
    slower: a trained STNDT's step took 2.5x a fresh one's CPU time until they were flushed
    (benchmarks/bench_denormals.py). The flush holds on the calling thread, the one a fit uses by default;
    extra OpenMP workers keep the mode they started with.
    """
    if device.type != "cpu":
        yield
        return
    old_threads, old_flush = torch.get_num_threads(), flushes_denormals()
    if n > 0:
        torch.set_num_threads(n)
    torch.set_flush_denormal(FLUSH_DENORMALS)
    try:
        yield
    finally:
        torch.set_flush_denormal(old_flush)
        torch.set_num_threads(old_threads)


def flushes_denormals() -> bool:
    """Does CPU arithmetic on this thread treat denormal floats as zero? (torch has no getter.)"""
    return bool(torch.tensor([1e-39], dtype=torch.float32).mul(1.0).item() == 0.0)


def device_of(device: str) -> torch.device:
    """The torch device for RunContext.device ('cpu' or 'cuda', already resolved by the run)."""
    return torch.device(device)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 tensor on `device` (one host copy, done once)."""
    return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)


class TorchBaseline(Baseline):
    """What every neural baseline shares around its Trainer: the device, fitting under the CPU compute settings,
    the check of the train trials and the internal validation trials the fit held back."""

    def __init__(self, config, context: RunContext):
        super().__init__(config, context)
        self.device = device_of(context.device)
        self.model: Optional[torch.nn.Module] = None
        self.valid_ids: Optional[np.ndarray] = None  # set by the fit (internal_split)
        self.selection: Optional[dict] = None  # set by a fit with `refit: true` (selection_fit)
        self.refit_curves: list[dict] = []  # a refit's rows (`curves` keeps the selection fit's)

    def validation_trials(self) -> Optional[np.ndarray]:
        """The train trials the fit held back for validation (early stopping; run.json `internal_validation`);
        None after a refit, which trains on them."""
        return self.valid_ids

    def selection_fit(self) -> Optional[dict]:
        """After a refit: the selection fit's scores on its validation trials and the epochs it chose."""
        return self.selection

    def fit(self, train: TrialSet) -> None:
        """`_fit` under the CPU compute settings (threads, denormals flushed; cpu_compute); with `refit: true`,
        a second `_fit` on every train trial for the epochs the first chose (`refit_all`)."""
        with cpu_compute(self.config.cpu_threads, self.device):
            if not getattr(self.config, "refit", False):
                self._fit(train)
                return
            self.refit_all(train)

    def refit_all(self, train: TrialSet) -> None:
        """Selection fit on the internal split, its scores on the validation trials, then the refit. `curves`
        keeps the selection fit's rows, `refit_curves` gets the refit's."""
        self.selection = None
        if active_hooks() is not None:
            raise NLBInputError(f"baseline {self.name}: refit=true cannot run inside a sweep (a sweep scores each "
                                "trial on its validation trials); run the chosen config with `nlb-eval run`")
        with recorded_fits() as fits:
            self._fit(train)
        if len(fits) != 1 or fits[0].best_epoch < 0:
            raise RuntimeError(f"baseline {self.name}: refit needs one Trainer.fit that kept an epoch (got "
                               f"{[f.best_epoch for f in fits]})")
        chosen, selection_curves = fits[0], self.curves
        scores = internal_validation(self, train, self.predict(train))  # before the refit trains on those trials
        plan = RefitPlan(lrs=chosen.lrs[:chosen.best_epoch + 1], batches_per_epoch=chosen.batches_per_epoch)
        with refitting(plan):
            self._fit(train)
        self.refit_curves, self.curves, self.valid_ids = self.curves, selection_curves, None
        self.selection = {**scores, "kept_epoch": chosen.best_epoch + 1, "epochs_run": len(chosen.lrs),
                          "refit_epochs": len(plan.lrs), "refit_trials": train.n_trials,
                          "batches_per_epoch": plan.batches_per_epoch}

    def _fit(self, train: TrialSet) -> None:
        raise NotImplementedError

    def hold_out(self, n: int, frac: float, seed: int | np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(train, valid) index tensors on the device from `internal_split`; the valid ones are kept for
        `validation_trials()`. In a refit: every trial trains and none validates (a Generator still advances
        by the same draw, so a baseline's later draws from it match the selection fit's)."""
        train_np, valid_np = internal_split(n, frac, seed)
        if active_refit() is not None:
            train_np, valid_np = np.arange(n), valid_np[:0]
        else:
            self.valid_ids = valid_np
        return torch.as_tensor(train_np, device=self.device), torch.as_tensor(valid_np, device=self.device)

    def fit_shape(self, train: TrialSet) -> tuple[int, int, int]:
        """(trials, bins, held-in neurons) of `train`; one line if it has no held-out spikes or under 2 trials."""
        if train.spikes_heldout is None:
            raise NLBInputError(f"baseline {self.name}: the train trials carry no held-out spikes to fit")
        n, t, n_in = train.spikes_heldin.shape
        if n < 2:
            raise NLBInputError(f"baseline {self.name}: needs at least 2 train trials (got {n})")
        return n, t, n_in


def internal_split(n: int, frac: float, seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) sorted index arrays of n trials, a seeded `frac` of them validating; at least one of each.

    A Generator is advanced by the one permutation drawn, so a baseline's later draws from it follow on.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_valid = min(max(1, int(round(frac * n))), n - 1)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def check_seed_field(value: Optional[int], who: str, key: str) -> None:
    """One line naming `who` and the field unless `value` is unset (None) or a seed from 0 to SEED_MAX (numpy's
    generators, torch and run.json all take it)."""
    if value is not None:
        check_field(value, who, key, f"a seed from 0 to {SEED_MAX}", lambda v: 0 <= v <= SEED_MAX)


def split_seed(valid_seed: Optional[int], run_seed: int) -> int:
    """The seed of a fit's internal validation split and of its fixed validation draws: the config's `valid_seed`
    when it sets one (the same validation trials at every model seed, so repeat fits differ in their training
    and sampling draws alone and their validation scores compare on one set), else the run's seed."""
    return run_seed if valid_seed is None else int(valid_seed)


def batch_indices(n: int, batch_size: int, device: torch.device, shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors on `device` covering range(n) in batches (a fresh permutation from torch's RNG)."""
    order = torch.randperm(n, device=device) if shuffle else torch.arange(n, device=device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def batch_split(n: int, n_batches: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """range(n), shuffled by torch's RNG, in exactly `n_batches` batches (sizes differ by one at most; n >= n_batches)."""
    return torch.randperm(n, device=device).tensor_split(n_batches)


def warmup_cosine(epoch: int, settings: TrainSettings) -> float:
    """LR multiplier: linear warm-up, then cosine decay to lr_min_ratio at max_epochs."""
    if epoch < settings.warmup_epochs:
        return (epoch + 1) / (settings.warmup_epochs + 1)
    span = max(settings.max_epochs - settings.warmup_epochs, 1)
    progress = min((epoch - settings.warmup_epochs) / span, 1.0)
    return settings.lr_min_ratio + (1 - settings.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class CurveWriter:
    """Appends one row per epoch to run_dir/curves.csv (columns fixed by the first row)."""

    def __init__(self, run_dir: Optional[Path], file_name: str = CURVES_FILE):
        self.path = Path(run_dir) / file_name if run_dir is not None else None
        self.columns: Optional[list[str]] = None
        self.rows: list[dict[str, float]] = []

    def write(self, row: dict[str, float]) -> None:
        """Record a row (and append it to the file when there is a run folder)."""
        self.rows.append(row)
        if self.path is None:
            return
        if self.columns is None:
            head = ["epoch", "train_loss"] + (["valid_loss"] if "valid_loss" in row else [])
            self.columns = head + [k for k in row if k not in head]
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c, float("nan"))) for c in self.columns])


    def restore(self, rows: list[dict[str, float]]) -> None:
        """Start from the rows of a resumed training (rewriting the file with them)."""
        self.rows, self.columns = [], None
        if self.path is not None and self.path.exists():
            self.path.unlink()
        for row in rows:
            self.write(row)


def _fmt(value: float) -> str:
    return f"{value:.8g}" if isinstance(value, float) else str(value)


STATE_VERSION = 1


@dataclass
class EpochEnd:
    """What a `TrainHooks.report` callback sees after each epoch (after validation and the LR step)."""

    epoch: int
    row: dict  # the curve row of this epoch
    monitor: str  # the name of the early-stopping metric in `row` (lower is better)
    best_value: float  # best monitored value so far, and its epoch (the weights fit() ends with)
    best_epoch: int
    last: bool  # training stops after this epoch (max_epochs or patience)
    state: Callable[[], dict]  # a resumable snapshot of the trainer at the end of this epoch (built on call)


@dataclass
class TrainHooks:
    """Hooks a caller installs around `Baseline.fit` with `training_hooks`, without the baseline knowing."""

    resume: Optional[dict] = None  # an `EpochEnd.state()` snapshot to continue from (its lr/weight decay replaced)
    report: Optional[Callable[[EpochEnd], None]] = None  # after each epoch: checkpoint, report to a scheduler
    train: bool = True  # False: restore `resume` and end at its best weights without training (rebuild a model)


_ACTIVE_HOOKS: ContextVar[Optional[TrainHooks]] = ContextVar("nlb_suite_train_hooks", default=None)


@contextlib.contextmanager
def _bound(var: ContextVar, value):
    """`var` holds `value` inside the block (yielded), and what it held before after it."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


def training_hooks(hooks: TrainHooks) -> contextlib.AbstractContextManager:
    """Every `Trainer.fit` inside the block uses `hooks` (e.g. a sweep trial's checkpoint and resume)."""
    return _bound(_ACTIVE_HOOKS, hooks)


def active_hooks() -> Optional[TrainHooks]:
    """The hooks installed by the innermost `training_hooks` block (None outside one)."""
    return _ACTIVE_HOOKS.get()


@dataclass
class FitSummary:
    """What a finished `Trainer.fit` chose: its kept epoch, the learning rate of each epoch run, its batching."""

    best_epoch: int  # counted from 0, as Trainer.best_epoch
    lrs: list[float]
    batches_per_epoch: int


@dataclass
class RefitPlan:
    """A refit's schedule: one learning rate per epoch (the selection fit's, up to its kept epoch) and the
    optimiser steps per epoch (the selection fit's, so the larger trial set gets larger batches)."""

    lrs: list[float]
    batches_per_epoch: int


_REFIT: ContextVar[Optional[RefitPlan]] = ContextVar("nlb_suite_refit", default=None)
_FIT_RECORDS: ContextVar[Optional[list[FitSummary]]] = ContextVar("nlb_suite_fit_records", default=None)


def refitting(plan: RefitPlan) -> contextlib.AbstractContextManager:
    """Every `Trainer.fit` inside the block follows `plan` on all its trials, without validation."""
    return _bound(_REFIT, plan)


def active_refit() -> Optional[RefitPlan]:
    """The plan of the innermost `refitting` block (None outside one)."""
    return _REFIT.get()


def recorded_fits() -> contextlib.AbstractContextManager[list[FitSummary]]:
    """A list (yielded) that collects a `FitSummary` of each `Trainer.fit` finished inside the block."""
    return _bound(_FIT_RECORDS, [])


class Trainer:
    """Epoch loop with AdamW, clipping, LR schedule, early stopping, checkpoints and curves."""

    def __init__(self, module: torch.nn.Module, settings: TrainSettings, device: torch.device,
                 run_dir: Optional[Path] = None, name: str = "model"):
        self.module, self.settings, self.device = module, settings, device
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint = self.run_dir / f"{name}_best.pt" if self.run_dir is not None else None
        self.refit_weights = self.run_dir / f"{name}_refit.pt" if self.run_dir is not None else None
        self.optimizer = torch.optim.AdamW(module.parameters(), lr=settings.lr,
                                           weight_decay=settings.weight_decay)
        self.curves = CurveWriter(self.run_dir)
        self.best_epoch = -1
        self.best_value = math.inf
        self._best_state: Optional[dict] = None
        self.scheduler = None

    def _scheduler(self):
        s = self.settings
        if s.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: warmup_cosine(e, s))
        if s.lr_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=s.plateau_factor, patience=s.plateau_patience, min_lr=s.lr * s.lr_min_ratio)
        return None

    def _save_best(self, epoch: int, value: float) -> None:
        self.best_epoch, self.best_value = epoch, value
        state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        if self.checkpoint is not None:
            torch.save(state, self.checkpoint)
        else:
            self._best_state = copy.deepcopy(state)

    def load_best(self) -> None:
        """Restore the best weights seen (from the checkpoint file when there is a run folder)."""
        if self.checkpoint is not None and self.checkpoint.exists():
            state = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        else:
            state = self._best_state
        if state is not None:
            self.module.load_state_dict(state)

    def _best_weights(self) -> Optional[dict]:
        if self.checkpoint is not None and self.checkpoint.exists():
            return torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        return None if self._best_state is None else {k: v.cpu() for k, v in self._best_state.items()}

    def state(self, epoch: int, stopped: bool) -> dict:
        """A resumable snapshot after `epoch` (CPU tensors; `torch.save` it, reload with weights_only=True)."""
        def cpu(tree):
            return {k: cpu(v) for k, v in tree.items()} if isinstance(tree, dict) else (
                [cpu(v) for v in tree] if isinstance(tree, list) else
                tree.detach().cpu().clone() if isinstance(tree, torch.Tensor) else copy.deepcopy(tree))
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        if sched is not None:
            sched = {k: v for k, v in sched.items() if k != "lr_lambdas"}  # closures, rebuilt from settings
        return {"version": STATE_VERSION, "epoch": epoch, "stopped": stopped, "lr_schedule": self.settings.lr_schedule,
                "base_lr": self.settings.lr, "module": cpu(self.module.state_dict()),
                "optimizer": cpu(self.optimizer.state_dict()), "scheduler": cpu(sched),
                "best_epoch": self.best_epoch, "best_value": self.best_value, "best_module": self._best_weights(),
                "curves": copy.deepcopy(self.curves.rows), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None}

    def _restore(self, state: dict) -> tuple[int, bool]:
        """Load a `state()` snapshot; the current settings' lr and weight decay replace the saved ones (the
        schedule's progress is kept, rescaled to the new lr). Returns (first epoch to run, already stopped)."""
        if state.get("version") != STATE_VERSION or state.get("lr_schedule") != self.settings.lr_schedule:
            raise NLBInputError(f"trainer checkpoint: version {state.get('version')}, schedule "
                                f"{state.get('lr_schedule')!r} (expected version {STATE_VERSION}, schedule "
                                f"{self.settings.lr_schedule!r})")
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict({**self.scheduler.state_dict(), **state["scheduler"]})
        ratio = self.settings.lr / state["base_lr"]
        for group in self.optimizer.param_groups:
            group["lr"] *= ratio
            group["initial_lr"] = self.settings.lr
            group["weight_decay"] = self.settings.weight_decay
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.min_lrs = [self.settings.lr * self.settings.lr_min_ratio for _ in self.scheduler.min_lrs]
        elif self.scheduler is not None:
            self.scheduler.base_lrs = [self.settings.lr for _ in self.scheduler.base_lrs]
            self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        self.best_epoch, self.best_value = state["best_epoch"], state["best_value"]
        if state["best_module"] is not None:
            best = {k: v.to(self.device) for k, v in state["best_module"].items()}
            if self.checkpoint is not None:
                torch.save(best, self.checkpoint)
            else:
                self._best_state = best
        self.curves.restore(state["curves"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return state["epoch"] + 1, bool(state["stopped"])

    def fit(self, n_train: int, step: StepFn, validate: ValidFn, progress: Optional[bool] = None,
            on_epoch: Optional[EpochFn] = None) -> list[dict]:
        """Train: `step(batch_idx, epoch)` -> (loss to minimise, logged floats); `validate(epoch)` -> metrics.

        `validate` must return `valid_loss` and the monitored metric. `on_epoch(epoch, row)` runs after each
        epoch's validation (module in eval mode, no grad): a hook for benchmarks and live plots. Rows carry
        `train_s`, the seconds of optimiser steps in the epoch, `grad_norm_max`, the largest gradient norm
        before clipping, and `clipped_steps`, how many steps `grad_clip` scaled down (where spikes hit). The
        active `training_hooks` (if any) resume from a snapshot and get an `EpochEnd` after each epoch.
        Returns the curve rows; the module ends with the best weights. Inside `refitting` none of that: see
        `_refit`.
        """
        s = self.settings
        plan = _REFIT.get()
        if plan is not None:
            return self._refit(n_train, step, plan, progress)
        hooks = _ACTIVE_HOOKS.get() or TrainHooks()
        scheduler = self.scheduler = self._scheduler()
        start, stopped = self._restore(hooks.resume) if hooks.resume is not None else (0, False)
        epochs = range(start, s.max_epochs) if hooks.train and not stopped else range(0)
        bar = tqdm(epochs, desc="train", disable=None if progress is None else not progress, leave=False)
        for epoch in bar:
            trained = self._train_epoch(batch_indices(n_train, s.batch_size, self.device), step, epoch)
            self.module.eval()
            with torch.no_grad():
                valid = validate(epoch)
            row = {"epoch": epoch, **trained.pop("losses"), **valid, **trained}
            self.curves.write(row)
            value = float(valid[s.monitor])
            if value < self.best_value or self.best_epoch < 0:
                self._save_best(epoch, value)
            if on_epoch is not None:
                with torch.no_grad():
                    on_epoch(epoch, row)
            bar.set_postfix(train=f"{row['train_loss']:.4g}", valid=f"{valid['valid_loss']:.4g}",
                            best=f"{self.best_value:.4g}")
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(value)
            elif scheduler is not None:
                scheduler.step()
            last = epoch + 1 >= s.max_epochs or epoch - self.best_epoch >= s.patience
            if hooks.report is not None:
                hooks.report(EpochEnd(epoch, row, s.monitor, self.best_value, self.best_epoch, last,
                                      lambda epoch=epoch, last=last: self.state(epoch, last)))
            if last:
                break
        bar.close()
        self.load_best()
        records = _FIT_RECORDS.get()
        if records is not None:
            records.append(FitSummary(self.best_epoch, [float(r["lr"]) for r in self.curves.rows],
                                      math.ceil(n_train / s.batch_size)))
        return self.curves.rows

    def _train_epoch(self, batches: Iterable[torch.Tensor], step: StepFn, epoch: int, phase: str = "") -> dict:
        """One optimiser step per batch of trial indices: {"losses": trial-weighted means, "lr", "train_s",
        "grad_norm_max", "clipped_steps"}. `phase` names the fit in an error ("refit ")."""
        self.module.train()
        sums: dict[str, float] = {}
        n_seen, grad_max, clipped = 0, 0.0, 0
        t0 = time.perf_counter()
        for idx in batches:
            self.optimizer.zero_grad(set_to_none=True)
            loss, logs = step(idx, epoch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at {phase}epoch {epoch}")
            loss.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.settings.grad_clip))
            grad_max, clipped = max(grad_max, norm), clipped + (norm > self.settings.grad_clip)
            self.optimizer.step()
            w = len(idx)
            n_seen += w
            for k, v in {"train_loss": float(loss.detach()), **logs}.items():
                sums[k] = sums.get(k, 0.0) + w * float(v)
        train_s = time.perf_counter() - t0  # float(loss) above synchronises CUDA every step
        return {"losses": {k: v / n_seen for k, v in sums.items()}, "lr": self.optimizer.param_groups[0]["lr"],
                "train_s": train_s, "grad_norm_max": grad_max, "clipped_steps": clipped}

    def _refit(self, n_train: int, step: StepFn, plan: RefitPlan, progress: Optional[bool]) -> list[dict]:
        """Train `len(plan.lrs)` epochs at the plan's learning rates, `plan.batches_per_epoch` steps each, with
        no validation, no `on_epoch` and no hooks; keep the last weights (saved as `<name>_refit.pt`) and log to
        refit_curves.csv."""
        curves = CurveWriter(self.run_dir, REFIT_CURVES_FILE)
        bar = tqdm(range(len(plan.lrs)), desc="refit", disable=None if progress is None else not progress,
                   leave=False)
        for epoch in bar:
            for group in self.optimizer.param_groups:
                group["lr"] = plan.lrs[epoch]
            trained = self._train_epoch(batch_split(n_train, plan.batches_per_epoch, self.device), step, epoch,
                                        "refit ")
            row = {"epoch": epoch, **trained.pop("losses"), **trained}
            curves.write(row)
            bar.set_postfix(train=f"{row['train_loss']:.4g}")
        bar.close()
        self.module.eval()
        if self.refit_weights is not None:
            torch.save(self.module.state_dict(), self.refit_weights)
        return curves.rows
