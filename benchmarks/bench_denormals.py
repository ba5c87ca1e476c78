"""Denormal floats on CPU: each torch baseline fitted with and without flush-to-zero, side by side.

    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --baselines ndt,stndt --data-seed 0
    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --baselines lfads,gnocchi --data-seed 0
    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --baselines stndt --dataset mc_maze --trials 2295 \
        --data-seed 9 --set max_epochs=20 --set patience=20 --set span_ramp_start=4 --set span_ramp_end=10

Training pushes weights, activations and optimiser moments into the denormal range (|x| < 1.2e-38), where
x86 arithmetic takes many times longer. `baselines.torch_core.cpu_compute` flushes them to zero during every
fit and prediction; this bench turns that off (`FLUSH_DENORMALS = False`, the behaviour before) for one
arm. Each baseline is fitted twice on the same synthetic stand-in (`bench_realism.stand_in`, phase val,
5 ms, its CPU default config with any `--set` values, model seed 0), in this one process, one after the other: the fit's wall and
CPU seconds, the seconds of its first and last 5 epochs (curves.csv `train_s`), and the eval scores with the
paired bootstrap interval of flush - no flush (flushing changes the tiniest values, so the two fits are
not bit-identical; their scores should tie).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

METRICS = ("co-bps", "vel R2", "psth R2", "fp-bps")
ARMS = ("no flush", "flush")


def epoch_seconds(run_dir: Path) -> tuple[float, float, int]:
    """(mean train_s of the first 5 epochs, of the last 5, number of epochs) from a run's curves.csv."""
    import csv

    with open(run_dir / "curves.csv") as f:
        seconds = [float(row["train_s"]) for row in csv.DictReader(f)]
    return sum(seconds[:5]) / len(seconds[:5]), sum(seconds[-5:]) / len(seconds[-5:]), len(seconds)


def fit_both(baseline: str, dataset: str, data: Path, out: Path, device: str,
             overrides: dict) -> dict[str, dict]:
    """Both arms of one baseline: run folder, metrics and timings per arm."""
    import baselines.torch_core as torch_core
    from nlb_suite.runs import RunSpec, execute

    arms = {}
    for arm in ARMS:
        torch_core.FLUSH_DENORMALS = arm == "flush"
        run_dir = out / f"{baseline}_{arm.replace(' ', '_')}"
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = execute(RunSpec(baseline, dataset, data=data, out=run_dir, seed=0, device=device, ci=0,
                                 overwrite=True, overrides=overrides), progress=False)
        arms[arm] = {"dir": run_dir, "metrics": result.metrics, "wall": time.perf_counter() - wall0,
                     "cpu": time.process_time() - cpu0, "fit": result.timings["fit_s"],
                     "epochs": epoch_seconds(run_dir)}
        print(f"  {baseline} {arm}: fit {result.timings['fit_s']:.0f} s", file=sys.stderr, flush=True)
    torch_core.FLUSH_DENORMALS = True
    return arms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baselines", default="ndt,stndt,lfads,gnocchi")
    ap.add_argument("--dataset", default="mc_maze_small")
    ap.add_argument("--trials", type=int, default=None, help="train+val trials (default: the real count)")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="the flush is a CPU setting; cpu unless you mean otherwise")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config values for every baseline in both arms (e.g. fewer epochs at realistic scale)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()

    from bench_realism import stand_in

    from nlb_suite.baseline_api import parse_overrides
    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.datasets.tensors import load
    from nlb_suite.report.paired import Difference, paired_boot
    from nlb_suite.submission import read_submission
    from nlb_suite.table import print_table

    trials = args.trials or get_dataset(args.dataset).n_train_val
    work = Path(args.work)
    data = stand_in(args.dataset, trials, args.data_seed, work / "realism")
    out = work / "denormals" / f"{args.dataset}_{trials}_s{args.data_seed}"
    target = load(args.dataset, data, bin_ms=5, phase="val").target_dict()

    timing_rows, score_rows = [], []
    for baseline in args.baselines.split(","):
        arms = fit_both(baseline, args.dataset, data, out, args.device, parse_overrides(args.set))
        for arm, r in arms.items():
            first, last, n = r["epochs"]
            timing_rows.append([baseline, arm, str(n), f"{r['fit']:.0f}", f"{r['cpu']:.0f}", f"{first:.2f}",
                                f"{last:.2f}", f"{last / first:.2f}"])
        speedup = arms["no flush"]["fit"] / arms["flush"]["fit"]
        timing_rows.append([baseline, "speed-up", "", f"{speedup:.2f}x", "", "", "", ""])
        boots = paired_boot(target, [read_submission(arms[a]["dir"] / "submission.h5") for a in ARMS],
                            n_boot=args.resamples)
        m = {a: arms[a]["metrics"] for a in ARMS}
        cells = [Difference.paired(m["flush"][k] - m["no flush"][k], boots[1][k], boots[0][k]).text()
                 if k in m["flush"] and k in boots[0] else "-" for k in METRICS]
        score_rows += [[baseline, a, *[f"{m[a][k]:.4f}" if k in m[a] else "-" for k in METRICS]] for a in ARMS]
        score_rows.append([baseline, "flush - no flush", *cells])

    print(f"\nsynthetic {args.dataset}, {trials} train+val trials, data seed {args.data_seed}, 5 ms, phase val; "
          f"CPU default configs{' with ' + ', '.join(args.set) if args.set else ''}, model seed 0; "
          f"device {args.device}")
    print_table(["model", "arm", "epochs", "fit s", "CPU s", "s/epoch first 5", "s/epoch last 5", "last/first"],
                timing_rows)
    print("\neval scores (paired 95% bootstrap interval over eval trials; 'tie' = interval includes 0)")
    print_table(["model", "arm", *METRICS], score_rows)


if __name__ == "__main__":
    main()
