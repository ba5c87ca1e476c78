"""LFADS quality against smoothing, GPFA and the ground-truth ceiling on a synthetic dataset, side by side.

    python benchmarks/bench_lfads_quality.py --dataset mc_maze_small                # CPU default config
    python benchmarks/bench_lfads_quality.py --dataset mc_maze --trials 2295 --lfads-profile cpu_scale

Generates (and caches under benchmarks/_work/) the synthetic dataset with `--trials` train+val trials
(default: the registry's real count), then runs the oracle (true rates: the ceiling), smoothing and GPFA
(their default configs for the device) and LFADS (`--lfads-profile`, default: the device's profile)
through `nlb_suite.runs.execute` (phase val, 5 ms), and prints every metric, each model's share of the
ceiling's co-bps and its fit time. Run folders stay in benchmarks/_work/quality_<dataset>_<trials>/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

METRICS = ("co-bps", "vel R2", "psth R2", "fp-bps")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze_small")
    ap.add_argument("--trials", type=int, default=None, help="train+val trials (default: the real count)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the runs (the data use seed 0)")
    ap.add_argument("--lfads-profile", default=None, help="LFADS config profile (default: the device's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="LFADS config override")
    ap.add_argument("--baselines", default="oracle,smoothing,gpfa,lfads")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()

    from nlb_suite.baseline_api import parse_overrides
    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.datasets.synthetic_cache import cached_synthetic
    from nlb_suite.runs import RunSpec, execute
    from nlb_suite.table import print_table

    trials = args.trials or get_dataset(args.dataset).n_train_val
    data = cached_synthetic(Path(args.work) / "synthetic", args.dataset, seed=0, trials=trials)
    out = Path(args.work) / f"quality_{args.dataset}_{trials}"
    results = {}
    for name in args.baselines.split(","):
        lfads = name == "lfads"
        spec = RunSpec(name, args.dataset, data=data, out=out / name, seed=args.seed, device=args.device, ci=0,
                       overwrite=True,  # its own run folders from an earlier invocation
                       profile=args.lfads_profile if lfads else None,
                       overrides=parse_overrides(args.set) if lfads else {})
        results[name] = execute(spec)
        print(f"{name}: fit {results[name].timings['fit_s']:.0f} s, co-bps {results[name].metrics['co-bps']:.4f}",
              file=sys.stderr)
    ceiling = results["oracle"].metrics["co-bps"] if "oracle" in results else None
    rows = []
    for name, r in results.items():
        m = r.metrics
        row = [name] + [f"{m[k]:.4f}" if k in m else "-" for k in METRICS]
        row += [f"{100 * m['co-bps'] / ceiling:.1f}%" if ceiling else "-", f"{r.timings['fit_s']:.0f}"]
        rows.append(row)
    print(f"\nsynthetic {args.dataset}, {trials} train+val trials, 5 ms, phase val, seed {args.seed}")
    print_table(["model", *METRICS, "co-bps / ceiling", "fit s"], rows)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_lfads_quality.py")
