"""A run = dataset + baseline + config -> rates -> submission -> scores, recorded in one run folder.

The folder holds `submission.h5` (EvalAI layout for the dataset), `metrics.json` (nlb_tools-style result
list, phase val), `intervals.json` (bootstrap intervals), `per_neuron_co_bps.json`, `config.yaml` (the
resolved config), `run.json` (provenance: versions, data checksums, timings, command) and `log.txt`.
It is assembled in a temporary folder and renamed into place, so a failed run leaves nothing behind. A run
writes only into a new or empty folder, or (with --overwrite) replaces a previous run folder: one whose
run.json lists every file in it (`files`), so a folder someone added notes or plots to is refused, not
deleted; anything else is refused before any work.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from . import __version__
from .baseline_api import (
    Baseline,
    Rates,
    RunContext,
    TrialSet,
    attributed,
    get_baseline,
    resolve_config_origins,
)
from .blas_threads import DEFAULT_BLAS_THREADS, blas_threads
from .datasets.specs import check_bin, get_dataset
from .errors import ConfigFieldError, NLBInputError, input_error
from .h5io import sha256_file
from .internal_validation import FIELD as VALIDATION_FIELD
from .internal_validation import SELECTION_FIELD, internal_validation
from .jsonio import nan_for_null, write_json
from .outputs import claim_output, discard_temp_dir, make_temp_dir, replace_folder
from .portable_kernels import check_loaded
from .rate_check import check_rates
from .seeding import seed_everything
from .versions import installed_version, numpy_simd, openblas_kernels, openblas_libraries, openblas_threads

log = logging.getLogger("nlb_suite.runs")

SYNTHETIC_SEED = 0  # the synthetic stand-in is one fixed dataset; --seed seeds the model


@dataclass
class RunSpec:
    """Everything that defines a run (what `nlb-eval run` takes)."""

    baseline: str
    dataset: str
    bin_ms: int = 5
    phase: str = "val"
    data: Optional[Path] = None
    synthetic: bool = False
    out: Optional[Path] = None
    seed: int = 0
    device: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)
    profile: Optional[str] = None
    ci: int = 200
    overwrite: bool = False
    config_file: Optional[Path] = None  # replaces the per-dataset default YAML (`run --config`)


@dataclass
class RunResult:
    run_dir: Path
    metrics: Optional[dict[str, float]]
    intervals: Optional[dict[str, list[float]]]
    timings: dict[str, float]
    truth: Optional[dict[str, Any]] = None  # ground-truth scores (synthetic data): rate R2, state R2


def cache_root() -> Path:
    """Where generated synthetic datasets are cached ($NLB_SUITE_CACHE, default ~/.cache/nlb_suite)."""
    return Path(os.environ.get("NLB_SUITE_CACHE", "~/.cache/nlb_suite")).expanduser()


def synthetic_data(dataset: str, progress: bool = True) -> Path:
    """Folder of the cached synthetic stand-in of `dataset`, keyed by the generator's code (generated on first use)."""
    from .datasets.synthetic_cache import cached_synthetic

    return cached_synthetic(cache_root() / "synthetic", dataset, seed=SYNTHETIC_SEED, progress=progress)


