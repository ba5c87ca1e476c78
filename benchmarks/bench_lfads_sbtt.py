"""LFADS with selective backpropagation through time (SBTT; Zhu et al. 2021): training on sparse held-in data.

For each missing fraction p, every held-in entry (trial, bin, neuron) of the train trials is dropped (NaN)
independently with probability p, so the observed neurons change from bin to bin; the eval trials' held-in
input is masked by the same rule. LFADS zeroes NaN inputs and leaves them out of the loss. The masks are
nested (one uniform draw per entry, missing where it is < p), so a larger p hides a superset of entries.
Reported per p, on the eval trials: co-bps / fp-bps (held-out neurons, nlb_suite metrics), and on the
MISSING held-in entries (the inferred samples the model never saw): bits/spike against the real spikes
there and the R^2 of inferred vs true rates there, each with the fully observed (p = 0) model scored on
the same entries and the ratio to it; the oracle (true rates) gives the bits/spike ceiling. A second table
does the same for the missing entries of the train trials. With several data seeds a last table gives,
per p, the paired differences to the fully observed model with bootstrap intervals over eval trials, per
seed and on the mean over seeds (each seed's trials resampled on their own).

    .venv/bin/python benchmarks/bench_lfads_sbtt.py --epochs 50 --seed 0 --trials 100 --p 0,0.5,0.8 --data-seeds 0,1,2 --threads 1

(synthetic mc_maze_small, 100 train+val trials -> 75 train / 25 eval; ~2.5 s per epoch per model, ~7 min
in all on the busy 2-core VM with 1 thread.) Smoke test: --epochs 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from lfads_bench_common import (  # noqa: E402
    WORK,
    BenchData,
    add_data_args,
    add_lfads_args,
    bps_sums,
    describe_lfads,
    lfads_config,
    load_synthetic,
    log,
    masked_bps,
    paired_differences,
    r2_sums,
    rate_r2,
    score_eval,
    seed_columns,
    write_curves,
)

from nlb_suite.baseline_api import TrialSet  # noqa: E402
from nlb_suite.table import print_table  # noqa: E402

DASH = "-"


def ratio(a: float, b: float) -> float:
    return a / b if b != 0 and np.isfinite(a) and np.isfinite(b) else float("nan")


def fit_predict(data: BenchData, args: argparse.Namespace, train_in: TrialSet, eval_in: TrialSet) -> dict:
    """Fit LFADS on masked train trials; predict train and eval rates from their masked held-in input."""
    from baselines.lfads import LFADSBaseline

    cfg = lfads_config(args, cd_rate=args.cd_rate, sv_rate=0.0, patience=args.patience or args.epochs + 1)
    model = LFADSBaseline(cfg, data.context(args.seed, progress=False))
    start = time.perf_counter()
    model.fit(train_in)
    fit_s = time.perf_counter() - start
    return {"train": model.predict(train_in), "eval": model.predict(eval_in), "curves": model.curves,
            "fit_s": fit_s}


def measure_seed(args: argparse.Namespace, ps: list[float], data_seed: int) -> dict:
    """Fit every missing fraction on one data seed, print its tables, and return `hidden_entry_pairs` of the fits."""
    data = load_synthetic(args.dataset, args.trials, data_seed)
    print(f"\n===== data seed {data_seed} =====")
    print(data.describe())
    rng = np.random.default_rng(args.seed)
    u_train = rng.random(data.train.spikes_heldin.shape)
    u_eval = rng.random(data.evals.spikes_heldin.shape)
    out = Path(args.out) / f"s{data_seed}"
    res = {}
    for p in ps:
        miss_tr, miss_ev = u_train < p, u_eval < p
        train_in = dataclasses.replace(data.train, spikes_heldin=np.where(miss_tr, np.nan, data.train.spikes_heldin)
                                       .astype(np.float32))
        eval_in = dataclasses.replace(data.evals, spikes_heldin=np.where(miss_ev, np.nan, data.evals.spikes_heldin)
                                      .astype(np.float32))
        log(f"data seed {data_seed}, p = {p:g}: {miss_tr.mean():.3f} of train and {miss_ev.mean():.3f} of eval "
            "held-in entries missing; training ...")
        r = fit_predict(data, args, train_in, eval_in)
        r.update(miss_tr=miss_tr, miss_ev=miss_ev, scores=score_eval(data, r["eval"]))
        write_curves(out / f"curves_p{p:g}.csv", r["curves"])
        log(f"  {len(r['curves'])} epochs in {r['fit_s']:.0f} s; eval co-bps {r['scores']['co_bps']:.4f}")
        res[p] = r
    print_seed_tables(data, res)
    print(f"curves in {out}/curves_p<p>.csv")
    return hidden_entry_pairs(data, res)


def print_seed_tables(data: BenchData, res: dict[float, dict]) -> None:
    """Per p: eval co-bps / fp-bps and the hidden entries' scores beside the full model's; then the train trials'."""
    full = res[0.0]
    spikes_ev, spikes_tr = data.evals.spikes_heldin, data.train.spikes_heldin
    truth_ev, truth_tr = data.truth_eval.heldin, data.truth_train.heldin
    h1 = ["p missing", "missing", "co-bps", "co ratio", "fp-bps", "miss bps", "full bps", "bps ratio",
          "oracle bps", "miss R2", "full R2", "R2 ratio", "fit s"]
    h2 = ["p missing", "missing", "miss bps", "full bps", "bps ratio", "oracle bps", "miss R2", "full R2",
          "R2 ratio"]
    rows1, rows2 = [], []
    for p, r in res.items():
        s = r["scores"]
        head = [f"{p:g}", f"{r['miss_ev'].mean():.3f}", s["co_bps"], ratio(s["co_bps"], full["scores"]["co_bps"]),
                s.get("fp_bps", float("nan"))]
        if p == 0:
            rows1.append(head + [DASH] * 7 + [int(round(r["fit_s"]))])
            rows2.append([f"{p:g}", f"{r['miss_tr'].mean():.3f}"] + [DASH] * 7)
            continue
        for rows, miss, spikes, truth, pred, ref, lead in (
                (rows1, r["miss_ev"], spikes_ev, truth_ev, r["eval"], full["eval"], head),
                (rows2, r["miss_tr"], spikes_tr, truth_tr, r["train"], full["train"],
                 [f"{p:g}", f"{r['miss_tr'].mean():.3f}"])):
            bps = masked_bps(pred.heldin, spikes, miss)
            bps_full = masked_bps(ref.heldin, spikes, miss)
            bps_oracle = masked_bps(np.maximum(truth, 1e-9), spikes, miss)
            r2 = rate_r2(pred.heldin, truth, miss)
            r2_full = rate_r2(ref.heldin, truth, miss)
            cells = [bps, bps_full, ratio(bps, bps_full), bps_oracle, r2, r2_full, ratio(r2, r2_full)]
            rows.append(lead + cells + ([int(round(r["fit_s"]))] if rows is rows1 else []))
    print("\nEval trials: co-bps/fp-bps on held-out neurons; miss = held-in entries hidden from the input "
          "(bits/spike vs the real spikes there, rate R2 vs the true rates there); full = the p = 0 model on "
          "the same entries (it saw them); ratio = model / full:")
    print_table(h1, rows1)
    print("\nTrain trials, missing held-in entries (never in the input nor in the loss):")
    print_table(h2, rows2)


