"""`nlb-eval sweep`: random search or population-based training of one baseline on Ray Tune.

Every trial trains on the train trials only and is scored by the baseline's internal validation (the
shared Trainer's early-stopping metric, made sample validation for LFADS by its search space); the best
trial is chosen on that score alone. Only then is the chosen model rebuilt from its checkpoint (no
retraining) into SWEEPDIR/best_run, a run folder like `nlb-eval run` writes (submission, metrics on the
eval trials, curves, config, provenance), so `compare`, `report` and `package` take it directly.

SWEEPDIR holds sweep.json (the sweep's spec and state), trials.csv (every trial: searched values,
validation score, epochs, time), best_config.yaml (the chosen config, for `run --config`), best_run/,
and tune/ (Ray Tune's experiment: trial results and checkpoints, what `--resume` continues from; PBT's
generations in tune/pbt_generations.json).
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import io
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .. import __version__
from ..errors import NLBInputError, check_int
from ..jsonio import write_json
from ..outputs import claim_output
from .search_space import SearchSpace, default_space_file, load_space

SEARCHES = ("random", "pbt")
SWEEP_FILE = "sweep.json"
TRIALS_FILE = "trials.csv"
TRIAL_COLUMNS = ("trial", "status", "valid_best", "best_epoch", "epochs", "fit_s")  # around the searched values
BEST_CONFIG = "best_config.yaml"
BEST_RUN = "best_run"
TUNE_DIR = "tune"
TOOL = "nlb-eval sweep"
RESUME_FIELDS = ("baseline", "dataset", "bin_ms", "phase", "search", "samples", "seed", "profile", "overrides",
                 "space", "config_file", "synthetic", "data")


@dataclass
class SweepSpec:
    """What `nlb-eval sweep` takes."""

    baseline: str
    dataset: str
    out: Path
    search: str = "random"
    samples: int = 4
    bin_ms: int = 5
    phase: str = "val"
    data: Optional[Path] = None
    synthetic: bool = False
    space_file: Optional[Path] = None
    address: str = "local"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    device: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)
    profile: Optional[str] = None
    config_file: Optional[Path] = None
    checkpoint_every: int = 25  # random search: epochs between checkpoints (PBT: its perturbation interval)
    ci: int = 200
    num_cpus: Optional[int] = None  # local Ray's CPU count (default: the machine's)


@dataclass
class TrialRow:
    """One trial's line of trials.csv."""

    trial: str
    status: str
    config: dict[str, Any]
    valid_best: float
    best_epoch: int
    epochs: int
    fit_s: float


@dataclass
class SweepResult:
    out: Path
    rows: list[TrialRow]
    best: Optional[TrialRow]
    monitor: str
    metrics: Optional[dict[str, float]]
    complete: bool
    lineage: list[dict[str, Any]] = field(default_factory=list)  # the chosen model's values by epoch (PBT schedule)


def is_sweep_folder(path: Path) -> bool:
    """A folder `nlb-eval sweep` wrote: its sweep.json says so."""
    import json

    try:
        return json.loads((Path(path) / SWEEP_FILE).read_text())["tool"] == TOOL
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_spec(spec: SweepSpec) -> None:
    """One-line errors for bad arguments, before any work."""
    from ..datasets.specs import check_bin, get_dataset
    from ..datasets.tensors import check_phase
    from .ray_session import check_num_cpus

    get_dataset(spec.dataset)
    check_bin(spec.bin_ms)
    check_phase(spec.phase)
    if spec.search not in SEARCHES:
        raise NLBInputError(f"--search: {spec.search!r} (expected one of {', '.join(SEARCHES)})")
    if spec.samples < (2 if spec.search == "pbt" else 1):
        raise NLBInputError(f"--samples: {spec.samples} (expected at least {2 if spec.search == 'pbt' else 1}"
                            f"{' trials: PBT needs a population' if spec.search == 'pbt' else ''})")
    if not (math.isfinite(spec.cpus_per_trial) and spec.cpus_per_trial > 0):
        raise NLBInputError(f"--cpus-per-trial: {spec.cpus_per_trial} (expected a number > 0)")
    if not (math.isfinite(spec.gpus_per_trial) and spec.gpus_per_trial >= 0):
        raise NLBInputError(f"--gpus-per-trial: {spec.gpus_per_trial} (expected a number >= 0)")
    check_num_cpus(spec.num_cpus)
    check_int(spec.seed, "--seed", 0, 2**32 - 1)  # it seeds Ray's variant generator, a numpy RandomState
    if spec.synthetic == (spec.data is not None):
        raise NLBInputError("give exactly one of --data DIR or --synthetic")
    if spec.resume and spec.overwrite:
        raise NLBInputError("--resume and --overwrite: give one of them (continue the sweep, or replace it)")


