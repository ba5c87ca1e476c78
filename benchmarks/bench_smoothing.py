"""Smoothing baseline: nlb_suite (all held-out units in one batched GLM) vs the per-unit scikit-learn recipe.

    python benchmarks/bench_smoothing.py [--trials 800] [--bin 5] [--threads 1]

Generates (and caches under benchmarks/_work/) a synthetic mc_maze, builds the phase-val tensors with
`load`, then on the same tensors times our fit+predict and the published recipe (per-trial np.convolve,
one sklearn PoissonRegressor per held-out unit, max_iter 500 with its retry) and prints both times,
the ratio and both co-bps on the eval held-out spikes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze")
    ap.add_argument("--trials", type=int, default=800, help="train+val trials (phase val trains on 3/4)")
    ap.add_argument("--bin", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads for both (default: as set)")
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()

    import numpy as np

    from baselines.smoothing import SmoothingBaseline
    from nlb_suite.baseline_api import resolve_config
    from nlb_suite.datasets.synthetic_cache import cached_synthetic
    from nlb_suite.datasets.tensors import load
    from nlb_suite.metrics import bits_per_spike
    from support.smoothing_recipe import context_for, sklearn_recipe, trial_sets

    folder = cached_synthetic(Path(args.work) / "synthetic", args.dataset, seed=args.seed, trials=args.trials,
                              progress=True)  # keyed by the generator's digest
    start = time.perf_counter()
    t = load(args.dataset, folder, args.bin, "val")
    print(f"tensors: train {t.train_spikes_heldin.shape[0]} trials x {t.train_spikes_heldin.shape[1]} bins, "
          f"{t.train_spikes_heldin.shape[2]} held-in + {t.train_spikes_heldout.shape[2]} held-out units, "
          f"eval {t.eval_spikes_heldin.shape[0]} trials ({time.perf_counter() - start:.1f} s)", flush=True)
    cfg, _ = resolve_config(SmoothingBaseline, args.dataset, args.bin)
    target = t.target["eval_spikes_heldout"]

    limit = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(args.threads)
    with limit:
        start = time.perf_counter()
        model = SmoothingBaseline(cfg, context_for(t))
        train, evals = trial_sets(t)
        model.fit(train)
        ours = model.predict(evals)
        ours_s = time.perf_counter() - start
        print(f"nlb_suite: {ours_s:.2f} s ({model.glm.n_iter} L-BFGS iterations, "
              f"{int(model.glm.converged.sum())}/{len(model.glm.converged)} units converged)", flush=True)
        start = time.perf_counter()
        _, heldout = sklearn_recipe(t.train_spikes_heldin, t.train_spikes_heldout, t.eval_spikes_heldin,
                                    cfg.kern_sd_ms, cfg.alpha, args.bin, cfg.log_offset)
        theirs_s = time.perf_counter() - start
    bps_ours, bps_theirs = bits_per_spike(ours.heldout, target), bits_per_spike(heldout, target)
    print(f"sklearn recipe: {theirs_s:.2f} s")
    print(f"ratio: {theirs_s / ours_s:.1f}x faster")
    print(f"co-bps: nlb_suite {bps_ours:.5f}, sklearn recipe {bps_theirs:.5f}, "
          f"difference {bps_ours - bps_theirs:+.5f}")
    print(f"held-out rates: max |difference| {np.abs(ours.heldout - heldout).max():.3g} spikes/bin "
          f"(kern_sd {cfg.kern_sd_ms:g} ms, alpha {cfg.alpha:g}, threads {args.threads or 'default'})")


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_smoothing.py")
