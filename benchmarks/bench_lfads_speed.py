"""LFADS speed: training throughput (train trials per second) and inference latency per trial.

For each config, resolved by `resolve_config` from the dataset's LFADS YAML ("default": what a run on
this device gets without --profile, i.e. the YAML's device profile if it has one, else its published top
level; "none": the top level; any other name: that profile, e.g. "fast"; `--set key=value` overrides
apply to all), LFADS is trained on random Poisson data of the dataset's shape (train+val trials x bins x
held-in / held-out units, plus forward bins) for `--warmup` + `--epochs` epochs without early stopping.
The throughput covers the timed epochs only (those after the warm-up epochs): train trials per epoch
(those left after the config's validation split) x timed epochs / the sum of their `train_s` in the
trainer's curves (the seconds of one optimiser pass over the train trials; validation, checkpointing and
setup are not included; with CUDA the loss read-out each step synchronises). Inference: `predict` on one
trial at a time (batch 1, median over `--latency-trials` calls after a warm-up call) and on all trials at
the config's `predict_batch` (median of `--repeats`), both end to end (host arrays in, rates out). On
CUDA, LFADS uses bf16 autocast by itself; timings include synchronisation (rates come back to the host).

    .venv/bin/python benchmarks/bench_lfads_speed.py --dataset mc_maze_small --epochs 1 --warmup 1 --threads 1 --device cpu

(a smoke test only: timings on the shared, busy 2-core VM mean little.) Example GPU run:
    python benchmarks/bench_lfads_speed.py --dataset mc_maze --trials 2295 --epochs 3 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from lfads_bench_common import WORK, log, write_curves  # noqa: E402

from nlb_suite.baseline_api import TrialSet  # noqa: E402
from nlb_suite.table import print_table  # noqa: E402


def random_trials(dataset: str, n: int, seed: int, bin_ms: int = 5) -> TrialSet:
    """Poisson spikes with per-neuron rates (5-50 Hz-ish) in the dataset's shape, as a train TrialSet."""
    from nlb_suite.datasets.specs import get_dataset

    spec = get_dataset(dataset)
    t, f = spec.n_bins(bin_ms), spec.fp_bins(bin_ms)
    rng = np.random.default_rng(seed)
    rate_in = rng.gamma(2.0, 0.05, size=spec.n_heldin)
    rate_out = rng.gamma(2.0, 0.05, size=spec.n_heldout)

    def counts(steps: int, rates: np.ndarray) -> np.ndarray:
        return rng.poisson(rates, size=(n, steps, len(rates))).astype(np.float32)

    bins = np.arange(n * (t + f)).reshape(n, t + f)
    return TrialSet(split="train", spikes_heldin=counts(t, rate_in), trial_ids=np.arange(n), bins=bins[:, :t],
                    forward_bins=bins[:, t:], spikes_heldout=counts(t, rate_out),
                    spikes_heldin_forward=counts(f, rate_in), spikes_heldout_forward=counts(f, rate_out))


def n_train_trials(n: int, valid_frac: float) -> int:
    """Train trials per epoch after the validation split (LFADSBaseline's documented rule)."""
    return n - min(max(1, int(round(valid_frac * n))), n - 1)