def spec_record(spec: SweepSpec, space: SearchSpace) -> dict[str, Any]:
    """The parts of a spec that define the sweep (what --resume must match), JSON-ready."""
    return {"baseline": spec.baseline, "dataset": spec.dataset, "bin_ms": spec.bin_ms, "phase": spec.phase,
            "search": spec.search, "samples": spec.samples, "seed": spec.seed, "profile": spec.profile,
            "overrides": spec.overrides, "space": space.source, "config_file": str(spec.config_file or ""),
            "synthetic": spec.synthetic, "data": str(spec.data or "")}


def claim_sweep_dir(spec: SweepSpec, record: dict[str, Any]) -> bool:
    """SWEEPDIR must be new or empty, a previous sweep with --overwrite, or (--resume) the same sweep; True when
    a previous sweep is to be replaced (done by the caller once the data have loaded)."""
    import json

    out = Path(spec.out)
    if spec.resume:
        if not is_sweep_folder(out):
            raise NLBInputError(f"{out}: --resume: not a sweep folder (expected the SWEEPDIR of an earlier "
                                "`nlb-eval sweep`, with its sweep.json)")
        saved = json.loads((out / SWEEP_FILE).read_text()).get("spec", {})
        differ = [k for k in RESUME_FIELDS if saved.get(k) != record.get(k)]
        if differ:
            k = differ[0]
            raise NLBInputError(f"{out / SWEEP_FILE}: --resume: {k} was {saved.get(k)!r}, now {record.get(k)!r} "
                                "(expected the same arguments as the interrupted sweep)")
        return False
    return claim_output(out, "--out", "sweep folder", is_sweep_folder, spec.overwrite)


# ----- Ray Tune pieces -------------------------------------------------------------------------------

def trial_index(trial_id: str) -> int:
    """`fe875_00003` -> 3: the part of a Ray trial id that repeats across experiments (0 without one)."""
    tail = trial_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# ----- the sweep ---------------------------------------------------------------------------------------

NO_REFIT = "nlb-eval sweep: a trial is a selection fit"  # the origin of the refit=false a sweep sets