def hidden_entry_pairs(data: BenchData, res: dict[float, dict]) -> dict[float, dict[str, tuple]]:
    """Per p > 0 and measure: (kind, p model's sums, p = 0 model's sums) on the same eval entries, for intervals."""
    full = res[0.0]["eval"]
    held_out, spikes, truth = data.target["eval_spikes_heldout"], data.evals.spikes_heldin, data.truth_eval.heldin
    pairs = {}
    for p, r in res.items():
        if p == 0:
            continue
        pred, miss = r["eval"], r["miss_ev"]
        pairs[p] = {"co-bps": ("bps", bps_sums(pred.heldout, held_out), bps_sums(full.heldout, held_out)),
                    "miss bps": ("bps", bps_sums(pred.heldin, spikes, miss), bps_sums(full.heldin, spikes, miss)),
                    "miss R2": ("r2", r2_sums(pred.heldin, truth, miss), r2_sums(full.heldin, truth, miss))}
    return pairs


def summary_rows(per_seed: dict[int, dict]) -> list[list[str]]:
    """Per p and measure: the p model minus the p = 0 model on the same eval entries, per data seed, then the mean."""
    rows = []
    first = next(iter(per_seed.values()))
    for p, measures in first.items():
        for measure, (kind, _, _) in measures.items():
            pairs = [seed_pairs[p][measure][1:] for seed_pairs in per_seed.values()]
            rows.append([f"{p:g} - 0", measure, *[d.text() for d in paired_differences(pairs, kind)]])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(ap, seed_help="seed of the missing-entry masks and of the models")
    ap.add_argument("--p", default="0,0.5,0.8", help="comma-separated missing fractions (0 is always added)")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--patience", type=int, default=0, help="early-stopping patience (0: none)")
    add_lfads_args(ap, ic_enc=64, ci_enc=32, con=32, ic=32, gen=64, fac=16, dropout=0.05, cd_rate=0.3)
    ap.add_argument("--out", default=str(WORK / "lfads_sbtt"), help="folder for the training curves")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    ps = sorted({0.0} | {float(p) for p in args.p.split(",")})
    if not all(0 <= p < 1 for p in ps):
        ap.error("--p: fractions must be in [0, 1)")
    seeds = args.data_seeds
    print(f"synthetic {args.dataset}, {args.trials} train+val trials, data seeds {','.join(map(str, seeds))}")
    print(describe_lfads(args, f"cd_rate {args.cd_rate}"))
    per_seed = {seed: measure_seed(args, ps, seed) for seed in seeds}
    if len(ps) > 1:
        print("\nThe p model minus the fully observed (p = 0) model on the same eval entries, with 95 % paired "
              "bootstrap intervals over eval trials (tie: the interval includes 0). miss: the held-in entries "
              "the p model never saw (the p = 0 model saw them):")
        print_table(["p", "measure", *seed_columns(seeds)], summary_rows(per_seed))


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_lfads_sbtt.py")
