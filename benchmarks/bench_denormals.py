"""Denormal floats on CPU: each torch baseline fitted with and without flush-to-zero, side by side.

    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --baselines ndt,stndt --data-seed 0
    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --baselines lfads,gnocchi --data-seed 0
    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --baselines stndt --dataset mc_maze --trials 2295 \
        --data-seed 9 --set max_epochs=20 --set patience=20 --set span_ramp_start=4 --set span_ramp_end=10
    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --step-probe RUN_DIR   # a finished ndt/stndt run

Training pushes weights, activations and optimiser moments into the denormal range (|x| < 1.2e-38), where
x86 arithmetic takes many times longer. `baselines.torch_core.cpu_compute` flushes them to zero during every
fit and prediction; this bench turns that off (`FLUSH_DENORMALS = False`, the behaviour before) for one
arm. Each baseline is fitted twice on the same synthetic stand-in (`bench_realism.stand_in`, phase val,
5 ms, its CPU default config with any `--set` values, model seed 0), in this one process, one after the
other. Printed per arm: the fit's wall seconds; the whole run's CPU seconds (fit, prediction and scoring,
so GNOCCHI's sampled prediction puts it above the fit's); the mean seconds of the first and last 5 epochs
(curves.csv `train_s`); the eval scores with the paired bootstrap interval of flush - no flush (flushing
changes the tiniest values, so the two fits are not bit-identical; their scores should tie).
`--step-probe RUN_DIR` times single training steps (CPU time, one thread) of an NDT/STNDT network with a
finished run's trained weights (`<name>_best.pt`: in a `refit: true` run, the selection fit's) and with fresh
ones, flush off and on: the diagnosis in miniature.
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
    try:
        for arm in ARMS:
            torch_core.FLUSH_DENORMALS = arm == "flush"
            run_dir = out / f"{baseline}_{arm.replace(' ', '_')}"
            cpu0 = time.process_time()
            result = execute(RunSpec(baseline, dataset, data=data, out=run_dir, seed=0, device=device, ci=0,
                                     overwrite=True, overrides=overrides), progress=False)
            arms[arm] = {"dir": run_dir, "metrics": result.metrics, "cpu": time.process_time() - cpu0,
                         "fit": result.timings["fit_s"], "epochs": epoch_seconds(run_dir)}
            print(f"  {baseline} {arm}: fit {result.timings['fit_s']:.0f} s", file=sys.stderr, flush=True)
    finally:
        torch_core.FLUSH_DENORMALS = True
    return arms


def step_probe(run_dir: Path, steps: int = 8) -> None:
    """CPU ms per training step (forward, backward, Adam) of a trained vs a fresh NDT/STNDT, flush off / on."""
    import numpy as np
    import torch

    from baselines.ndt import tokens
    from baselines.ndt_model import NDT
    from nlb_suite.baseline_api import get_baseline
    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.runs import read_run
    from nlb_suite.seeding import seed_everything
    from nlb_suite.table import print_table

    record = read_run(run_dir)
    name = record.config["baseline"]
    cfg = get_baseline(name).Config(**record.config["config"])
    state = torch.load(run_dir / f"{name}_best.pt", map_location="cpu", weights_only=True)
    n_neurons, n_steps = state["readout.weight"].shape[0], state["position"].shape[0]
    spec = get_dataset(record.config["dataset"])
    n_fwd = n_steps - int(np.ceil((spec.train_window.offsets[1] - spec.train_window.offsets[0]) / 5))
    heldin = np.random.default_rng(0).poisson(0.05, (cfg.batch_size, n_steps - n_fwd, spec.n_heldin))
    batch = tokens(torch.as_tensor(heldin, dtype=torch.float32), n_neurons, n_fwd)
    torch.set_num_threads(1)
    rows = []
    for weights in ("fresh", "trained"):
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            seed_everything(0)
            model = NDT(cfg.dims(n_neurons, n_steps, name == "stndt"))
            if weights == "trained":
                model.load_state_dict(state)
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            for i in range(steps + 2):  # 2 untimed
                if i == 2:
                    t0 = time.process_time()
                log_rates = model(batch).log_rates
                (log_rates.exp() - batch * log_rates).mean().backward()  # Poisson NLL against the input counts
                opt.step()
                opt.zero_grad()
            rows.append([name, weights, "on" if flush else "off", f"{1000 * (time.process_time() - t0) / steps:.0f}"])
    torch.set_flush_denormal(False)
    print(f"{run_dir}: batch {cfg.batch_size} x {n_steps} steps x {n_neurons} neurons, one thread")
    print_table(["model", "weights", "flush", "CPU ms/step"], rows)


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
    ap.add_argument("--step-probe", metavar="RUN_DIR", help="only time training steps of this ndt/stndt run's network")
    args = ap.parse_args()
    if args.step_probe:
        step_probe(Path(args.step_probe))
        return

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
    tag = "".join(f"_{v.replace('=', '')}" for v in args.set)  # runs with other --set values keep their folders
    out = work / "denormals" / f"{args.dataset}_{trials}_s{args.data_seed}{tag}"
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
    print_table(["model", "arm", "epochs", "fit s", "run CPU s", "s/epoch first 5", "s/epoch last 5", "last/first"],
                timing_rows)
    print("\neval scores (paired 95% bootstrap interval over eval trials; 'tie' = interval includes 0)")
    print_table(["model", "arm", *METRICS], score_rows)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_denormals.py")