def trial_overrides(cls: type, fixed: dict[str, Any], user: dict[str, Any], searched: tuple[str, ...],
                    space_label: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(overrides every trial gets, the origin of those that do not come from --set): the space's fixed values
    under the user's, and `refit: false` for a baseline that can refit (whatever its profile or --config says),
    since a sweep scores each trial on its validation trials, which a refit trains on; one line if --set or the
    space asks for refit=true or searches it."""
    overrides = {**fixed, **user}
    origins = {k: space_label for k in fixed if k not in user}
    if "refit" in {f.name for f in dataclasses.fields(cls.Config)}:
        who = "--set" if user.get("refit") else f"{space_label} (params.refit)" if "refit" in searched else \
            space_label if overrides.get("refit") else None
        if who is not None:
            raise NLBInputError(f"{who}: refit=true: a sweep scores every trial on its validation trials, which a "
                                f"refit trains on; sweep without it, then `nlb-eval run {cls.name} --dataset NAME "
                                "(--data DIR | --synthetic) --config SWEEPDIR/best_config.yaml --set refit=true`")
        overrides["refit"] = False
        origins["refit"] = NO_REFIT
    return overrides, origins


def run_sweep(spec: SweepSpec, progress: bool = True) -> SweepResult:
    """Run (or, with spec.resume, continue) a sweep and record it in spec.out; see the module docstring."""
    from ..baseline_api import RunContext, build_config, config_values, get_baseline, resolve_config
    from ..datasets.tensors import load
    from ..datasets.truth import find_truth
    from ..runs import check_published_units, resolve_device, synthetic_data, trial_sets
    from .ray_session import check_address, ray_session
    from .trial import TrialSetup

    check_spec(spec)
    cls = get_baseline(spec.baseline)
    space = load_space(spec.space_file or default_space_file(cls)) if spec.space_file or \
        default_space_file(cls).is_file() else None
    if space is None:
        raise NLBInputError(f"baseline {spec.baseline}: no search space ({default_space_file(cls)} is missing) "
                            "(expected --space FILE.yaml)")
    device = "cuda" if spec.gpus_per_trial > 0 else resolve_device(spec.device)
    space_label = f"{spec.space_file or default_space_file(cls)}: search space"
    overrides, from_space = trial_overrides(cls, space.fixed_for(spec.search), spec.overrides, tuple(space.params),
                                            space_label)
    values, origins, _ = config_values(cls, spec.dataset, spec.bin_ms, overrides, spec.profile, device,
                                       spec.config_file, override_origins=from_space)
    for corner in space.corners() or [{}]:  # every searched value, alone and in pairs, must make a valid config
        build_config(cls, {**values, **corner}, f"config of {cls.name}",
                     {**origins, **dict.fromkeys(corner, space_label)})
    start = None
    if space.start_with_config:  # the first trial at the baseline's own values (checked against the ranges)
        start = space.config_point(build_config(cls, values, f"config of {cls.name}", origins))
    check_address(spec.address)
    record = spec_record(spec, space)
    replacing = claim_sweep_dir(spec, record)
    data_dir = synthetic_data(spec.dataset, progress) if spec.synthetic else Path(spec.data)
    tensors = load(spec.dataset, data_dir, bin_ms=spec.bin_ms, phase=spec.phase, progress=progress)
    synthetic = spec.synthetic or find_truth(data_dir) is not None
    if not synthetic:  # before the sweep folder is touched
        check_published_units(spec.dataset, tensors.train_spikes_heldin.shape[2],
                              tensors.train_spikes_heldout.shape[2], data_dir)
    out = Path(spec.out).absolute()
    if replacing:  # a previous sweep folder, recognised by its sweep.json, with --overwrite
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SWEEP_FILE, {"tool": TOOL, "nlb_suite": __version__, "spec": record, "state": "running",
                                  "command": " ".join(sys.argv)})
    train, _ = trial_sets(tensors)  # the eval trials stay here: trials never see them
    context = RunContext.for_trials(spec.dataset, spec.bin_ms, train, seed=spec.seed, device=device,
                                    data_dir=data_dir, synthetic=synthetic)
    interval = space.pbt.perturbation_interval if spec.search == "pbt" else spec.checkpoint_every
    setup = TrialSetup(spec.baseline, spec.dataset, spec.bin_ms, device, spec.profile, spec.config_file, overrides,
                       train, context, interval, threads=max(1, int(spec.cpus_per_trial)))
    _set_state(out, "running", trial_setup={"overrides": overrides, "threads": setup.threads, "device": device,
                                            "data": str(data_dir.absolute()),
                                            "config_file": str(spec.config_file.absolute()) if spec.config_file else None})
    names = list(space.params)
    print(f"sweep: {spec.search} search of {spec.baseline} on {spec.dataset} ({spec.bin_ms} ms, phase {spec.phase}),"
          f" {spec.samples} trials over {', '.join(names)}; selection on internal validation only", flush=True)
    with ray_session(spec.address, out, spec.num_cpus):
        results, interrupted = _tune(spec, space, setup, out, names, start)
    rows = trial_rows(results, names, interrupted)
    result_of = {r.trial: x for r, x in zip(rows, results)}
    rows.sort(key=lambda r: trial_index(r.trial))
    write_trials(out / TRIALS_FILE, rows, names)
    finished = [r for r in rows if r.status == "done"]
    monitor = next((r.get("monitor") for r in (x.metrics for x in results) if r and r.get("monitor")), "valid")
    complete = not interrupted and len(rows) == spec.samples and all(r.status != "unfinished" for r in rows)
    if not complete:
        _set_state(out, "interrupted")
        print(f"sweep interrupted: {len(finished)} of {spec.samples} trials finished; continue with the same "
              "command and --resume", file=sys.stderr)
        return SweepResult(out, rows, None, monitor, None, False)
    if not finished:
        _set_state(out, "failed")
        raise NLBInputError(f"{out}: every trial failed (see {out / TUNE_DIR}/*/error.txt)")
    best = min(finished, key=lambda r: (r.valid_best, trial_index(r.trial)))
    best_result = result_of[best.trial]
    config, _ = resolve_config(cls, spec.dataset, spec.bin_ms, {**overrides, **best.config}, spec.profile, device,
                               spec.config_file)
    write_best_config(out / BEST_CONFIG, config, spec, best, monitor)
    metrics, lineage = build_best_run(spec, out, best_result, best, {**overrides, **best.config}, tensors, progress)
    _set_state(out, "done", best={"trial": best.trial, "monitor": monitor, "valid_best": best.valid_best,
                                  "config": best.config, "lineage": lineage, "epochs": best.epochs})
    return SweepResult(out, rows, best, monitor, metrics, True, lineage)


def _set_state(out: Path, state: str, **extra: Any) -> None:
    import json

    info = json.loads((out / SWEEP_FILE).read_text())
    write_json(out / SWEEP_FILE, {**info, "state": state, **extra})


def _tune(spec: SweepSpec, space: SearchSpace, setup, out: Path, names: list[str],
          start: Optional[dict[str, Any]] = None):
    """Run (or restore and continue) the Ray Tune experiment; returns its ResultGrid and whether Ctrl-C
    stopped it. `start`: the first trial's searched values (else sampled like the rest)."""
    from ray import tune

    from .trial import run_trial
    from .tune_parts import InterruptWatch

    trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup),
                                    {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
    path = out / TUNE_DIR
    if spec.resume and tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = _new_tuner(spec, space, trainable, out, names, start)
    with InterruptWatch() as watch:
        results = tuner.fit()
    return results, watch.interrupted


def _new_tuner(spec: SweepSpec, space: SearchSpace, trainable, out: Path, names: list[str],
               start: Optional[dict[str, Any]] = None):
    """A Tuner for a new sweep: random search, or PBT with its scheduler and plateau stopper."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from .tune_parts import PlateauStopper, SeededPBT, SweepProgress, trial_folder

    scheduler, stopper, metric = None, None, "best"
    if spec.search == "pbt":
        p = space.pbt
        stopper = PlateauStopper(spec.samples, p.perturbation_interval, p.burn_in, p.plateau_generations,
                                 p.min_improvement)
        scheduler = SeededPBT(  # perturbations and donors repeat with the seed, across a --resume too
            seed=spec.seed, explore=space.explore, searched=names, time_attr="epoch", metric="valid", mode="min",
            perturbation_interval=p.perturbation_interval, burn_in_period=p.burn_in,
            quantile_fraction=p.quantile_fraction, resample_probability=0.0, synch=True)
        metric = None  # the scheduler carries metric and mode
    search_alg = BasicVariantGenerator(random_state=spec.seed, points_to_evaluate=[start] if start else None)
    tune_config = tune.TuneConfig(
        num_samples=spec.samples, scheduler=scheduler, reuse_actors=True, metric=metric,
        mode="min" if metric else None, search_alg=search_alg, trial_dirname_creator=trial_folder)
    run_config = tune.RunConfig(
        name=TUNE_DIR, storage_path=str(out), stop=stopper, verbose=0,
        callbacks=[SweepProgress(spec.samples, names), JsonLoggerCallback(), CSVLoggerCallback()],
        checkpoint_config=tune.CheckpointConfig(num_to_keep=4 if spec.search == "pbt" else 2),
        failure_config=tune.FailureConfig(max_failures=0))
    return tune.Tuner(trainable, param_space=space.ray_space(spec.search), tune_config=tune_config,
                      run_config=run_config)


def trial_rows(results, names: list[str], interrupted: bool = False) -> list[TrialRow]:
    """One row per trial of a ResultGrid (the values its kept weights last trained with, best validation score
    and epoch, epochs, time, status).

    After Ctrl-C Ray marks the trials it stopped as terminated: only those whose last report was their
    final epoch count as done then."""
    from .trial import held_state, trial_record

    trials = results._experiment_analysis.trials  # ResultGrid keeps its Trial objects, in the results' order
    statuses = {"TERMINATED": "done", "ERROR": "error"}
    rows = []
    for result, trial in zip(results, trials):
        m = result.metrics or {}
        status = statuses.get(trial.status, "unfinished")
        if interrupted and status == "done" and not m.get("final"):
            status = "unfinished"
        if status == "done" and "best" not in m:
            raise NLBInputError(f"trial {trial.trial_id} reported no epochs: a sweep needs a baseline that trains "
                                "through baselines.torch_core.Trainer (its per-epoch internal validation)")
        # a finished trial: the model it ends holding, a last-epoch donor's included
        record = trial_record(held_state(result.checkpoint, Path(result.path)), m, result.config,
                              finished=status == "done")
        rows.append(TrialRow(trial.trial_id, status, {n: record.values.get(n) for n in names}, record.valid_best,
                             record.best_epoch, record.epochs, record.fit_s))
    return rows


def write_trials(path: Path, rows: list[TrialRow], names: list[str]) -> None:
    """trials.csv: one line per trial, best validation first."""
    from ..h5io import atomic_path

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*TRIAL_COLUMNS[:2], *names, *TRIAL_COLUMNS[2:]])
    for r in sorted(rows, key=lambda r: (math.isnan(r.valid_best), r.valid_best)):
        w.writerow([r.trial, r.status, *(_csv(r.config.get(n)) for n in names), _csv(r.valid_best), r.best_epoch,
                    r.epochs, f"{r.fit_s:.1f}"])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def read_trials(path: Path) -> list[TrialRow]:
    """The rows of a trials.csv `write_trials` wrote (searched values as numbers where they parse as one)."""
    def value(text: str) -> Any:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        names = [n for n in reader.fieldnames or [] if n not in TRIAL_COLUMNS]
        return [TrialRow(r["trial"], r["status"], {n: value(r[n]) for n in names}, float(r["valid_best"]),
                         int(r["best_epoch"]), int(r["epochs"]), float(r["fit_s"])) for r in reader]


def _csv(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # full precision: the table is data


def write_best_config(path: Path, config: Any, spec: SweepSpec, best: TrialRow, monitor: str) -> None:
    """The chosen trial's full config as a YAML `run --config` takes, with a header saying where it came from."""
    from ..h5io import atomic_path

    head = [f"# {spec.baseline} config chosen by `nlb-eval sweep` ({spec.search} search, {spec.samples} trials) on "
            f"{spec.dataset} ({spec.bin_ms} ms, phase {spec.phase})",
            f"# trial {best.trial}: {monitor} {best.valid_best:.6g} (internal validation; eval trials not used)",
            f"# use: nlb-eval run {spec.baseline} --dataset {spec.dataset} --config {path.name} ..."]
    if spec.search == "pbt":
        head.append(f"# PBT: the values in force at the kept epoch {best.best_epoch} (counted from 1), the last its "
                    "kept weights trained with (the whole schedule: the lineage in sweep.json); training anew with "
                    "them fixed is not the PBT model (that one is best_run/)")
    body = yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(head) + "\n" + body)