def run_config(name: str, args, trials: TrialSet, device: str) -> dict:
    from baselines.lfads import LFADSBaseline
    from nlb_suite.baseline_api import RunContext, get_baseline, parse_overrides, resolve_config

    total = args.warmup + args.epochs
    overrides = {**parse_overrides(args.set), "max_epochs": total, "patience": total + 1, "sv_early_stop": False,
                 "cpu_threads": args.threads}
    profile = None if name == "default" else name  # default: what a run on this device resolves to
    cfg, sources = resolve_config(get_baseline("lfads"), args.dataset, 5, overrides, profile=profile, device=device)
    n, _, n_in = trials.spikes_heldin.shape
    ctx = RunContext.for_trials(args.dataset, 5, trials, seed=args.seed, device=device, extras={"progress": False})
    model = LFADSBaseline(cfg, ctx)
    start = time.perf_counter()
    model.fit(trials)
    fit_s = time.perf_counter() - start
    n_train = n_train_trials(n, cfg.valid_frac)
    if len(model.curves) != total:  # patience > max_epochs: cannot stop early
        raise RuntimeError(f"{name}: trained {len(model.curves)} epochs, expected {total}")
    timed = sum(row["train_s"] for row in model.curves[args.warmup:])
    # inference: batch 1 (one trial per call), then all trials at the configured predict_batch
    k = min(args.latency_trials, n)
    singles = [TrialSet("eval", trials.spikes_heldin[i:i + 1], trials.trial_ids[i:i + 1], trials.bins[i:i + 1],
                        trials.forward_bins[i:i + 1]) for i in range(k)]
    model.predict(singles[0])
    one = []
    for ts in singles:
        t0 = time.perf_counter()
        model.predict(ts)
        one.append(time.perf_counter() - t0)
    evals = TrialSet("eval", trials.spikes_heldin, trials.trial_ids, trials.bins, trials.forward_bins)
    model.predict(evals)
    batched = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.predict(evals)
        batched.append(time.perf_counter() - t0)
    return {"config": name, "device": device, "threads": args.threads if device == "cpu" else "-",
            "train_trials_per_s": n_train * args.epochs / timed, "s_per_epoch": timed / args.epochs,
            "ms_trial_batch1": 1000 * statistics.median(one),
            "ms_trial_batched": 1000 * statistics.median(batched) / n, "predict_batch": cfg.predict_batch,
            "batch_size": cfg.batch_size, "n_train": n_train, "fit_s": fit_s,
            "sources": " <- ".join(src for src in sources[1:] if not src.startswith("--set")) or "class defaults",
            "sizes": f"{cfg.ic_enc_dim}/{cfg.ci_enc_dim}/{cfg.con_dim}/{cfg.co_dim}/{cfg.ic_dim}/{cfg.gen_dim}/"
                     f"{cfg.fac_dim}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze_small", help="shapes (units, bins, forward bins) of this dataset")
    ap.add_argument("--trials", type=int, default=None, help="trials (default: the dataset's train+val count)")
    ap.add_argument("--configs", default="fast,default", help="comma-separated: default and/or profile names")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="LFADSConfig overrides for all")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed epochs first (0: the first, cold epoch is timed too)")
    ap.add_argument("--latency-trials", type=int, default=20, help="batch-1 predict calls to time")
    ap.add_argument("--repeats", type=int, default=3, help="batched predict repeats")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--out", default=str(WORK / "lfads_speed"), help="folder for results.csv")
    args = ap.parse_args()
    if args.epochs < 1 or args.warmup < 0:
        ap.error("--epochs must be >= 1 and --warmup >= 0")

    import torch

    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.runs import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    n = args.trials or get_dataset(args.dataset).n_train_val
    trials = random_trials(args.dataset, n, args.seed)
    _, t, n_in = trials.spikes_heldin.shape
    gpu = f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""
    print(f"{args.dataset} shapes, random Poisson: {n} trials x {t} bins (+{trials.forward_bins.shape[1]} forward), "
          f"{n_in} held-in + {trials.spikes_heldout.shape[2]} held-out units; device {device}{gpu}, torch "
          f"{torch.__version__}, {args.warmup} warm-up + {args.epochs} timed epochs")
    results = []
    for name in args.configs.split(","):
        log(f"{name}: training {args.warmup + args.epochs} epochs on {device} ...")
        results.append(run_config(name.strip(), args, trials, device))
    headers = ["config", "sizes", "batch", "device", "threads", "train trials/s", "s/epoch", "ms/trial b=1",
               "ms/trial batched", "predict batch"]
    print_table(headers, [[r["config"], r["sizes"], r["batch_size"], r["device"], r["threads"],
                           r["train_trials_per_s"], r["s_per_epoch"], r["ms_trial_batch1"], r["ms_trial_batched"],
                           r["predict_batch"]] for r in results])
    print("sizes: ic_enc/ci_enc/con/co/ic/gen/fac; train trials/s over the timed epochs "
          f"({results[0]['n_train']} train trials per epoch after the validation split; optimiser steps only, from "
          "the curves' train_s)")
    for r in results:
        print(f"{r['config']}: {r['sources']}")
    write_curves(Path(args.out) / "results.csv", results)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_lfads_speed.py")