def data_checksums(data_dir: str | Path) -> dict[str, str]:
    """SHA-256 of each NWB file of a data folder, by file name: what a run records (`data_sha256`) and what
    ensemble, report and reuse compare with it."""
    from .datasets.session import find_nwb_files

    return {p.name: sha256_file(p) for p in find_nwb_files(data_dir)}


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; an unavailable 'cuda' is a clear error."""
    if device not in ("auto", "cpu", "cuda"):
        raise NLBInputError(f"--device: {device!r} is not one of auto, cpu, cuda")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if device == "cuda" and not has_cuda:
        raise NLBInputError("--device cuda: no CUDA device available (torch missing or no GPU); use --device auto")
    return "cuda" if device == "auto" and has_cuda else ("cpu" if device == "auto" else device)


def trial_sets(tensors) -> tuple[TrialSet, TrialSet]:
    """The train and eval TrialSets a baseline sees, from benchmark tensors."""
    ti, ei, ex = tensors.train_input, tensors.eval_input, tensors.extras
    train = TrialSet(
        split="train", spikes_heldin=ti["train_spikes_heldin"], trial_ids=tensors.train_trial_ids,
        bins=ex["train_bins"], forward_bins=ex["train_forward_bins"],
        spikes_heldout=ti["train_spikes_heldout"], spikes_heldin_forward=ti["train_spikes_heldin_forward"],
        spikes_heldout_forward=ti["train_spikes_heldout_forward"], behavior=ti.get("train_behavior"),
    )
    evals = TrialSet(split="eval", spikes_heldin=ei["eval_spikes_heldin"], trial_ids=tensors.eval_trial_ids,
                     bins=ex["eval_bins"], forward_bins=ex["eval_forward_bins"])
    return train, evals


def _check_rates(rates: Rates, trials: TrialSet, ctx: RunContext, baseline: str) -> None:
    n, t = trials.spikes_heldin.shape[:2]
    expected = {"heldin": (n, t, ctx.n_heldin), "heldout": (n, t, ctx.n_heldout),
                "heldin_forward": (n, ctx.n_forward_bins, ctx.n_heldin),
                "heldout_forward": (n, ctx.n_forward_bins, ctx.n_heldout)}
    for name, shape in expected.items():
        arr = getattr(rates, name)
        if arr is None and name.endswith("forward"):
            continue
        if arr is None or tuple(arr.shape) != shape:
            found = None if arr is None else tuple(arr.shape)
            raise NLBInputError(f"baseline {baseline}: {trials.split} {name} rates have shape {found} "
                                f"(expected {shape})")
        check_rates(arr, f"baseline {baseline}: {trials.split} {name} rates")


def submission_dict(key: str, train: Rates, evals: Rates) -> dict[str, dict[str, np.ndarray]]:
    """The EvalAI group for one dataset from train and eval rates."""
    group = {"train_rates_heldin": train.heldin, "train_rates_heldout": train.heldout,
             "eval_rates_heldin": evals.heldin, "eval_rates_heldout": evals.heldout}
    if evals.heldin_forward is not None and evals.heldout_forward is not None:
        group["eval_rates_heldin_forward"] = evals.heldin_forward
        group["eval_rates_heldout_forward"] = evals.heldout_forward
    return {key: {k: np.asarray(v, dtype=np.float32) for k, v in group.items()}}



def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers."""
    out = {"python": platform.python_version(), "nlb_suite": __version__}
    for pkg in ("numpy", "scipy", "h5py", "pynwb", "torch"):
        if (version := installed_version(pkg)) is not None:
            out[pkg] = version
    return out


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: str) -> dict[str, str]:
    """The hardware a run's numbers came from: float kernels differ between CPUs (and GPUs), so one seed's fit
    is bit-identical on one machine but may not be on another."""
    out = {"cpu": cpu_model(), "arch": platform.machine(), "numpy_simd": numpy_simd()}
    if libraries := openblas_libraries():  # one scan of the loaded libraries for both fields
        out["openblas_kernel"] = ",".join(openblas_kernels(libraries))
        out["openblas_threads"] = ",".join(map(str, openblas_threads(libraries)))
    torch = sys.modules.get("torch")  # only a torch baseline's kernels depend on it; never imported for this
    if torch is not None:
        capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
        if capability is not None:
            out["torch_cpu_capability"] = capability()
        if device.startswith("cuda") and torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


@blas_threads(DEFAULT_BLAS_THREADS)  # the machine as a fit here runs on it, whoever calls (fit_model holds BLAS too)
def provenance(device: Optional[str]) -> dict[str, Any]:
    """What a record says about how it came about: the command line, this package's and its dependencies'
    versions and, for numbers a model computed on `device`, the machine (run.json, fit_only.py's fit.json).
    device None: numbers made from other runs' rates (an ensemble's run.json), which no machine here decides."""
    out = {"command": " ".join(sys.argv), "nlb_suite": __version__, "versions": package_versions()}
    return out if device is None else {**out, "machine": machine_info(device)}


def provenance_changes(info: dict[str, Any], device: str) -> list[str]:
    """How the package versions and machine an earlier run recorded (its run.json) differ from this process's
    on `device`, e.g. ["torch 2.12.0 (now 2.13.0+cpu)"]: a rerun here may then not reproduce that run's numbers
    exactly. A GPU on one side only counts; torch's CPU field only where both sides have it (it exists once
    torch is imported, and only a torch run depends on it)."""
    here = provenance(device)  # what a run here would record (BLAS held as execute holds it)
    versions, machine = here["versions"], here["machine"]
    changes = []
    for key, value in (info.get("versions") or {}).items():
        now = versions.get(key) or installed_version(key)
        if now != value:
            changes.append(f"{key} {value} (now {now or 'not installed'})")
    if not info.get("versions"):
        changes.append("versions not recorded")
    then = info.get("machine")
    if not then:
        return [*changes, "machine not recorded"]
    keys = [key for key in {**then, **machine} if key == "gpu" or (key in then and key in machine)]
    return [*changes, *(f"{key} {then.get(key, 'none')} (now {machine.get(key, 'none')})"
                        for key in keys if then.get(key) != machine.get(key))]