def build_best_run(spec: SweepSpec, out: Path, best_result, best: TrialRow, overrides: dict[str, Any], tensors,
                   progress: bool) -> tuple[Optional[dict[str, float]], list[dict[str, Any]]]:
    """Rebuild the chosen model from the snapshot it holds (`held_state`: best weights, no training) into
    SWEEPDIR/best_run; its run.json gets the trial's training time as fit_s (the rebuild's own as rebuild_s) and
    the sweep's record with the model's lineage. Returns the eval metrics and that lineage."""
    from ..runs import RunSpec, is_run_folder
    from .trial import LINEAGE_KEY, held_state, rebuild_from_state

    state = held_state(best_result.checkpoint, Path(best_result.path))
    lineage = state.get(LINEAGE_KEY, [])
    run_dir = out / BEST_RUN
    run = RunSpec(baseline=spec.baseline, dataset=spec.dataset, bin_ms=spec.bin_ms, phase=spec.phase,
                  data=spec.data, synthetic=spec.synthetic, out=run_dir, seed=spec.seed,
                  device="cuda" if spec.gpus_per_trial > 0 else spec.device, overrides=overrides, profile=spec.profile,
                  ci=spec.ci, overwrite=is_run_folder(run_dir), config_file=spec.config_file)
    t0 = time.perf_counter()
    record = {"sweepdir": str(out), "search": spec.search, "trials": spec.samples, "trial": best.trial,
              "valid_best": best.valid_best, "best_epoch": best.best_epoch, "epochs": best.epochs, "lineage": lineage}
    result = rebuild_from_state(run, state, tensors, progress, best.fit_s, {"sweep": record})
    print(f"best model rebuilt from its checkpoint into {run_dir} ({time.perf_counter() - t0:.0f} s)")
    return result.metrics, lineage
