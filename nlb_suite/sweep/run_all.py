"""`nlb-eval run-all`: one baseline on every dataset x bin width as Ray tasks, then one packaged submission.

OUT holds run_all.json (the batch's spec), runs/<dataset>_<bin>ms/ (one run folder each, as `nlb-eval run`
writes them) and submission.h5 with its manifest (via `nlb-eval package`, which validates it). Running
the same command again skips the runs already finished (a run folder appears only when complete), retries
the rest, and packages again.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import __version__
from ..errors import NLBInputError, input_error
from ..jsonio import write_json
from ..outputs import check_folder_out

RUN_ALL_FILE = "run_all.json"
RUNS_DIR = "runs"
PACKAGE = "submission.h5"
TOOL = "nlb-eval run-all"


@dataclass
class RunAllSpec:
    """What `nlb-eval run-all` takes."""

    baseline: str
    out: Path
    phase: str = "test"
    data_root: Optional[Path] = None
    synthetic: bool = False
    bins: list[int] = field(default_factory=lambda: [5, 20])
    datasets: Optional[list[str]] = None  # None: all seven
    address: str = "local"
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    seed: int = 0
    device: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)
    profile: Optional[str] = None
    ci: int = 200
    num_cpus: Optional[int] = None  # local Ray's CPU count (default: the machine's)


@dataclass
class RunOutcome:
    dataset: str
    bin_ms: int
    status: str  # "done", "skipped" (finished earlier) or "failed"
    run_dir: Path
    metrics: Optional[dict[str, float]] = None
    seconds: float = 0.0
    error: str = ""


def is_run_all_folder(path: Path) -> bool:
    """A folder `nlb-eval run-all` wrote: its run_all.json says so."""
    try:
        return json.loads((Path(path) / RUN_ALL_FILE).read_text())["tool"] == TOOL
    except (OSError, ValueError, KeyError, TypeError):
        return False


def claim_run_all_dir(out: Path, spec: RunAllSpec) -> None:
    """OUT must be new or empty, or an earlier batch of the same baseline and phase (which is continued)."""
    check_folder_out(out, "--out")
    if not out.exists() or not any(out.iterdir()):
        return
    if not is_run_all_folder(out):
        raise input_error(str(out), "--out: not a run-all folder; nothing touched",
                          "a new or empty folder, or the --out of an earlier run-all to continue it")
    info = json.loads((out / RUN_ALL_FILE).read_text())
    if (info.get("baseline"), info.get("phase")) != (spec.baseline, spec.phase):
        raise input_error(str(out / RUN_ALL_FILE), f"--out: a batch of {info.get('baseline')} phase "
                          f"{info.get('phase')}", f"{spec.baseline} phase {spec.phase} to continue it, or a new --out")


def dataset_folder(root: Path, name: str) -> Path:
    """A dataset's NWB folder under --data-root: ROOT/<dandiset>/sub-<subject> (the download layout) or ROOT/<name>."""
    from ..datasets.specs import get_dataset

    spec = get_dataset(name)
    for cand in (Path(root) / spec.dandiset / f"sub-{spec.subject}", Path(root) / name):
        if cand.is_dir():
            return cand
    raise NLBInputError(f"{root}: --data-root: no folder for {name} (expected {root}/{spec.dandiset}/"
                        f"sub-{spec.subject} as `nlb-eval download` writes it, or {root}/{name})")


def plan(spec: RunAllSpec) -> list[tuple[str, int]]:
    """(dataset, bin) pairs of the batch, checked."""
    from ..datasets.specs import DATASETS, check_bin, get_dataset
    from ..datasets.tensors import check_phase

    check_phase(spec.phase)
    if spec.datasets is not None and not spec.datasets:  # `--datasets ,`: a slip, not "all seven"
        raise NLBInputError("--datasets: empty list (expected comma-separated dataset names, or leave it out for all 7)")
    names = list(DATASETS) if spec.datasets is None else spec.datasets
    for name in names:
        get_dataset(name)
    bins = [check_bin(b) for b in spec.bins]
    if len(set(names)) != len(names) or len(set(bins)) != len(bins) or not names or not bins:
        raise NLBInputError("--datasets/--bins: each at least once and at most once")
    return [(n, b) for n in names for b in bins]