def default_run_dir(spec: RunSpec) -> Path:
    return Path("runs") / f"{spec.dataset}_{spec.bin_ms}ms_{spec.phase}_{spec.baseline}_s{spec.seed}"


def plain_metrics(group: Optional[dict]) -> Optional[dict]:
    """Metric names without the scaling-set prefix ("[100] co-bps" -> "co-bps")."""
    if group is None:
        return None
    return {k.split("] ", 1)[-1]: v for k, v in group.items()}


@blas_threads(DEFAULT_BLAS_THREADS)
def fit_model(cls: type[Baseline], config: Any, ctx: RunContext, train: TrialSet,
              origins: Optional[dict[str, str]] = None) -> tuple[Baseline, float]:
    """Seed with the run's seed, build and fit one baseline as every run does; the model and its fit seconds.

    A value the data's shape rules out (e.g. n_heads for this many neurons) names the file or flag it came from
    (`origins`, from resolve_config_origins). `execute` fits through here; so does benchmarks/fit_only.py.
    """
    seed_everything(ctx.seed)
    try:
        model = cls(config, ctx)
        t0 = time.perf_counter()
        model.fit(train)
        return model, time.perf_counter() - t0
    except ConfigFieldError as exc:
        raise attributed(exc, origins or {}) from None


@blas_threads(DEFAULT_BLAS_THREADS)
def execute(spec: RunSpec, progress: bool = True, tensors=None) -> RunResult:
    """Run one baseline on one dataset end to end and record everything in its run folder.

    `tensors`: the dataset's already loaded benchmark tensors for spec's bin and phase (a sweep loads them
    once for all its runs); None loads them from the data. BLAS is held to DEFAULT_BLAS_THREADS throughout
    (a model may set its own count inside its fit), so the run's numbers do not depend on the core count.
    """
    from .datasets.tensors import check_phase, load
    from .datasets.truth import find_truth
    from .metrics_evaluate import check_bootstrap, evaluate_report
    from .submission import write_submission

    ds = get_dataset(spec.dataset)
    bin_ms = ds.check_bin_fits(check_bin(spec.bin_ms))
    check_phase(spec.phase)
    check_bootstrap(spec.ci, spec.seed)
    cls: type[Baseline] = get_baseline(spec.baseline)
    check_loaded()  # under --portable-kernels: torch, loaded with a torch baseline, took its AVX2 kernels too
    if spec.synthetic == (spec.data is not None):
        raise NLBInputError("give exactly one of --data DIR or --synthetic")
    device = resolve_device(spec.device)
    config, sources, origins = resolve_config_origins(cls, spec.dataset, bin_ms, spec.overrides, spec.profile,
                                                      device, spec.config_file)
    run_dir = Path(spec.out) if spec.out else default_run_dir(spec)
    claim_run_dir(run_dir, spec.overwrite)
    data_dir = synthetic_data(spec.dataset, progress) if spec.synthetic else Path(spec.data)
    work = make_temp_dir(run_dir)
    handler = None
    try:  # from here on a failure (or a kill) discards the temp folder
        handler = logging.FileHandler(work / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("nlb_suite").addHandler(handler)
        logging.getLogger("nlb_suite").setLevel(logging.INFO)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if tensors is None:
            tensors = load(spec.dataset, data_dir, bin_ms=bin_ms, phase=spec.phase, progress=progress)
        timings["tensors_s"] = time.perf_counter() - t0
        train, evals = trial_sets(tensors)
        synthetic = spec.synthetic or find_truth(data_dir) is not None
        ctx = RunContext.for_trials(spec.dataset, bin_ms, train, seed=spec.seed, device=device, data_dir=data_dir,
                                    run_dir=work, synthetic=synthetic)
        if not synthetic:
            check_published_units(spec.dataset, ctx.n_heldin, ctx.n_heldout, data_dir)
        log.info("run %s on %s (%d ms, phase %s), %d train / %d eval trials, device %s", spec.baseline,
                 spec.dataset, bin_ms, spec.phase, train.n_trials, evals.n_trials, device)
        model, timings["fit_s"] = fit_model(cls, config, ctx, train, origins)
        t0 = time.perf_counter()
        check_loaded()  # again: a baseline may load torch only inside its fit
        rates_train, rates_eval = model.predict(train), model.predict(evals)
        timings["predict_s"] = time.perf_counter() - t0
        timings["predict_ms_per_trial"] = 1000 * timings["predict_s"] / (train.n_trials + evals.n_trials)
        _check_rates(rates_train, train, ctx, spec.baseline)
        _check_rates(rates_eval, evals, ctx, spec.baseline)
        internal = internal_validation(model, train, rates_train)  # the score model selection may use
        submission = submission_dict(tensors.result_key, rates_train, rates_eval)
        write_submission(submission, work / "submission.h5")

        metrics = intervals = None
        if tensors.target is not None:
            t0 = time.perf_counter()
            report = evaluate_report(tensors.target_dict(), submission, ci=spec.ci, seed=spec.seed)
            timings["score_s"] = time.perf_counter() - t0
            write_json(work / "metrics.json", report.results)
            metrics = plain_metrics(next(iter(report.results[0].values())))
            if report.intervals:
                write_json(work / "intervals.json", report.intervals)
                intervals = plain_metrics(next(iter(report.intervals[0].values())))
            score = report.groups[tensors.result_key]
            write_json(work / "per_neuron_co_bps.json", [float(v) for v in score.per_neuron_co_bps])
        truth = None
        if find_truth(data_dir) is not None:  # synthetic: rate R2 and state R2 against the ground truth
            from .metrics_truth import TRUTH_FILE, truth_scores

            t0 = time.perf_counter()
            truth = truth_scores(data_dir, bin_ms, model, train, evals, rates_eval)
            timings["truth_s"] = time.perf_counter() - t0
            write_json(work / TRUTH_FILE, truth)
        config_record = {"baseline": spec.baseline, "dataset": spec.dataset, "bin_ms": bin_ms,
                         "phase": spec.phase, "seed": spec.seed, "device": device,
                         "config": dataclasses.asdict(config), "config_sources": sources}
        (work / "config.yaml").write_text(yaml.safe_dump(config_record, sort_keys=False))
        write_json(work / "run.json", {
            **provenance(device), "dataset": spec.dataset, "result_key": tensors.result_key,
            "bin_ms": bin_ms, "phase": spec.phase,
            "baseline": spec.baseline, "seed": spec.seed, "uses_seed": bool(type(model).uses_seed), "device": device,
            "synthetic": synthetic,
            "data_dir": str(Path(data_dir).absolute()), "data_sha256": data_checksums(data_dir),
            "n_train_trials": train.n_trials, "n_eval_trials": evals.n_trials, "timings": timings,
            "has_forward": rates_eval.heldin_forward is not None, VALIDATION_FIELD: internal,
            SELECTION_FIELD: model.selection_fit(),
            SUBMISSION_FIELD: sha256_file(work / "submission.h5"), FILES_FIELD: written_files(work),
        })
    except BaseException:
        discard_temp_dir(work)
        raise
    finally:
        if handler is not None:
            logging.getLogger("nlb_suite").removeHandler(handler)
            handler.close()
    try:
        replace_folder(work, run_dir, claim_run_dir(run_dir, spec.overwrite))
    except BaseException:
        discard_temp_dir(work)
        raise
    return RunResult(run_dir, metrics, intervals, timings, truth)


CURVES_FILE = "curves.csv"  # a trained baseline's log in its run folder: one row per epoch or step, loss columns
REFIT_CURVES_FILE = "refit_curves.csv"  # the log of a refit on all train trials (`refit: true`), no validation
# curves.csv columns that log the schedule and the optimiser, not a loss (the report plots the others as losses)
CURVE_BOOKKEEPING = ("lr", "train_s", "grad_norm_max", "clipped_steps", "unmasked_steps")
SUBMISSION_FIELD = "submission_sha256"  # run.json: the submission.h5 its metrics describe (read_run checks it)
FILES_FIELD = "files"  # run.json: every file the run wrote, relative to its folder (what --overwrite may remove)
# what run folders held before run.json listed its files: the run's own files, checkpoints, training curves
_LEGACY_RUN_ENTRY = re.compile(r"(submission\.h5|metrics\.json|intervals\.json|per_neuron_co_bps\.json"
                               r"|truth_metrics\.json|config\.yaml|run\.json|log\.txt|gnocchi_guidance\.json"
                               r"|autoencoder|(autoencoder/)?(curves\.csv|\w+_best\.pt))")


def is_run_folder(path: Path) -> bool:
    """A folder `nlb-eval run` wrote: it holds run.json."""
    return (path / "run.json").is_file()


def written_files(folder: Path) -> list[str]:
    """Every file under `folder` as relative POSIX paths, sorted, run.json included: the list run.json keeps."""
    return sorted({p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()} | {"run.json"})


def foreign_entries(path: Path) -> list[str]:
    """What a run folder holds that its run did not write (its run.json's file list, or for a folder from
    before that list, the names runs write); everything when run.json is missing or unreadable."""
    entries = sorted(p.relative_to(path).as_posix() + ("/" if p.is_dir() and not p.is_symlink() else "")
                     for p in path.rglob("*"))
    try:
        listed = json.loads((path / "run.json").read_text()).get(FILES_FIELD)
    except (OSError, ValueError, AttributeError):
        return entries
    if isinstance(listed, list):
        allowed = {str(f) for f in listed}
        allowed |= {"/".join(f.split("/")[:i]) + "/" for f in allowed for i in range(1, f.count("/") + 1)}
        return [e for e in entries if e not in allowed]
    return [e for e in entries if not _LEGACY_RUN_ENTRY.fullmatch(e.rstrip("/"))]


def is_own_run_folder(path: Path) -> bool:
    """A run folder holding nothing but what its run wrote: the only kind --overwrite may replace."""
    return is_run_folder(path) and not foreign_entries(path)


def claim_run_dir(run_dir: Path, overwrite: bool) -> bool:
    """Refuse --out unless new, empty or (with --overwrite) a previous run folder holding only its own files;
    True if one will be replaced."""
    if run_dir.is_dir() and is_run_folder(run_dir) and (extra := foreign_entries(run_dir)):
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise input_error(str(run_dir), f"--out: a run folder holding files its run did not write ({shown}); "
                          "nothing touched", "a new folder, or move those files out first")
    return claim_output(run_dir, "--out", "run folder", is_own_run_folder, overwrite)


# ----- reading run folders ---------------------------------------------------------------------------

@dataclass
class RunRecord:
    """A finished run folder, read back for compare/report."""

    path: Path
    info: dict[str, Any]
    config: dict[str, Any]
    metrics: Optional[dict[str, float]]
    intervals: Optional[dict[str, list[float]]]
    truth: Optional[dict[str, Any]] = None  # truth_metrics.json of a synthetic run


RUN_FIELDS = {"dataset": str, "bin_ms": int, "phase": str, "baseline": str}
# fields a run.json may lack (older runs, hand-made folders) but that compare, report and ensemble read when present
OPTIONAL_RUN_FIELDS = {"data_dir": str, "result_key": str, "device": str, "seed": int, "uses_seed": bool,
                       "n_train_trials": int, "n_eval_trials": int, "versions": dict, "machine": dict,
                       "data_sha256": dict, "timings": dict, "internal_validation": dict}


def _read_json(path: Path) -> Any:
    """A JSON file of a run folder; one-line error if it is empty, corrupt or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = "empty file" if path.is_file() and path.stat().st_size == 0 else f"not valid JSON ({exc})"
        raise input_error(str(path), problem, "the file `nlb-eval run` wrote") from None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _result_group(path: Path, interval: bool) -> Optional[dict]:
    """The one split of a run's metrics.json (values) or intervals.json ([lo, hi] pairs), as nlb_tools lists it."""
    if not path.exists():
        return None
    data = nan_for_null(_read_json(path))  # NaN is written as null
    group = data[0] if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict) else {}
    values = next(iter(group.values())) if len(group) == 1 else None
    ok = (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_number, v))) if interval else _is_number
    if not isinstance(values, dict) or not all(ok(v) for v in values.values()):
        form = "[lo, hi]" if interval else "number"
        raise input_error(str(path), "not a result list", f'[{{"<dataset>_split": {{"<metric>": {form}, ...}}}}]')
    return plain_metrics(values)


