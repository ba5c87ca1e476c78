"""What one Ray Tune trial runs: the baseline's own fit, with the shared Trainer reporting each epoch.

The trial resolves the baseline's config with its sampled (or PBT-perturbed) values, resumes from the
checkpoint Ray hands it (its own after an interruption, or a better trial's after a PBT exploit), and
fits on the train trials. After every epoch it reports the internal validation score (the Trainer's
early-stopping metric: sample validation for LFADS in a sweep) and, every `checkpoint_every` epochs and
at the end, a checkpoint holding the trainer's whole state. Eval trials never reach a trial.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..baseline_api import RunContext, TrialSet, get_baseline, resolve_config
from ..portable_kernels import check_loaded
from .lineage import LINEAGE_KEY, kept_values, lineage_after_start

STATE_FILE = "trainer_state.pt"


@dataclass
class TrialSetup:
    """Everything a trial needs besides its sampled config (handed over once via the Ray object store)."""

    baseline: str
    dataset: str
    bin_ms: int
    device: str
    profile: Optional[str]
    config_file: Optional[Path]
    overrides: dict[str, Any]  # --set values and the search space's fixed values
    train: TrialSet
    context: RunContext
    checkpoint_every: int
    threads: int = 1


def trial_config(setup: TrialSetup, sampled: dict[str, Any]):
    """The baseline's config for these sampled values (defaults <- YAML <- profile <- fixed/--set <- sampled)."""
    cls = get_baseline(setup.baseline)
    config, _ = resolve_config(cls, setup.dataset, setup.bin_ms, {**setup.overrides, **sampled}, setup.profile,
                               setup.device, setup.config_file)
    return cls, config


def save_state(state: dict, folder: Path) -> Path:
    """Write a trainer snapshot into a checkpoint folder."""
    import torch

    path = Path(folder) / STATE_FILE
    torch.save(state, path)
    return path


def load_state(folder: Path) -> dict:
    """A trainer snapshot from a checkpoint folder (tensors only: weights_only loading)."""
    import torch

    return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)


@dataclass
class HeldModel:
    """The model a trial's last checkpoint holds, read from the checkpoint itself: after a PBT exploit on a
    trial's last epoch that is its donor's model, while Ray's last metrics are still the trial's own."""

    values: Optional[dict[str, Any]]  # `kept_values` (None for a checkpoint without a lineage)
    valid_best: float
    best_epoch: int  # counted from 1, as the reported metrics
    epochs: int
    fit_s: float


def held_state(recorded, trial_dir: Optional[Path] = None) -> Optional[dict]:
    """The trainer snapshot a trial holds: Ray's recorded checkpoint (after a PBT exploit on the trial's last
    epoch, its donor's), unless the trial's own folder holds one that continues it for more epochs: after a
    resume Ray's record can be an older checkpoint of the trial's lineage. Folder snapshots that do not continue
    the record (left by a run a resume did not repeat) or cannot be read (cut short) are passed over; a remote
    trial folder is not searched. None when there is no snapshot."""
    held = None
    if recorded is not None:
        with recorded.as_directory() as folder:
            held = load_state(Path(folder))
    for folder in sorted(Path(trial_dir).glob("checkpoint_*")) if trial_dir is not None else ():
        try:
            state = load_state(folder)
        except Exception:  # noqa: BLE001  absent or cut-short file: not a snapshot the trial holds
            continue
        n = len(held["curves"]) if held is not None else -1
        if len(state["curves"]) > n and (held is None or repr(state["curves"][:n]) == repr(held["curves"])):  # NaN-safe
            held = state
    return held


def held_model(state: Optional[dict]) -> Optional[HeldModel]:
    """What a trainer snapshot holds (None without one)."""
    if state is None:
        return None
    return HeldModel(kept_values(state), float(state["best_value"]), int(state["best_epoch"]) + 1,
                     len(state["curves"]), float(state.get("fit_s", 0.0)))


def trial_record(state: Optional[dict], reported: dict[str, Any], config: dict[str, Any],
                 finished: bool = True) -> HeldModel:
    """A trial's line in trials.csv and in the progress: the values from its held snapshot's lineage (else its
    reported or Ray's config); for a finished trial the score, kept epoch, epochs and time of the model it
    holds (`held_state`), else (or without a snapshot) those of its last report."""
    held = held_model(state)
    values = (held and held.values) or reported.get("config") or config or {}
    if held is not None and finished:
        return dataclasses.replace(held, values=values)
    return HeldModel(values, float(reported.get("best", math.nan)), int(reported.get("best_epoch", 0)),
                     int(reported.get("epoch", 0)), float(reported.get("fit_s", 0.0)))


def rebuild_from_state(run: Any, state: dict, tensors: Any, progress: bool, fit_s: float,
                       records: dict[str, Any]) -> Any:
    """`execute(run)` (a `RunSpec`) with the model rebuilt from a trainer snapshot's best weights instead of
    trained (a sweep's best_run, a replay); its run.json gets the training's seconds as fit_s (the rebuild's own
    as rebuild_s) and `records` (where the model came from). The RunResult."""
    import json

    from baselines.torch_core import TrainHooks, training_hooks

    from ..jsonio import write_json
    from ..runs import execute

    with training_hooks(TrainHooks(resume=state, train=False)):
        result = execute(run, progress=progress, tensors=tensors)
    run_json = Path(result.run_dir) / "run.json"
    info = json.loads(run_json.read_text())
    info["timings"] = {**info["timings"], "rebuild_s": info["timings"]["fit_s"], "fit_s": fit_s}
    write_json(run_json, {**info, **records})
    return result


def run_trial(sampled: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable: fit with per-epoch reports and periodic checkpoints."""
    import torch
    from ray import tune

    from baselines.torch_core import EpochEnd, TrainHooks, training_hooks

    torch.set_num_threads(setup.threads)
    cls, config = trial_config(setup, sampled)
    check_loaded()  # a worker (a cluster's too) under --portable-kernels took the AVX2 kernels
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = load_state(Path(folder))
    lineage = lineage_after_start(sampled, resume, tune.get_context().get_trial_id())
    start = time.perf_counter()
    # training time of the model this trial holds: a PBT exploit restores the donor's checkpoint and so
    # inherits its time (lineage time; summing it over trials counts shared ancestry more than once)
    fit_s = float(resume.get("fit_s", 0.0)) if resume else 0.0

    def report(end: EpochEnd) -> None:
        elapsed = fit_s + time.perf_counter() - start
        metrics = {"valid": float(end.row[end.monitor]), "best": float(end.best_value), "epoch": end.epoch + 1,
                   "best_epoch": end.best_epoch + 1, "fit_s": elapsed, "monitor": end.monitor, "final": end.last}
        if not (end.last or (end.epoch + 1) % setup.checkpoint_every == 0):
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            save_state({**end.state(), "fit_s": elapsed, LINEAGE_KEY: lineage}, Path(folder))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    model = cls(config, dataclasses.replace(setup.context, extras={"progress": False}))
    with training_hooks(TrainHooks(resume=resume, report=report)):
        model.fit(setup.train)
