"""`nlb-eval replay`: a sweep's chosen model trained anew, without Ray, by following its lineage.

A PBT model is no config: its weights trained stretch by stretch with the values of several trials, handed on
at each exploit (the lineage in sweep.json). Replaying trains one model from its first epoch through those
stretches in turn, on the train trials, as the sweep's trials did (their config, seed, device and torch
threads), and rebuilds its kept epoch into a run folder like `nlb-eval run` writes. At the sweep's seed on the
same kind of machine that is the sweep's model again, bit for bit (compared with best_run/ and printed). With
another --seed it is the same schedule (values and length) from another initialisation and, unless the config
fixes it (`valid_seed`), another internal validation split, which separates what the schedule is worth from the luck of the trial that won. Eval trials
are only scored, after training.
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
from .lineage import lineage_problem, stretch_at, stretch_ends
from .search import BEST_RUN

REPLAY_FIELD = "replay"  # run.json: where the replayed schedule came from
SPEC_FIELDS = ("baseline", "dataset", "bin_ms", "phase", "seed", "profile", "overrides", "config_file", "synthetic",
               "data", "space", "search")
SETUP_FIELDS = ("overrides", "threads", "device", "data", "config_file")


@dataclass
class ReplaySpec:
    """What `nlb-eval replay` takes (None: the sweep's own value)."""

    sweepdir: Path
    out: Path
    seed: Optional[int] = None
    data: Optional[Path] = None
    threads: Optional[int] = None
    ci: int = 200
    overwrite: bool = False


@dataclass
class SweepRecord:
    """What a replay needs from a finished sweep's sweep.json."""

    path: Path
    spec: dict[str, Any]
    setup: dict[str, Any]  # how every trial trained: overrides (the space's fixed values, --set, refit off), threads,
    #                        device, data and config file as absolute paths (the `trial_setup` record)
    best: dict[str, Any]  # the chosen trial, its kept values, lineage and epochs
    best_run: Optional[dict[str, Any]]  # best_run/run.json (None when it has none that reads)


@dataclass
class ReplayResult:
    """A finished replay: its run folder's result, and how it compares with the sweep's own model."""

    run: Any  # the RunResult of the replayed model's run folder
    same_rates: Optional[bool]  # its rates equal best_run's (None: best_run/ has no readable submission)
    seed: int
    sweep_seed: int


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
    spec = info.get("spec")
    missing = [k for k in SPEC_FIELDS if not isinstance(spec, dict) or k not in spec]
    if missing:
        raise NLBInputError(f"{path}: spec.{missing[0]} is missing (expected the record `nlb-eval sweep` writes)")
    best = dict(info.get("best") or {})
    if not isinstance(best.get("config"), dict):
        raise NLBInputError(f"{path}: best.config is missing (expected the chosen trial's values)")
    best_run = _best_run_info(Path(sweepdir))
    if "epochs" not in best:  # sweeps before `replay` kept it in best_run/run.json only
        best["epochs"] = _legacy_field(best_run, ("sweep", "epochs"), Path(sweepdir), path)
    if not isinstance(best["epochs"], int) or best["epochs"] < 1:
        raise NLBInputError(f"{path}: best.epochs is {best['epochs']!r} (expected a positive integer)")
    if "lineage" not in best:
        raise NLBInputError(f"{path}: best.lineage is missing (expected the chosen model's lineage; a sweep "
                            "recorded without one cannot be replayed: run it again)")
    problem = lineage_problem(best["lineage"], best["epochs"])
    if problem:
        raise NLBInputError(f"{path}: best.lineage{problem if problem.startswith('[') else ' is ' + problem}")
    setup = info["trial_setup"] if "trial_setup" in info else _setup_from_space(spec, best_run, Path(sweepdir), path)
    missing = [k for k in SETUP_FIELDS if not isinstance(setup, dict) or k not in setup]
    if missing:
        raise NLBInputError(f"{path}: trial_setup.{missing[0]} is missing (expected the record `nlb-eval sweep` "
                            "writes)")
    if not isinstance(setup["overrides"], dict):
        raise NLBInputError(f"{path}: trial_setup.overrides is not a mapping (expected config field -> value)")
    return SweepRecord(path, spec, setup, best, best_run)


def _best_run_info(sweepdir: Path) -> Optional[dict[str, Any]]:
    """best_run/run.json through the runs' checked reader (None when it is missing or does not read)."""
    from ..runs import read_run_info

    try:
        return read_run_info(sweepdir / BEST_RUN / "run.json")
    except NLBInputError:
        return None


def _legacy_field(best_run: Optional[dict[str, Any]], keys: tuple[str, ...], sweepdir: Path, path: Path) -> Any:
    """A value a sweep recorded before `replay` kept in best_run/run.json only (its epochs, its device)."""
    value: Any = best_run
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        raise NLBInputError(f"{path}: recorded before `replay` (no trial_setup or best.epochs), and "
                            f"{sweepdir / BEST_RUN / 'run.json'} holds no {'.'.join(keys)} (expected a sweep that "
                            "finished with its best_run/)")
    return value


def _setup_from_space(spec: dict[str, Any], best_run: Optional[dict[str, Any]], sweepdir: Path,
                      path: Path) -> dict[str, Any]:
    """A sweep recorded before `replay`: every trial's overrides rebuilt from its search-space file as the sweep
    built them (a changed file shows as rates unlike best_run's), one torch thread (the default), the device
    best_run/ ran on."""
    from ..baseline_api import get_baseline
    from .search import trial_overrides
    from .search_space import load_space

    space_file = Path(spec["space"] or "")
    if not spec["space"] or not space_file.is_file():
        raise NLBInputError(f"{path}: no trial_setup, and spec.space {space_file} is gone (expected the search-space "
                            "file the sweep ran with, or a sweep run with this version)")
    space = load_space(space_file)
    overrides, _ = trial_overrides(get_baseline(spec["baseline"]), space.fixed_for(spec["search"]), spec["overrides"],
                                   tuple(space.params), f"{space_file}: search space")
    return {"overrides": overrides, "threads": 1, "device": _legacy_field(best_run, ("device",), sweepdir, path),
            "data": (best_run or {}).get("data_dir") or spec["data"] or None,  # absolute there
            "config_file": str(Path(spec["config_file"]).absolute()) if spec["config_file"] else None}


class _StretchDone(Exception):
    """Raised from the Trainer's report hook at a stretch's last epoch, once its snapshot is taken."""


def train_stretch(setup: Any, values: dict[str, Any], resume: Optional[dict], end: int, progress: bool) -> dict:
    """Train a `TrialSetup`'s baseline from `resume` (None: a fresh model) with a stretch's searched values until
    `end` epochs, as a sweep trial does (`trial_config`, the trial's context), or until it stops itself (early
    stopping); the trainer's snapshot there."""
    from baselines.torch_core import EpochEnd, TrainHooks, training_hooks

    from .trial import trial_config

    cls, config = trial_config(setup, values)
    taken: dict[str, Any] = {}

    def report(end_of: EpochEnd) -> None:
        if end_of.epoch + 1 >= end or end_of.last:
            taken["state"] = end_of.state()
            raise _StretchDone

    model = cls(config, dataclasses.replace(setup.context, extras={"progress": progress}))
    try:
        with training_hooks(TrainHooks(resume=resume, report=report)):
            model.fit(setup.train)
    except _StretchDone:
        pass
    if "state" not in taken:
        raise NLBInputError(f"replay: the model resumed at epoch {len(resume['curves']) if resume else 0} trained no "
                            f"epoch (expected training up to epoch {end})")
    return taken["state"]


def replay_lineage(setup: Any, lineage: list[dict[str, Any]], epochs: int, progress: bool = True,
                   exact: bool = True) -> dict:
    """The trainer snapshot after training a `TrialSetup`'s baseline through every stretch of `lineage`
    (`epochs` in all). `exact`: the sweep's own model on its own data and threads, which never stopped before its
    lineage's end, so an earlier stop is one line; otherwise a model that stops itself ends the replay there."""
    from ..table import short

    state = None
    for i, (entry, end) in enumerate(zip(lineage, stretch_ends(lineage, epochs)), 1):
        values = " ".join(f"{k}={short(v)}" for k, v in entry["config"].items())
        print(f"stretch {i}/{len(lineage)}: epochs {entry['from_epoch'] + 1}-{end} with trial {entry['trial']}'s "
              f"values {values}", flush=True)
        state = train_stretch(setup, entry["config"], state, end, progress)
        trained = len(state["curves"])
        if trained < end or (state["stopped"] and i < len(lineage)):  # stopped before the lineage's end
            if exact:
                raise NLBInputError(f"replay: training stopped itself at epoch {trained}, before the lineage ends at "
                                    f"epoch {epochs} (the sweep's model did not: another config, machine or library "
                                    "build)")
            print(f"the model stopped itself at epoch {trained} (early stopping): the replay ends there", flush=True)
            break
    return state


def replay(spec: ReplaySpec, progress: bool = True) -> ReplayResult:
    """Replay the sweep's chosen model into spec.out, a run folder (see the module docstring)."""
    import torch

    from ..baseline_api import RunContext, get_baseline
    from ..datasets.tensors import load
    from ..datasets.truth import find_truth
    from ..metrics_evaluate import check_bootstrap
    from ..runs import (
        RunSpec,
        check_published_units,
        claim_run_dir,
        resolve_device,
        synthetic_data,
        trial_sets,
    )
    from .trial import TrialSetup, rebuild_from_state

    sweep = read_sweep(spec.sweepdir)
    s, setup_record = sweep.spec, sweep.setup
    seed = s["seed"] if spec.seed is None else spec.seed
    check_int(seed, f"{sweep.path}: spec.seed" if spec.seed is None else "--seed", 0, SEED_MAX)
    threads = setup_record["threads"] if spec.threads is None else spec.threads
    check_int(threads, f"{sweep.path}: trial_setup.threads" if spec.threads is None else "--threads", 1)
    check_bootstrap(spec.ci, seed)
    get_baseline(s["baseline"])
    try:  # the trials' device: it picks the config's profile too, so a replay cannot move to another one
        device = resolve_device(setup_record["device"])
    except NLBInputError as error:
        raise NLBInputError(f"{sweep.path}: trial_setup.device {setup_record['device']!r}: {error}") from None
    out = Path(spec.out)
    if out.resolve().is_relative_to(Path(spec.sweepdir).resolve()):
        raise NLBInputError(f"{out}: --out lies inside the sweep folder {spec.sweepdir} (expected a folder outside it: "
                            "the sweep's own files stay as they are)")
    claim_run_dir(out, spec.overwrite)  # before any training: a taken folder is one line, no work
    # the sweep's data (a synthetic sweep's stand-in from the cache, as it did) unless --data names a folder
    data = spec.data or (None if s["synthetic"] or not setup_record["data"] else Path(setup_record["data"]))
    data_dir = synthetic_data(s["dataset"], progress) if data is None else data
    tensors = load(s["dataset"], data_dir, bin_ms=s["bin_ms"], phase=s["phase"], progress=progress)
    synthetic = data is None or find_truth(data_dir) is not None  # as the rebuild's RunSpec will see it
    if not synthetic:
        check_published_units(s["dataset"], tensors.train_spikes_heldin.shape[2],
                              tensors.train_spikes_heldout.shape[2], data_dir)
    train, _ = trial_sets(tensors)
    context = RunContext.for_trials(s["dataset"], s["bin_ms"], train, seed=seed, device=device, data_dir=data_dir,
                                    synthetic=synthetic)
    config_file = Path(setup_record["config_file"]) if setup_record["config_file"] else None
    setup = TrialSetup(s["baseline"], s["dataset"], s["bin_ms"], device, s["profile"], config_file,
                       setup_record["overrides"], train, context, checkpoint_every=1, threads=threads)
    lineage, epochs = sweep.best["lineage"], sweep.best["epochs"]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        exact = seed == s["seed"] and threads == setup_record["threads"] and spec.data is None
        state = replay_lineage(setup, lineage, epochs, progress, exact=exact)
    finally:
        torch.set_num_threads(before)
    kept = stretch_at(lineage, state["best_epoch"])["config"]  # the values this model's kept epoch trained with
    run = RunSpec(baseline=s["baseline"], dataset=s["dataset"], bin_ms=s["bin_ms"], phase=s["phase"],
                  data=None if data is None else Path(data), synthetic=data is None, out=out, seed=seed,
                  device=device, overrides={**setup_record["overrides"], **kept}, profile=s["profile"],
                  ci=spec.ci, overwrite=spec.overwrite, config_file=config_file)
    record = {"sweepdir": str(Path(spec.sweepdir).absolute()), "trial": sweep.best.get("trial"),
              "sweep_seed": s["seed"], "seed": seed, "threads": threads, "epochs": len(state["curves"]),
              "lineage": lineage}
    result = rebuild_from_state(run, state, tensors, progress, time.perf_counter() - t0, {REPLAY_FIELD: record})
    same = same_rates(out, Path(spec.sweepdir) / BEST_RUN)
    run_json = out / "run.json"
    info = json.loads(run_json.read_text())
    swept = (sweep.best_run or {}).get("data_sha256")
    info[REPLAY_FIELD].update(same_rates_as_best_run=same,
                              same_data_as_best_run=None if swept is None else swept == info["data_sha256"])
    write_json(run_json, info)
    if swept is not None and swept != info["data_sha256"]:
        print(f"note: the data differ from those {BEST_RUN}/ was scored on (run.json data_sha256): another stand-in "
              "or other files", flush=True)
    return ReplayResult(result, same, seed, s["seed"])


def same_rates(run_dir: Path, other: Path) -> Optional[bool]:
    """Whether two run folders' submissions hold identical arrays (None when `other` has no readable one)."""
    import numpy as np

    from ..submission import read_submission

    try:
        b = read_submission(other / "submission.h5")
    except (OSError, NLBInputError):
        return None
    a = read_submission(run_dir / "submission.h5")
    if not all(isinstance(group, dict) for group in (*a.values(), *b.values())):
        return None  # not a submission's layout: nothing to compare
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys() and all(np.array_equal(a[k][n], b[k][n]) for n in a[k]) for k in a)