def check_published_units(dataset: str, n_heldin: int, n_heldout: int, data_dir: Path) -> None:
    """Real recordings (no ground truth) must have the published dataset's unit counts: files of another dataset
    under the wrong --dataset would otherwise fit for hours and give a submission EvalAI refuses."""
    from .datasets.specs import get_dataset

    spec = get_dataset(dataset)
    if (n_heldin, n_heldout) != (spec.n_heldin, spec.n_heldout):
        raise input_error(str(data_dir), f"{n_heldin} held-in + {n_heldout} held-out units, but the published "
                          f"{dataset} has {spec.n_heldin} + {spec.n_heldout}",
                          f"the NWB files of {dataset}; is --dataset right?")


def read_run_info(path: Path) -> dict[str, Any]:
    """A run's run.json, with the fields compare, report and package rely on checked (one-line errors)."""
    info = _read_json(path)
    if not isinstance(info, dict):
        raise input_error(str(path), "not a JSON object", "the file `nlb-eval run` wrote")
    for name, kind in RUN_FIELDS.items():
        if not isinstance(info.get(name), kind):
            raise input_error(str(path), f"{name}: missing or not a {kind.__name__}", "the file `nlb-eval run` wrote")
    if info["phase"] not in ("val", "test"):
        raise input_error(str(path), f"phase: {info['phase']!r}", "val or test")
    for name, kind in OPTIONAL_RUN_FIELDS.items():
        value = info.get(name)
        if value is not None and not _is_a(value, kind):
            raise input_error(str(path), f"{name}: not a {kind.__name__} (got {type(value).__name__})",
                              "the file `nlb-eval run` wrote")
    _check_values(path, info, "timings", (int, float, type(None)), "seconds as numbers")  # null: a NaN written
    _check_values(path, info, "data_sha256", str, "file name -> SHA-256 text")
    trial_ids = (info.get("internal_validation") or {}).get("trial_ids")
    if trial_ids is not None and not (isinstance(trial_ids, list) and all(_is_a(t, int) for t in trial_ids)):
        raise input_error(str(path), "internal_validation.trial_ids: not a list of trial ids (integers)",
                          "the file `nlb-eval run` wrote")
    return info


