"""Early-stopping patience replayed on finished runs: would a shorter patience keep the same checkpoint?

    python benchmarks/bench_patience.py --patience 20,30,40 RUN_DIR [RUN_DIR ...]

Every torch baseline (`baselines.torch_core`) keeps the weights of the epoch with the lowest monitored
validation value and stops once `patience` epochs pass without a new lowest one. Training up to a stop is
the same computation whatever the patience (the stop only cuts epochs off the end), so a run's curves.csv
says exactly what a shorter patience would have done: the epoch it stops after and whether the kept epoch
is the one the full run kept (then the fitted model, its predictions and its scores are identical). Read
from each run: the per-epoch values of `--monitor` (valid_nll: what NDT and STNDT stop on) and train
seconds. Nothing is refitted; validation trials only, never eval trials.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

def read_curves(run_dir: Path, monitor: str) -> tuple[list[float], list[float]]:
    """(the monitor's per-epoch values, per-epoch train seconds) from a run's curves.csv."""
    with open(run_dir / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or monitor not in rows[0]:
        raise SystemExit(f"{run_dir / 'curves.csv'}: no column {monitor!r} (or no epochs)")
    return [float(r[monitor]) for r in rows], [float(r["train_s"]) for r in rows]


def replay(values: list[float], patience: int) -> tuple[int, int]:
    """(kept epoch, last epoch trained), 0-based, under torch_core's rule: keep a strictly lower value, stop
    once `epoch - kept >= patience` (or at the end of the curve)."""
    best, kept = float("inf"), -1
    for epoch, v in enumerate(values):
        if v < best or kept < 0:
            best, kept = v, epoch
        if epoch - kept >= patience:
            return kept, epoch
    return kept, len(values) - 1


def main() -> None:
    from nlb_suite.table import print_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished run folders (with curves.csv)")
    ap.add_argument("--patience", default="20,30,40", help="comma-separated patiences to replay")
    ap.add_argument("--monitor", default="valid_nll", help="the curves.csv column the baseline stops on")
    args = ap.parse_args()
    patiences = [int(p) for p in args.patience.split(",")]
    rows = []
    for run in args.runs:
        values, seconds = read_curves(run, args.monitor)
        kept_full, last_full = replay(values, len(values))
        for p in patiences:
            kept, last = replay(values, p)
            saved = sum(seconds[last + 1:])
            rows.append([str(run), f"{kept_full + 1}/{last_full + 1}", str(p), f"{kept + 1}/{last + 1}",
                         "same" if kept == kept_full else f"other ({values[kept] - values[kept_full]:+.5f})",
                         f"{last_full - last}", f"{saved:.0f}", f"{saved / sum(seconds):.0%}"])
    print_table(["run", "kept/trained", "patience", "kept/trained then", "checkpoint",
                 "epochs saved", "train s saved", "share"], rows)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_patience.py")
