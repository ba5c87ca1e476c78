"""Does a run's result depend on the machine's core count? GPFA and smoothing under several BLAS thread counts.

    python benchmarks/bench_blas_threads.py --datasets mc_maze_small,mc_maze_large --models gpfa,smoothing

OpenBLAS starts with one thread per core (or OPENBLAS_NUM_THREADS), and a product split across threads sums
in another order. A run holds BLAS to the model's `cpu_threads` during its fit and prediction and to one thread
everywhere else (nlb_suite.blas_threads). Each row is one `nlb-eval run` in a child process on the cached
synthetic stand-in, with the machine's default set by OPENBLAS_NUM_THREADS and the model's count by `--set
cpu_threads`: rows with the same `cpu_threads` should carry the same submission and metrics bytes whatever the
default. Timing: `fit s` is the fit's wall time (run.json); `child CPU s` is the CPU time of the whole child
process (start-up, tensors, fit, prediction, scoring), from rusage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from nlb_suite.table import format_table  # noqa: E402

SETTINGS = ((2, 1), (1, 1), (2, 2))  # (OPENBLAS_NUM_THREADS, cpu_threads): default held at 1 twice, then 2 threads


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _run(model: str, dataset: str, default_threads: int, cpu_threads: int, out: Path) -> dict:
    """One run in a child process; its files' digests, co-bps, fit time and the child's CPU seconds."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(default_threads)}
    env.pop("OMP_NUM_THREADS", None)  # OpenBLAS falls back to it; the bench sets the default itself
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "nlb_suite.cli", "run", model, "--dataset", dataset, "--synthetic",
                           "--ci", "0", "--set", f"cpu_threads={cpu_threads}", "--out", str(out)],
                          env=env, capture_output=True, text=True)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}, no message"]
        raise SystemExit(f"{model} on {dataset} ({default_threads} / {cpu_threads} threads): {lines[-1]}")
    run = json.loads((out / "run.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())[0]
    co_bps = next(v for k, v in next(iter(metrics.values())).items() if k.endswith("co-bps"))
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {"submission": _digest(out / "submission.h5"), "metrics": _digest(out / "metrics.json"),
            "co_bps": co_bps, "fit_s": run["timings"]["fit_s"], "cpu_s": cpu,
            "machine_threads": run["machine"].get("openblas_threads", "n/a")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="mc_maze_small,mc_maze_large")
    ap.add_argument("--models", default="gpfa,smoothing")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="nlb_threads_") as tmp:
        for dataset in args.datasets.split(","):
            for model in args.models.split(","):
                first = None
                for default_threads, cpu_threads in SETTINGS:
                    out = Path(tmp) / f"{dataset}_{model}_{default_threads}_{cpu_threads}"
                    r = _run(model, dataset, default_threads, cpu_threads, out)
                    first = first or r
                    same = "-" if r is first else ("same" if (r["submission"], r["metrics"]) ==
                                                   (first["submission"], first["metrics"]) else "differ")
                    rows.append([dataset, model, default_threads, cpu_threads, r["machine_threads"], r["submission"],
                                 r["metrics"], same, f"{r['co_bps']:.6f}", f"{r['fit_s']:.1f}", f"{r['cpu_s']:.1f}"])
                    print(f"{dataset} {model} default {default_threads} cpu_threads {cpu_threads}: done", flush=True)
    print(format_table(["dataset", "model", "OPENBLAS_NUM_THREADS", "cpu_threads", "run.json threads", "submission",
                        "metrics.json", "vs first row", "co-bps", "fit s", "child CPU s"], rows))


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_blas_threads.py")