def _check_values(path: Path, info: dict[str, Any], name: str, kind: type | tuple[type, ...], expected: str) -> None:
    """One-line error unless every value of the mapping `info[name]` (when present) is a `kind` (`_is_a`)."""
    for key, value in (info.get(name) or {}).items():
        if not _is_a(value, kind):
            raise input_error(str(path), f"{name}.{key}: {value!r}", expected)


def _is_a(value: Any, kind: type | tuple[type, ...]) -> bool:
    """isinstance, except that a JSON true/false is never a number (bool subclasses int in Python)."""
    if kind is bool:
        return isinstance(value, bool)
    return isinstance(value, kind) and not isinstance(value, bool)


def check_submission_unchanged(path: Path, info: dict[str, Any]) -> None:
    """The run's submission.h5 is the one its metrics were computed on (run.json's SHA-256; runs from before
    the field have none to check): compare, report and ensemble would otherwise show stale scores."""
    recorded = info.get(SUBMISSION_FIELD)
    if recorded is None:
        return
    if recorded != sha256_file(path / "submission.h5"):
        raise NLBInputError(f"{path / 'submission.h5'}: changed since the run wrote it (SHA-256 differs from "
                            f"run.json {SUBMISSION_FIELD}), so the run's metrics no longer describe it; score the "
                            "file with `nlb-eval evaluate`, or rerun")


def read_run(path: str | Path) -> RunRecord:
    """Read a run folder; a one-line error if it is not one or a file in it is corrupt."""
    path = Path(path)
    if not is_run_folder(path) or not (path / "submission.h5").exists():
        raise NLBInputError(f"{path}: not a run folder (expected run.json and submission.h5 from `nlb-eval run`)")
    info = read_run_info(path / "run.json")
    check_submission_unchanged(path, info)
    config: dict[str, Any] = {}
    if (path / "config.yaml").exists():
        try:
            config = yaml.safe_load((path / "config.yaml").read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise input_error(str(path / "config.yaml"), f"not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(config, dict):
            raise input_error(str(path / "config.yaml"), "not a mapping", "the file `nlb-eval run` wrote")
    metrics = _result_group(path / "metrics.json", interval=False)
    intervals = _result_group(path / "intervals.json", interval=True)
    truth = _read_json(path / "truth_metrics.json") if (path / "truth_metrics.json").is_file() else None
    if truth is not None and not isinstance(truth, dict):
        raise input_error(str(path / "truth_metrics.json"), "not a JSON object", "the file `nlb-eval run` wrote")
    return RunRecord(path, info, config, metrics, intervals, truth)
