"""Sweep commands (optional extra `sweep`, Ray Tune): `sweep` (random search / PBT of one baseline), `replay`
(a sweep's chosen model trained anew from its lineage, without Ray) and `run-all` (every dataset x bin width
as Ray tasks, packaged into one submission)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..table import print_table, short
from .runs import add_data_arguments

ADDRESS_HELP = ("where Ray runs: local (a private instance on this machine, the default), auto ($RAY_ADDRESS or "
                "the cluster `ray start --head` started here) or HOST:PORT of a cluster's head")


def _bins(text: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of bin widths, e.g. 5,20") from None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ..baseline_api import parse_overrides
    from ..sweep.lineage import stretches
    from ..sweep.search import SweepSpec, run_sweep

    spec = SweepSpec(baseline=args.baseline, dataset=args.dataset, out=Path(args.out), search=args.search,
                     samples=args.samples, bin_ms=args.bin, phase=args.phase,
                     data=Path(args.data) if args.data else None, synthetic=args.synthetic,
                     space_file=Path(args.space) if args.space else None, address=args.address,
                     cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, resume=args.resume,
                     overwrite=args.overwrite, seed=args.seed, device=args.device,
                     overrides=parse_overrides(args.set or []), profile=args.profile,
                     config_file=Path(args.config) if args.config else None, ci=args.ci, num_cpus=args.num_cpus)
    result = run_sweep(spec)
    names = list(result.rows[0].config) if result.rows else []
    ranked = sorted(result.rows, key=lambda r: (math.isnan(r.valid_best), r.valid_best))
    print(f"\ntrials, best {result.monitor} (internal validation) first:")
    print_table(["trial", "status", *names, f"{result.monitor} best", "best epoch", "epochs", "fit s"],
                [[r.trial, r.status, *(short(r.config[n]) for n in names), f"{r.valid_best:.6g}", r.best_epoch,
                  r.epochs, f"{r.fit_s:.0f}"] for r in ranked])
    if not result.complete:
        return 130
    out = result.out
    print(f"\nchosen on internal validation: trial {result.best.trial}; its config: {out / 'best_config.yaml'}")
    if len(result.lineage) > 1:  # PBT: the chosen model's values changed along its lineage
        print("its lineage (the values each stretch of its epochs trained with):")
        print_table(["epochs", "trial", *names], [[epochs, trial, *(short(values.get(n)) for n in names)]
                                                  for epochs, trial, values in stretches(result.lineage,
                                                                                          result.best.epochs)])
    if result.metrics:
        print("eval-trial metrics of the chosen model (reported after the choice, never used for it):")
        print_table(["metric", "value"], [[k, v] for k, v in result.metrics.items()])
    print(f"run folder of the chosen model (for compare, report, package): {out / 'best_run'}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from ..sweep.replay import ReplaySpec, replay
    from ..sweep.search import BEST_RUN

    spec = ReplaySpec(sweepdir=Path(args.sweepdir), out=Path(args.out), seed=args.seed,
                      data=Path(args.data) if args.data else None, threads=args.threads, ci=args.ci,
                      overwrite=args.overwrite)
    result = replay(spec)
    if result.run.metrics:
        print("eval-trial metrics of the replayed model:")
        print_table(["metric", "value"], [[k, v] for k, v in result.run.metrics.items()])
    if result.same_rates is not None:
        note = ""
        if not result.same_rates and result.seed == result.sweep_seed:
            note = (" (same schedule and seed: another machine or library build, --portable-kernels, another "
                    "--threads or other data round differently)")
        elif result.seed != result.sweep_seed:
            note = f" (seed {result.seed}, the sweep's was {result.sweep_seed})"
        print(f"rates identical to {Path(args.sweepdir) / BEST_RUN}'s: {'yes' if result.same_rates else 'no'}{note}")
    else:
        print(f"{Path(args.sweepdir) / BEST_RUN} has no readable submission: not compared")
    print(f"run folder of the replayed model (for compare, report, package): {result.run.run_dir}")
    return 0


def _cmd_run_all(args: argparse.Namespace) -> int:
    from ..baseline_api import parse_overrides
    from ..sweep.run_all import RunAllSpec, run_all

    spec = RunAllSpec(baseline=args.baseline, out=Path(args.out), phase=args.phase,
                      data_root=Path(args.data_root) if args.data_root else None, synthetic=args.synthetic,
                      bins=args.bins, datasets=args.datasets, address=args.address,
                      cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run, seed=args.seed,
                      device=args.device, overrides=parse_overrides(args.set or []), profile=args.profile, ci=args.ci,
                      num_cpus=args.num_cpus)
    _, package_rc = run_all(spec)
    return 1 if package_rc is None else package_rc


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default="local", help=ADDRESS_HELP)
    p.add_argument("--seed", type=int, default=0,
                   help="model seed of every run or trial; a sweep's draws too (random search's samples, PBT's "
                        "perturbations and donors)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    p.add_argument("--profile", help="a named profile of the default config (default: the device's, e.g. cpu)")
    p.add_argument("--ci", type=int, default=200, help="bootstrap resamples for the run folders' intervals")
    p.add_argument("--num-cpus", type=int, default=None, metavar="N",
                   help="CPUs a local Ray may use (default: all of this machine's); with --cpus-per-trial/-run 1 "
                        "it caps how many train at once")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sweep and run-all commands."""
    p = sub.add_parser("sweep", help="hyperparameter search of a baseline on Ray Tune (random search or PBT), "
                       "chosen on internal validation only")
    p.add_argument("baseline", help="baseline name (a neural one: it must train through the shared Trainer)")
    add_data_arguments(p)
    p.add_argument("--search", choices=["random", "pbt"], default="random",
                   help="random search, or population-based training (AutoLFADS)")
    p.add_argument("--samples", type=int, default=8, help="trials (PBT: the population size); default 8")
    p.add_argument("--space", metavar="FILE.yaml",
                   help="search space (default: configs/<baseline>/search_space.yaml next to the baseline)")
    p.add_argument("--config", metavar="FILE.yaml", help="config fields from this YAML instead of the dataset's default")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPUs per trial, fractions share one (e.g. 0.25); > 0 trains on CUDA")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --out")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it is an earlier sweep folder")
    p.add_argument("--out", required=True, metavar="SWEEPDIR", help="the sweep's folder")
    _common(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("replay", help="a sweep's chosen model trained anew from its first epoch without Ray, "
                       "following its lineage (PBT's schedule of values)")
    p.add_argument("sweepdir", help="a finished sweep's folder (SWEEPDIR of `nlb-eval sweep`)")
    p.add_argument("--out", required=True, metavar="RUNDIR", help="the replayed model's run folder")
    p.add_argument("--seed", type=int, default=None,
                   help="model seed (default: the sweep's, which gives the sweep's model again; another seed "
                        "replays the schedule from another initialisation and, unless valid_seed fixes it, validation split)")
    p.add_argument("--data", help="the dataset's folder (default: the sweep's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the sweep's per trial); the "
                   "device is the trials' (it picks the config's profile too)")
    p.add_argument("--ci", type=int, default=200, help="bootstrap resamples for the run folder's intervals")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it is an earlier run folder")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("run-all", help="a baseline on every dataset x bin width as Ray tasks (resumable), "
                       "packaged into one validated submission")
    p.add_argument("baseline", help="baseline name (see `nlb-eval list baselines`)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data-root", help="folder holding each dataset (as `nlb-eval download` lays them out, "
                     "or DIR/<dataset>)")
    src.add_argument("--synthetic", action="store_true", help="the synthetic stand-ins (generated and cached)")
    p.add_argument("--phase", choices=["val", "test"], required=True,
                   help="test: train on train+val, the leaderboard's phase; val: scored locally")
    p.add_argument("--bins", type=_bins, default=[5, 20], help="bin widths, comma-separated (default 5,20)")
    p.add_argument("--datasets", type=_names, default=None, help="comma-separated dataset names (default: all 7)")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs Ray reserves per run (default 1)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run (> 0 trains on CUDA)")
    p.add_argument("--out", required=True, help="the batch's folder (rerun the command on it to continue)")
    _common(p)
    p.set_defaults(func=_cmd_run_all)