def finished_run(run_dir: Path, spec: RunAllSpec, dataset: str, bin_ms: int) -> bool:
    """True when run_dir holds a complete run of this baseline, dataset, bin and phase."""
    from ..runs import read_run_info

    if not ((run_dir / "run.json").is_file() and (run_dir / "submission.h5").is_file()):
        return False
    info = read_run_info(run_dir / "run.json")
    same = (info["baseline"], info["dataset"], info["bin_ms"], info["phase"]) == \
        (spec.baseline, dataset, bin_ms, spec.phase)
    if not same:
        raise NLBInputError(f"{run_dir}: a run of {info['baseline']} on {info['dataset']} ({info['bin_ms']} ms, phase "
                            f"{info['phase']}) (expected {spec.baseline} on {dataset}, {bin_ms} ms, phase {spec.phase})")
    return True


def _one_run(run_spec, progress: bool = False) -> dict[str, Any]:
    """A Ray task: one `execute`; user errors come back as a message, not a traceback."""
    from ..runs import execute

    t0 = time.perf_counter()
    try:
        result = execute(run_spec, progress=progress)
    except NLBInputError as exc:
        return {"error": str(exc), "seconds": time.perf_counter() - t0}
    return {"metrics": result.metrics, "seconds": time.perf_counter() - t0}


def run_all(spec: RunAllSpec, progress: bool = True) -> tuple[list[RunOutcome], Optional[int]]:
    """Run the batch (skipping finished runs) and package it; returns the outcomes and package's exit code
    (None when a run failed and nothing was packaged)."""
    from ..baseline_api import get_baseline, resolve_config
    from ..runs import RunSpec, resolve_device, synthetic_data
    from .ray_session import check_address, check_num_cpus, ray_session

    pairs = plan(spec)
    cls = get_baseline(spec.baseline)
    if spec.synthetic == (spec.data_root is not None):
        raise NLBInputError("give exactly one of --data-root DIR or --synthetic")
    for name, value in (("--cpus-per-run", spec.cpus_per_run), ("--gpus-per-run", spec.gpus_per_run)):
        if not (math.isfinite(value) and value >= (0 if "gpu" in name else 1e-9)):
            raise NLBInputError(f"{name}: {value} (expected a number {'>= 0' if 'gpu' in name else '> 0'})")
    check_num_cpus(spec.num_cpus)
    device = "cuda" if spec.gpus_per_run > 0 else resolve_device(spec.device)
    for name, b in pairs:  # --set / --profile errors now, in one line, not from inside a Ray task
        resolve_config(cls, name, b, spec.overrides, spec.profile, device)
    folders = {} if spec.synthetic else {n: dataset_folder(spec.data_root, n) for n, _ in pairs}
    check_address(spec.address)
    out = Path(spec.out).absolute()
    claim_run_all_dir(out, spec)
    runs = out / RUNS_DIR
    outcomes: dict[tuple[str, int], RunOutcome] = {}
    for name, b in pairs:
        run_dir = runs / f"{name}_{b}ms"
        if finished_run(run_dir, spec, name, b):
            outcomes[(name, b)] = RunOutcome(name, b, "skipped", run_dir, _metrics(run_dir))
    runs.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_ALL_FILE, {"tool": TOOL, "nlb_suite": __version__, "baseline": spec.baseline,
                                    "phase": spec.phase, "runs": [f"{n}_{b}ms" for n, b in pairs],
                                    "command": " ".join(sys.argv)})
    todo = [(n, b) for n, b in pairs if (n, b) not in outcomes]
    print(f"run-all: {spec.baseline}, phase {spec.phase}: {len(pairs)} runs, {len(pairs) - len(todo)} finished "
          f"earlier, {len(todo)} to run", flush=True)
    if todo:
        if spec.synthetic:  # generated once here, not by two tasks at the same time
            folders = {n: synthetic_data(n, progress) for n in sorted({n for n, _ in todo})}
        for name, b in todo:  # a run killed midway leaves its temp folder (.<name>.*): ours, cleared before redoing
            for stale in runs.glob(f".{name}_{b}ms.*"):
                shutil.rmtree(stale, ignore_errors=True)
        with ray_session(spec.address, out, spec.num_cpus):
            _run_tasks(spec, todo, folders, device, runs, outcomes, RunSpec)
    ordered = [outcomes[p] for p in pairs]
    print_outcomes(ordered)
    failed = [o for o in ordered if o.status == "failed"]
    if failed:
        print(f"{len(failed)} run(s) failed; nothing packaged. Rerun the same command to retry them "
              "(finished runs are kept).", file=sys.stderr)
        return ordered, None
    from ..cli import main as cli_main

    return ordered, cli_main(["package", *(str(o.run_dir) for o in ordered), "--out", str(out / PACKAGE),
                              "--overwrite"])


