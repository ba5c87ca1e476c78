"""Benchmark: our batched GPFA EM against elephant's GPFA on the same spike counts, side by side.

Both fit the same train held-in spikes (synthetic mc_maze, 5 ms bins) with the same x_dim, EM iteration
budget, 20-bin training segments, tau_init 100 ms and eps 1e-3. Reported: seconds per EM iteration, total
fit (FA init + EM), latent inference of all trials, and the data log-likelihood of each fitted model,
both evaluated by one function on the same data (sqrt counts, as elephant models them: the training
segments and the whole trials).

    pip install -e .[bench]     # elephant (benchmark only)
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_gpfa.py --trials 362 --x-dim 20 --iters 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from baselines.gpfa_core import GPFAParams, fit_em, infer_means, log_likelihood, segments

WORK = Path(__file__).resolve().parent / "_work"


def spikes(trials: int, bin_ms: int) -> np.ndarray:
    """Train held-in spike counts (n, T, units) of a synthetic mc_maze with `trials` train+val trials."""
    from nlb_suite.datasets.synthetic_cache import cached_synthetic
    from nlb_suite.datasets.tensors import load

    folder = cached_synthetic(WORK / "synthetic", "mc_maze", seed=0, trials=trials)  # keyed by generator digest
    tensors = load("mc_maze", folder, bin_ms, "test", include_psth=False)
    return tensors.train_spikes_heldin.astype(np.float64)


def to_spiketrains(counts: np.ndarray, bin_ms: int) -> list:
    """(n, T, units) counts -> per trial, one neo.SpikeTrain per unit with spikes at bin starts."""
    import neo
    import quantities as pq

    n, t, q = counts.shape
    out = []
    for trial in counts:
        trains = []
        for unit in range(q):
            times = np.repeat(np.arange(t), trial[:, unit].astype(int)) * bin_ms
            trains.append(neo.SpikeTrain(times * pq.ms, t_stop=t * bin_ms * pq.ms))
        out.append(trains)
    return out


def run_elephant(counts: np.ndarray, bin_ms: int, x_dim: int, iters: int) -> dict:
    """Fit and transform with elephant; its parameters as GPFAParams."""
    import quantities as pq
    from elephant.gpfa import GPFA

    trains = to_spiketrains(counts, bin_ms)
    model = GPFA(bin_size=bin_ms * pq.ms, x_dim=x_dim, em_max_iters=iters, tau_init=100.0 * pq.ms, eps_init=1e-3)
    tic = time.perf_counter()
    model.fit(trains)
    fit_s = time.perf_counter() - tic
    tic = time.perf_counter()
    model.transform(trains, returned_data=["latent_variable"])
    inf_s = time.perf_counter() - tic
    est = model.params_estimated
    params = GPFAParams(C=est["C"], d=np.ravel(est["d"]), R=np.diag(est["R"]).copy(),
                        gamma=np.ravel(est["gamma"]), eps=np.ravel(est["eps"]))
    its = np.asarray(model.fit_info["iteration_time"])
    return {"params": params, "fit_s": fit_s, "infer_s": inf_s, "iter_s": float(its.mean()), "iters": len(its)}


def run_ours(obs: np.ndarray, bin_ms: int, x_dim: int, iters: int) -> dict:
    """Fit (FA init + batched EM on 20-bin segments of sqrt counts) and infer all whole trials."""
    tic = time.perf_counter()
    res = fit_em(segments(obs, 20), x_dim, em_iters=iters, tau_init_bins=100.0 / bin_ms, eps=1e-3)
    fit_s = time.perf_counter() - tic
    tic = time.perf_counter()
    infer_means(obs, res.params)
    inf_s = time.perf_counter() - tic
    its = np.asarray(res.iteration_times)
    return {"params": res.params, "fit_s": fit_s, "infer_s": inf_s, "iter_s": float(its.mean()), "iters": len(its)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=362, help="synthetic mc_maze train trials (phase test)")
    ap.add_argument("--bin-ms", type=int, default=5)
    ap.add_argument("--x-dim", type=int, default=20)
    ap.add_argument("--iters", type=int, default=20, help="EM iterations for both")
    ap.add_argument("--ours-only", action="store_true", help="skip elephant")
    args = ap.parse_args()

    counts = spikes(args.trials, args.bin_ms)
    n, t, q = counts.shape
    obs = np.sqrt(counts)  # what elephant's GPFA models (get_seqs use_sqrt=True)
    segs = segments(obs, 20)
    print(f"data: synthetic mc_maze train held-in {n} trials x {t} bins x {q} units ({args.bin_ms} ms), "
          f"x_dim {args.x_dim}, {args.iters} EM iterations, {len(segs)} training segments of 20 bins")
    results = {"ours": run_ours(obs, args.bin_ms, args.x_dim, args.iters)}
    if not args.ours_only:
        results["elephant"] = run_elephant(counts, args.bin_ms, args.x_dim, args.iters)
    print(f"{'':10s} {'iters':>5s} {'s/iter':>8s} {'fit s':>8s} {'infer s':>8s} {'LL segments':>14s} {'LL trials':>14s}")
    for name, r in results.items():
        r["ll_seg"] = log_likelihood(segs, r["params"])
        r["ll_trial"] = log_likelihood(obs, r["params"])
        print(f"{name:10s} {r['iters']:5d} {r['iter_s']:8.4f} {r['fit_s']:8.2f} {r['infer_s']:8.2f} "
              f"{r['ll_seg']:14.2f} {r['ll_trial']:14.2f}")
    if "elephant" in results:
        o, e = results["ours"], results["elephant"]
        print(f"speed-up (elephant / ours): per EM iteration {e['iter_s'] / o['iter_s']:.1f}x, "
              f"fit {e['fit_s'] / o['fit_s']:.1f}x, inference {e['infer_s'] / o['infer_s']:.1f}x")
        print(f"LL difference (ours - elephant): segments {o['ll_seg'] - e['ll_seg']:+.2f}, "
              f"trials {o['ll_trial'] - e['ll_trial']:+.2f}")


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_gpfa.py")
