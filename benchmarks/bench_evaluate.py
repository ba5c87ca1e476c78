"""Whole-process timing of nlb_tools.evaluation.evaluate vs nlb_suite.evaluate on an mc_maze-scale target.

    .venv/bin/python benchmarks/bench_evaluate.py [--train 600] [--eval 150] [--repeats 3]

Builds a target in the nlb_tools layout (182 units = 137 held-in + 45 held-out, 5 ms, 140 bins, 40 forward
bins, PSTHs over 27 conditions, realistic rates) and a smoothed-spikes submission, writes both as .h5, then
runs each evaluator in a fresh Python process (imports and file reading included) and checks both agree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNNERS = {
    "nlb_tools": "from nlb_tools.evaluation import evaluate",
    "nlb_suite": "from nlb_suite import evaluate",
}


def smooth(x: np.ndarray, sd: float) -> np.ndarray:
    """Gaussian smoothing along axis 1 (bins)."""
    half = int(3 * sd)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sd) ** 2)
    k /= k.sum()
    pad = np.pad(x, [(0, 0), (half, half), (0, 0)], mode="edge")
    return sum(k[i] * pad[:, i : i + x.shape[1]] for i in range(len(k)))


def build(n_train: int, n_eval: int, seed: int = 0) -> tuple[dict, dict]:
    """(target, submission) for mc_maze at 5 ms, nlb_tools layout."""
    rng = np.random.default_rng(seed)
    n_in, n_out, n_bins, n_fwd, n_cond, n_lat = 137, 45, 140, 40, 27, 8
    n = n_train + n_eval
    t = np.arange(n_bins + n_fwd) / (n_bins + n_fwd)
    cond = np.arange(n) % n_cond
    lat_c = np.sin(2 * np.pi * rng.uniform(0.5, 2, (n_cond, 1, n_lat)) * t[None, :, None]
                   + rng.uniform(0, 2 * np.pi, (n_cond, 1, n_lat)))
    lat = lat_c[cond] + 0.3 * smooth(rng.normal(size=(n, n_bins + n_fwd, n_lat)), 6)
    rates = np.exp(lat @ rng.normal(0, 0.5, (n_lat, n_in + n_out)) + rng.uniform(-4.5, -2.0, n_in + n_out))
    spikes = rng.poisson(rates).astype(float)
    vel = lat[:, :n_bins, :2] @ rng.normal(size=(2, 2)) * 50 + rng.normal(0, 5, (n, n_bins, 2))
    tr, ev, main, fwd = slice(0, n_train), slice(n_train, None), slice(0, n_bins), slice(n_bins, None)
    psth = np.stack([rates[cond == c, main].mean(axis=0) for c in range(n_cond)])
    cond_idx = np.empty(n_cond, dtype=object)
    train_idx = np.empty(n_cond, dtype=object)
    for c in range(n_cond):
        cond_idx[c] = np.flatnonzero(cond[ev] == c)
        train_idx[c] = np.flatnonzero(cond[tr] == c)
    target = {"mc_maze": {
        "eval_spikes_heldout": spikes[ev, main, n_in:], "train_behavior": vel[tr], "eval_behavior": vel[ev],
        "eval_spikes_heldin_forward": spikes[ev, fwd, :n_in], "eval_spikes_heldout_forward": spikes[ev, fwd, n_in:],
        "psth": psth, "eval_cond_idx": cond_idx, "train_cond_idx": train_idx,
    }}
    est = np.clip(0.6 * rates + 0.4 * smooth(spikes, 8.0), 1e-6, None)
    sub = {"mc_maze": {
        "train_rates_heldin": est[tr, main, :n_in], "train_rates_heldout": est[tr, main, n_in:],
        "eval_rates_heldin": est[ev, main, :n_in], "eval_rates_heldout": est[ev, main, n_in:],
        "eval_rates_heldin_forward": est[ev, fwd, :n_in], "eval_rates_heldout_forward": est[ev, fwd, n_in:],
    }}
    return target, sub


def run(which: str, target: Path, sub: Path, out: Path) -> float:
    """Seconds for a fresh interpreter to import the evaluator, score the files and dump the results."""
    code = (f"import json, logging; logging.disable(logging.WARNING); {RUNNERS[which]}; "
            f"r = evaluate({str(target)!r}, {str(sub)!r}); "
            f"json.dump([{{k: {{m: float(x) for m, x in v.items()}} for k, v in d.items()}} for d in r], "
            f"open({str(out)!r}, 'w'))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=600, help="train trials (default 600)")
    ap.add_argument("--eval", type=int, default=150, help="eval trials (default 150)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each evaluator; the median is reported")
    args = ap.parse_args()
    from nlb_suite.h5io import save_h5
    from nlb_suite.submission import write_submission

    target, sub = build(args.train, args.eval)
    with tempfile.TemporaryDirectory() as d:
        tp, sp = Path(d) / "target.h5", Path(d) / "sub.h5"
        save_h5(target, tp)
        write_submission(sub, sp)
        times, results = {}, {}
        for i in range(args.repeats):
            for which in RUNNERS:  # interleaved, so both see the same machine load
                out = Path(d) / f"{which}.json"
                times.setdefault(which, []).append(run(which, tp, sp, out))
                results[which] = json.loads(out.read_text())
                print(f"run {i + 1}: {which:9s} {times[which][-1]:7.2f} s", flush=True)
    med = {k: float(np.median(v)) for k, v in times.items()}
    a, b = results["nlb_tools"][0]["mc_maze_split"], results["nlb_suite"][0]["mc_maze_split"]
    diff = max(abs(a[m] - b[m]) for m in a)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"target: mc_maze 5 ms, {args.train} train + {args.eval} eval trials, 137+45 units, 140+40 bins")
    print(f"metrics (nlb_suite): {b}")
    print(f"max |difference| vs nlb_tools: {diff:.2e}")
    print(f"median whole-process time: nlb_tools {med['nlb_tools']:.2f} s, nlb_suite {med['nlb_suite']:.2f} s, "
          f"speed-up {med['nlb_tools'] / med['nlb_suite']:.1f}x")


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_evaluate.py")