def _run_tasks(spec: RunAllSpec, todo, folders, device, runs: Path, outcomes, RunSpec) -> None:
    """Submit one Ray task per run; print a line as each finishes."""
    import ray

    task = ray.remote(_one_run).options(num_cpus=spec.cpus_per_run, num_gpus=spec.gpus_per_run, max_retries=0)
    pending = {}
    for name, b in todo:
        run = RunSpec(baseline=spec.baseline, dataset=name, bin_ms=b, phase=spec.phase, data=folders[name],
                      out=runs / f"{name}_{b}ms", seed=spec.seed, device=device, overrides=spec.overrides,
                      profile=spec.profile, ci=spec.ci)
        pending[task.remote(run)] = (name, b)
    done = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        name, b = pending.pop(ready[0])
        run_dir = runs / f"{name}_{b}ms"
        try:
            got = ray.get(ready[0])
        except Exception as exc:  # a crash inside the task (not a user error): reported, the batch goes on
            got = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}",
                   "seconds": 0.0}
        done += 1
        if "error" in got:
            outcomes[(name, b)] = RunOutcome(name, b, "failed", run_dir, None, got["seconds"], got["error"])
            print(f"[{done}/{len(todo)}] {name} {b} ms FAILED: {got['error']}", flush=True)
            continue
        outcomes[(name, b)] = RunOutcome(name, b, "done", run_dir, got["metrics"], got["seconds"])
        co = (got["metrics"] or {}).get("co-bps")
        print(f"[{done}/{len(todo)}] {name} {b} ms done in {got['seconds']:.0f} s"
              + (f", co-bps {co:.4f}" if co is not None else ""), flush=True)


def _metrics(run_dir: Path) -> Optional[dict[str, float]]:
    from ..runs import read_run

    return read_run(run_dir).metrics


def print_outcomes(outcomes: list[RunOutcome]) -> None:
    """The batch as a table: one row per run, with its metrics (phase val) and time."""
    from ..table import print_table

    metrics = ["co-bps", "vel R2", "psth R2", "fp-bps"]
    rows = []
    for o in outcomes:
        m = o.metrics or {}
        cells = [m.get(k) if m.get(k) is not None and not (isinstance(m.get(k), float) and math.isnan(m[k]))
                 else "-" for k in metrics]
        rows.append([o.dataset, o.bin_ms, o.status, *cells, f"{o.seconds:.0f}" if o.status == "done" else "-",
                     o.error or str(o.run_dir)])
    print_table(["dataset", "bin ms", "status", *metrics, "s", "run folder / error"], rows)
