"""NDT's speed claim side by side: inference latency and throughput, and training throughput, NDT vs LFADS.

The NDT paper (Ye & Pandarinath 2021) reports 3.9 ms inference per trial and more than 6x faster inference
than recurrent models (LFADS) on the monkey reaching data (GPU). Here every model of `--models` is built from
its config for the dataset (`--configs`: "default" = what a run on this device resolves to, i.e. the CPU
profile; "none" = the published top level; or a profile name), trained on random Poisson data of the
dataset's shape for `--warmup` + `--epochs` epochs (no early stopping), then timed in one process:

- latency at batch 1: `predict` on one trial per call (median of `--latency-trials` calls after a warm-up);
- throughput at batch 64: `predict` on 64 trials with predict_batch 64 (median of `--repeats`), trials/s;
- training throughput: train trials x timed epochs / the sum of the trainer's `train_s` (optimiser steps only).

All `predict` timings are end to end (host arrays in, rates out). Threads: `--threads` (1 = the configs'
`cpu_threads` default on shared cores). Each timing is taken twice: wall clock and this process's CPU time
(`time.process_time`); on a shared, loaded machine the CPU times are the ones to compare (with one thread
they do not grow with the load), and the speed-ups are computed from them. Training CPU time is per whole
epoch (optimiser steps + validation), from the trainer's `on_epoch` hook.

    .venv/bin/python benchmarks/bench_ndt_speed.py --dataset mc_maze_small --configs default,none --epochs 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_lfads_speed import random_trials  # noqa: E402

from nlb_suite.baseline_api import TrialSet  # noqa: E402
from nlb_suite.table import print_table  # noqa: E402

BATCH = 64


def sizes(name: str, cfg) -> str:
    if name == "lfads":
        return f"gen {cfg.gen_dim}, fac {cfg.fac_dim}, ic_enc {cfg.ic_enc_dim}, con {cfg.con_dim}"
    width = f"width {cfg.model_dim}" if cfg.model_dim else "width = neurons"
    return f"{cfg.n_layers} layers, {width}, FFN {cfg.ffn_dim}, ctx {cfg.context_backward}/{cfg.context_forward}"


def run_model(name: str, config: str, args, trials: TrialSet, device: str) -> dict:
    from nlb_suite.baseline_api import RunContext, get_baseline, resolve_config

    total = args.warmup + args.epochs
    cls = get_baseline(name)
    overrides = {"max_epochs": total, "patience": total + 1, "cpu_threads": args.threads, "predict_batch": BATCH}
    if name != "lfads":  # NDT's mc_maze_small cpu profile refits: time the one fit that validates each epoch
        overrides["refit"] = False
    if name != "lfads":
        overrides["warmup_epochs"] = 0
    profile = None if config == "default" else config
    cfg, sources = resolve_config(cls, args.dataset, 5, overrides, profile=profile, device=device)
    n, _, n_in = trials.spikes_heldin.shape
    ctx = RunContext.for_trials(args.dataset, 5, trials, seed=args.seed, device=device, extras={"progress": False})
    epoch_cpu: list[float] = [time.process_time()]
    ctx.extras["on_epoch"] = lambda epoch, row: epoch_cpu.append(time.process_time())
    model = cls(cfg, ctx)
    epoch_cpu[0] = time.process_time()
    model.fit(trials)
    if len(model.curves) != total:
        raise RuntimeError(f"{name}/{config}: trained {len(model.curves)} epochs, expected {total}")
    n_train = n - len(model.validation_trials())
    timed = sum(row["train_s"] for row in model.curves[args.warmup:])
    timed_cpu = epoch_cpu[-1] - epoch_cpu[args.warmup]

    def subset(i: int, k: int) -> TrialSet:
        return TrialSet("eval", trials.spikes_heldin[i:i + k], trials.trial_ids[i:i + k], trials.bins[i:i + k],
                        trials.forward_bins[i:i + k])
    singles = [subset(i % n, 1) for i in range(args.latency_trials)]
    model.predict(singles[0])
    one, one_cpu = [], []
    for ts in singles:
        t0, c0 = time.perf_counter(), time.process_time()
        model.predict(ts)
        one.append(time.perf_counter() - t0)
        one_cpu.append(time.process_time() - c0)
    batch = subset(0, min(BATCH, n))
    model.predict(batch)
    many, many_cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        model.predict(batch)
        many.append(time.perf_counter() - t0)
        many_cpu.append(time.process_time() - c0)
    return {"model": name, "config": config, "sizes": sizes(name, cfg), "batch_size": cfg.batch_size,
            "train_trials_per_s": n_train * args.epochs / timed, "ms_trial_b1": 1000 * statistics.median(one),
            "trials_per_s_b64": batch.n_trials / statistics.median(many),
            "ms_trial_b64": 1000 * statistics.median(many) / batch.n_trials,
            "train_trials_per_cpu_s": n_train * args.epochs / timed_cpu,
            "cpu_ms_trial_b1": 1000 * statistics.median(one_cpu),
            "cpu_ms_trial_b64": 1000 * statistics.median(many_cpu) / batch.n_trials,
            "sources": " <- ".join(s for s in sources[1:] if not s.startswith("--set")) or "class defaults"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze_small", help="shapes (units, bins, forward bins) of this dataset")
    ap.add_argument("--trials", type=int, default=None, help="trials (default: the dataset's train+val count)")
    ap.add_argument("--models", default="ndt,stndt,lfads")
    ap.add_argument("--configs", default="default,none", help="default (the device's profile), none, or profiles")
    ap.add_argument("--epochs", type=int, default=2, help="timed training epochs")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    ap.add_argument("--latency-trials", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = ap.parse_args()

    import torch

    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.runs import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    n = args.trials or get_dataset(args.dataset).n_train_val
    trials = random_trials(args.dataset, n, args.seed)
    _, t, n_in = trials.spikes_heldin.shape
    print(f"{args.dataset} shapes, random Poisson: {n} trials x {t} bins (+{trials.forward_bins.shape[1]} forward), "
          f"{n_in} held-in + {trials.spikes_heldout.shape[2]} held-out units; device {device}, {args.threads} "
          f"thread(s), torch {torch.__version__}; {args.warmup} warm-up + {args.epochs} timed epochs")
    results = []
    for config in args.configs.split(","):
        for name in args.models.split(","):
            print(f"  {name} / {config} ...", file=sys.stderr, flush=True)
            results.append(run_model(name.strip(), config.strip(), args, trials, device))
    print_table(["model", "config", "sizes", "batch", "train trials/s", "train trials/CPU-s", "ms/trial b=1",
                 "CPU ms/trial b=1", "trials/s b=64", "CPU ms/trial b=64"],
                [[r["model"], r["config"], r["sizes"], r["batch_size"], r["train_trials_per_s"],
                  r["train_trials_per_cpu_s"], r["ms_trial_b1"], r["cpu_ms_trial_b1"], r["trials_per_s_b64"],
                  r["cpu_ms_trial_b64"]] for r in results])
    print("\nspeed-up over LFADS of the same config, from CPU times (the paper, GPU: 3.9 ms per trial, > 6x faster "
          "than recurrent models):")
    rows = []
    for config in args.configs.split(","):
        ref = next((r for r in results if r["model"] == "lfads" and r["config"] == config), None)
        if ref is None:
            continue
        for r in results:
            if r["config"] == config and r["model"] != "lfads":
                rows.append([r["model"], config, ref["cpu_ms_trial_b1"] / r["cpu_ms_trial_b1"],
                             ref["cpu_ms_trial_b64"] / r["cpu_ms_trial_b64"],
                             r["train_trials_per_cpu_s"] / ref["train_trials_per_cpu_s"]])
    print_table(["model", "config", "speed-up b=1", "speed-up b=64", "training speed-up"], rows)
    for r in results:
        print(f"{r['model']} / {r['config']}: {r['sources']}")


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_ndt_speed.py")
