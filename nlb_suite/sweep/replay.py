"""`nlb-eval replay`: a sweep's chosen model trained anew, without Ray, by following its lineage.

A PBT model is no config: its weights trained stretch by stretch with the values of several trials, handed on
at each exploit (the lineage in sweep.json). Replaying trains one model from its first epoch through those
stretches in turn, on the train trials, as the sweep's trials did (their config, seed and torch threads), and
rebuilds its kept epoch into a run folder like `nlb-eval run` writes. At the sweep's seed and thread count on
the same kind of machine that is the sweep's model again, bit for bit (checked against best_run/ and
printed); with another --seed it is the same schedule from another initialisation, which separates what the
schedule is worth from the luck of the trial that won. Eval trials are only scored, after training.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import SEED_MAX, NLBInputError, check_int
from ..jsonio import write_json

REPLAY_FIELD = "replay"  # run.json: where the replayed schedule came from


@dataclass
class ReplaySpec:
    """What `nlb-eval replay` takes (None: the sweep's own value)."""

    sweepdir: Path
    out: Path
    seed: Optional[int] = None
    data: Optional[Path] = None
    threads: Optional[int] = None
    device: Optional[str] = None
    ci: int = 200
    overwrite: bool = False


@dataclass
class SweepRecord:
    """What a replay needs from a finished sweep's sweep.json."""

    path: Path
    spec: dict[str, Any]
    trial_overrides: dict[str, Any]  # every trial's overrides: the space's fixed values, --set, refit off
    threads: int
    device: str
    best: dict[str, Any]  # the chosen trial, its kept values, lineage and epochs


def read_sweep(sweepdir: Path) -> SweepRecord:
    """The finished sweep in `sweepdir`; one line naming the file and field when it cannot be replayed."""
    from .search import SWEEP_FILE, is_sweep_folder

    path = Path(sweepdir) / SWEEP_FILE
    if not is_sweep_folder(Path(sweepdir)):
        raise NLBInputError(f"{sweepdir}: not a sweep folder (expected the SWEEPDIR of `nlb-eval sweep`, with its "
                            f"{SWEEP_FILE})")
    info = json.loads(path.read_text())
    if info.get("state") != "done":
        raise NLBInputError(f"{path}: state is {info.get('state')!r} (expected 'done': a finished sweep; continue an "
                            "interrupted one with `nlb-eval sweep ... --resume`)")
    best = dict(info.get("best") or {})
    if not best.get("lineage"):
        raise NLBInputError(f"{path}: best.lineage is missing (expected the chosen model's lineage; a sweep "
                            "recorded without one cannot be replayed: run it again)")
    trial = info.get("trial") or _trial_from_space(info["spec"], path)
    if "epochs" not in best:  # sweeps before `replay` kept it in best_run/run.json only
        best["epochs"] = _best_run_epochs(Path(sweepdir), path)
    return SweepRecord(path, info["spec"], trial["overrides"], int(trial["threads"]), trial["device"], best)


def _trial_from_space(spec: dict[str, Any], path: Path) -> dict[str, Any]:
    """A sweep recorded before `replay`: every trial's overrides rebuilt from its search-space file as the sweep
    built them (a changed file shows as rates unlike best_run's), one torch thread on the CPU (the default)."""
    from ..baseline_api import get_baseline
    from .search import trial_overrides
    from .search_space import load_space

    space_file = Path(spec["space"])
    if not space_file.is_file():
        raise NLBInputError(f"{path}: no trial record and its search space {space_file} is gone (expected the space "
                            "file the sweep ran with, or a sweep run with this version)")
    space = load_space(space_file)
    overrides, _ = trial_overrides(get_baseline(spec["baseline"]), space.fixed_for(spec["search"]), spec["overrides"],
                                   tuple(space.params), f"{space_file}: search space")
    return {"overrides": overrides, "threads": 1, "device": "cpu"}


def _best_run_epochs(sweepdir: Path, path: Path) -> int:
    """The chosen model's epochs from best_run/run.json (where sweeps before `replay` kept them)."""
    from .search import BEST_RUN

    run_json = sweepdir / BEST_RUN / "run.json"
    try:
        return int(json.loads(run_json.read_text())["sweep"]["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        raise NLBInputError(f"{path}: best.epochs is missing and {run_json} holds no sweep.epochs (expected the "
                            "chosen model's epoch count)") from None


def stretch_ends(lineage: list[dict[str, Any]], epochs: int) -> list[int]:
    """The epoch count at which each stretch of a lineage hands over (the last: the model's epochs)."""
    return [e["from_epoch"] for e in lineage[1:]] + [int(epochs)]


class _StretchDone(Exception):
    """Raised from the Trainer's report hook at a stretch's last epoch, once its snapshot is taken."""


def train_stretch(setup, values: dict[str, Any], resume: Optional[dict], end: int, progress: bool) -> dict:
    """Train from `resume` (None: a fresh model) with the stretch's searched values until `end` epochs, as a
    sweep trial does (`trial_config`, the trial's context); the trainer's snapshot at that epoch."""
    from baselines.torch_core import EpochEnd, TrainHooks, training_hooks

    from .trial import trial_config

    cls, config = trial_config(setup, values)
    taken: dict[str, Any] = {}

    def report(end_of: EpochEnd) -> None:
        if end_of.epoch + 1 >= end or end_of.last:
            taken["state"], taken["epochs"] = end_of.state(), end_of.epoch + 1
            raise _StretchDone

    model = cls(config, dataclasses.replace(setup.context, extras={"progress": progress}))
    try:
        with training_hooks(TrainHooks(resume=resume, report=report)):
            model.fit(setup.train)
    except _StretchDone:
        pass
    if taken.get("epochs") != end:
        raise NLBInputError(f"replay: training stopped at epoch {taken.get('epochs', 0)}, the lineage's stretch "
                            f"runs to epoch {end} (the values {values} stop it earlier: not the sweep's model)")
    return taken["state"]


def replay_lineage(setup, lineage: list[dict[str, Any]], epochs: int, progress: bool = True) -> dict:
    """The trainer snapshot after training through every stretch of `lineage` (`epochs` in all)."""
    from ..table import short

    state = None
    for i, (entry, end) in enumerate(zip(lineage, stretch_ends(lineage, epochs)), 1):
        if end <= entry["from_epoch"]:
            continue
        values = " ".join(f"{k}={short(v)}" for k, v in entry["config"].items())
        print(f"stretch {i}/{len(lineage)}: epochs {entry['from_epoch'] + 1}-{end} with trial {entry['trial']}'s "
              f"values {values}", flush=True)
        state = train_stretch(setup, entry["config"], state, end, progress)
    if state is None:
        raise NLBInputError(f"replay: the lineage trains no epoch ({epochs} epochs; expected at least 1)")
    return state


@dataclass
class ReplayResult:
    run: Any  # the RunResult of the replayed model's run folder
    same_rates: Optional[bool]  # its rates equal best_run's (None: best_run/ has no submission to compare)
    seed: int
    sweep_seed: int


def replay(spec: ReplaySpec, progress: bool = True) -> ReplayResult:
    """Replay the sweep's chosen model into spec.out, a run folder (see the module docstring)."""
    import torch

    from ..baseline_api import RunContext, get_baseline
    from ..datasets.tensors import load
    from ..datasets.truth import find_truth
    from ..runs import RunSpec, claim_run_dir, resolve_device, synthetic_data, trial_sets
    from .search import BEST_RUN
    from .trial import TrialSetup, rebuild_from_state

    sweep = read_sweep(spec.sweepdir)
    s = sweep.spec
    seed = s["seed"] if spec.seed is None else spec.seed
    check_int(seed, "--seed", 0, SEED_MAX)
    threads = sweep.threads if spec.threads is None else spec.threads
    check_int(threads, "--threads", 1)
    device = resolve_device(spec.device or sweep.device)
    get_baseline(s["baseline"])
    claim_run_dir(Path(spec.out), spec.overwrite)  # before any training: a taken folder is one line, no work
    data = spec.data or (Path(s["data"]) if s["data"] else None)
    data_dir = synthetic_data(s["dataset"], progress) if data is None else data
    tensors = load(s["dataset"], data_dir, bin_ms=s["bin_ms"], phase=s["phase"], progress=progress)
    train, _ = trial_sets(tensors)
    context = RunContext.for_trials(s["dataset"], s["bin_ms"], train, seed=seed, device=device, data_dir=data_dir,
                                    synthetic=s["synthetic"] or find_truth(data_dir) is not None)
    config_file = Path(s["config_file"]) if s["config_file"] else None
    setup = TrialSetup(s["baseline"], s["dataset"], s["bin_ms"], device, s["profile"], config_file,
                       sweep.trial_overrides, train, context, checkpoint_every=1, threads=threads)
    lineage, epochs = sweep.best["lineage"], int(sweep.best["epochs"])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        state = replay_lineage(setup, lineage, epochs, progress)
    finally:
        torch.set_num_threads(before)
    fit_s = time.perf_counter() - t0
    run = RunSpec(baseline=s["baseline"], dataset=s["dataset"], bin_ms=s["bin_ms"], phase=s["phase"],
                  data=None if data is None else Path(data), synthetic=data is None, out=Path(spec.out), seed=seed,
                  device=device, overrides={**sweep.trial_overrides, **sweep.best["config"]}, profile=s["profile"],
                  ci=spec.ci, overwrite=spec.overwrite, config_file=config_file)
    result = rebuild_from_state(run, state, tensors, progress)
    run_json = Path(spec.out) / "run.json"
    info = json.loads(run_json.read_text())
    info["timings"] = {**info["timings"], "rebuild_s": info["timings"]["fit_s"], "fit_s": fit_s}
    same = same_rates(Path(spec.out), Path(spec.sweepdir) / BEST_RUN)
    info[REPLAY_FIELD] = {"sweepdir": str(Path(spec.sweepdir).absolute()), "trial": sweep.best.get("trial"),
                          "sweep_seed": s["seed"], "seed": seed, "threads": threads, "epochs": epochs,
                          "lineage": lineage, "same_rates_as_best_run": same}
    write_json(run_json, info)
    return ReplayResult(result, same, seed, s["seed"])


def same_rates(run_dir: Path, other: Path) -> Optional[bool]:
    """Whether two run folders' submissions hold identical arrays (None when `other` has no submission)."""
    import numpy as np

    from ..submission import read_submission

    if not (other / "submission.h5").is_file():
        return None
    a, b = read_submission(run_dir / "submission.h5"), read_submission(other / "submission.h5")
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys() and all(np.array_equal(a[k][n], b[k][n]) for n in a[k]) for k in a)
