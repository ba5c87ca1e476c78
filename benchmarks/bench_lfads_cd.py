"""LFADS coordinated dropout (Keshtkaran & Pandarinath 2019): what ordinary validation misses on a small set.

One large LFADS is trained on a small synthetic set twice, without and with coordinated dropout (CD), both
with sample validation (SV: a fixed fraction of held-in input entries withheld from training and scored on
the validation trials). Epoch budget fixed, no early stopping, cosine LR (does not depend on the monitored
metric), so each model follows one trajectory and the selection rules are compared on it:

* ordinary validation: the epoch with the lowest `valid_recon` (held-in reconstruction of validation trials,
  whose own spikes are the input, so a model that copies input spikes to rates keeps improving it);
* sample validation: the epoch with the lowest `valid_sv_nll` (entries the model never saw as input).

The trainer's per-epoch hook (RunContext.extras["on_epoch"], run after each epoch's validation: public
`log_rates` on the eval trials with posterior means, which draws no random numbers, so training is
unchanged) gives eval co-bps / fp-bps and the R^2 / correlation of the inferred rates with the
ground-truth rates at every epoch; the tables read them at the chosen epochs and the last. The restored
model (the trainer keeps the valid_recon-best weights) is checked against the hook's scores at its epoch.
Per-epoch curves + eval metrics go to OUT/s<data seed>/curves_cd<rate>.csv.

With several data seeds a last table gives the paired differences that carry the claim, per seed and on
the mean over seeds, with paired bootstrap intervals over eval trials (each seed's trials resampled on
their own for the mean): CD against no CD, each at the epoch its own validation rule picks.

    .venv/bin/python benchmarks/bench_lfads_cd.py --epochs 60 --seed 0 --trials 100 --data-seeds 0,1,2 --threads 1

(synthetic mc_maze_small, 100 train+val trials -> 75 train / 25 eval; ~4-5 s per epoch per model on the
busy 2-core VM with 1 thread.) Smoke test: --epochs 3.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

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
    oracle_scores,
    paired_differences,
    r2_sums,
    rate_corr,
    rate_r2,
    rates_from_log,
    score_eval,
    seed_columns,
    write_curves,
)

from nlb_suite.table import print_table  # noqa: E402

# The claim's two measures, each kept as per-trial sums for paired intervals: eval co-bps, and the R^2 of the
# inferred held-in rates against the true ones (a model that copies its input spikes scores low here).
CLAIM_MEASURES = (("co-bps", "co_bps", "bps"), ("R2 held-in", "heldin_r2", "r2"))


def eval_scores(data: BenchData, log_rates: np.ndarray) -> dict[str, Any]:
    """Eval-trial scores of log-rates (n, T + F, n_in + n_out), with "sums" of co-bps and held-in R2 for intervals."""
    rates = rates_from_log(log_rates, data.evals)
    s = score_eval(data, rates)
    s["heldin_r2"] = rate_r2(rates.heldin, data.truth_eval.heldin)
    s["heldin_r"] = rate_corr(rates.heldin, data.truth_eval.heldin)
    s["sums"] = {"co_bps": bps_sums(rates.heldout, data.target["eval_spikes_heldout"]),
                 "heldin_r2": r2_sums(rates.heldin, data.truth_eval.heldin)}
    return s


def train_one(data: BenchData, args: argparse.Namespace, cd_rate: float) -> dict:
    """Fit one LFADS scoring the eval trials after every epoch; returns curves merged with those scores."""
    from baselines.lfads import LFADSBaseline

    cfg = lfads_config(args, cd_rate=cd_rate, sv_rate=args.sv_rate, sv_early_stop=False)
    per_epoch: list[dict] = []

    def on_epoch(epoch: int, row: dict) -> None:
        lr = model.log_rates(data.evals).float().cpu().numpy()
        per_epoch.append(eval_scores(data, lr))
        if epoch % max(args.epochs // 10, 1) == 0 or epoch == args.epochs - 1:
            s = per_epoch[-1]
            log(f"  cd {cd_rate:g} epoch {epoch + 1}/{args.epochs} ({time.perf_counter() - start:.0f} s): "
                f"eval co-bps {s['co_bps']:.4f}, held-in rate R2 {s['heldin_r2']:.3f}")

    model = LFADSBaseline(cfg, data.context(args.seed, progress=False, on_epoch=on_epoch))
    start = time.perf_counter()
    model.fit(data.train)
    fit_s = time.perf_counter() - start
    curves = [dict(r) for r in model.curves]
    if len(curves) != len(per_epoch):
        raise RuntimeError(f"the per-epoch hook ran {len(per_epoch)} times for {len(curves)} curve rows: "
                           "the eval scores would be read at the wrong epochs")
    for row, s in zip(curves, per_epoch):  # the hook ran once per curve row, in order
        row.update({f"eval_{k}": v for k, v in s.items() if k != "sums"})
    final = eval_scores(data, model.log_rates(data.evals).float().cpu().numpy())
    return {"cd": cd_rate, "curves": curves, "per_epoch": per_epoch, "final": final, "fit_s": fit_s}


def pick(curves: list[dict], key: str) -> int:
    """First epoch index with the lowest value of `key`."""
    return int(np.argmin([r[key] for r in curves]))


def picks(curves: list[dict], per: list[dict]) -> dict[str, int]:
    """Epoch index chosen by each rule: the two validation rules, the last epoch, and two hindsight picks."""
    return {"valid_recon pick": pick(curves, "valid_recon"), "valid_sv_nll pick": pick(curves, "valid_sv_nll"),
            "last epoch": len(curves) - 1,
            "best held-in R2 (hindsight)": int(np.argmax([s["heldin_r2"] for s in per])),
            "best co-bps (hindsight)": int(np.argmax([s["co_bps"] for s in per]))}


def measure_seed(args: argparse.Namespace, cd_rates: list[float], data_seed: int) -> list[dict]:
    """Train every CD rate on one data seed, print its tables, and return the runs (with "picks")."""
    data = load_synthetic(args.dataset, args.trials, data_seed)
    print(f"\n===== data seed {data_seed} =====")
    print(data.describe())
    out = Path(args.out) / f"s{data_seed}"
    runs = []
    for cd in cd_rates:
        log(f"data seed {data_seed}: training cd_rate {cd:g} ...")
        r = train_one(data, args, cd)
        r["curves_path"] = out / f"curves_cd{cd:g}.csv"
        write_curves(r["curves_path"], r["curves"])
        log(f"  {len(r['curves'])} epochs in {r['fit_s']:.0f} s; curves -> {r['curves_path']}")
        r["picks"] = picks(r["curves"], r["per_epoch"])
        e_rec = r["picks"]["valid_recon pick"]
        r["restore_check"] = max(abs(r["final"][k] - r["per_epoch"][e_rec][k])
                                 for k in ("co_bps", "heldin_r2", "heldout_r2"))
        runs.append(r)
    print_checkpoints(runs, oracle_scores(data))
    print_missed(runs)
    return runs


def print_checkpoints(runs: list[dict], oracle: dict[str, float]) -> None:
    """Each run's scores at every pick, and the true rates' (the ceiling)."""
    headers = ["model", "checkpoint", "epoch", "valid_recon", "valid_sv_nll", "valid_ho_nll", "co-bps", "fp-bps",
               "R2 held-in", "R2 held-out", "r held-in"]
    nan = float("nan")
    rows = []
    for r in runs:
        for label, e in r["picks"].items():
            c, sc = r["curves"][e], r["per_epoch"][e]
            rows.append([f"cd {r['cd']:g}", label, e + 1, c.get("valid_recon", nan), c.get("valid_sv_nll", nan),
                         c.get("valid_heldout_nll", nan), sc["co_bps"], sc.get("fp_bps", nan), sc["heldin_r2"],
                         sc["heldout_r2"], sc["heldin_r"]])
    rows.append(["oracle", "true rates", "-", nan, nan, nan, oracle["co_bps"], oracle.get("fp_bps", nan), 1.0, 1.0, 1.0])
    print("\nPer checkpoint (epochs 1-based; valid_* on the internal validation split of the train trials, "
          "scores on the eval trials; R2/r: inferred vs true rates):")
    print_table(headers, rows)


def print_missed(runs: list[dict]) -> None:
    """What ordinary validation misses after the sample-validation pick, per run, and each fit's checks."""
    print("\nWhat ordinary validation misses (from the SV-picked epoch to the last epoch, and the cost of "
          "picking by valid_recon instead of valid_sv_nll):")
    h2 = ["model", "d valid_recon", "d valid_sv_nll", "d R2 held-in", "d co-bps", "recon kept improving",
          "held-in quality fell", "missed", "pick cost R2 held-in", "pick cost co-bps"]
    rows2 = []
    for r in runs:
        curves, per = r["curves"], r["per_epoch"]
        e_rec, e_sv, last = (r["picks"][k] for k in ("valid_recon pick", "valid_sv_nll pick", "last epoch"))
        d_rec = curves[last]["valid_recon"] - curves[e_sv]["valid_recon"]
        d_sv = curves[last]["valid_sv_nll"] - curves[e_sv]["valid_sv_nll"]
        d_r2 = per[last]["heldin_r2"] - per[e_sv]["heldin_r2"]
        d_co = per[last]["co_bps"] - per[e_sv]["co_bps"]
        improving, fell = d_rec < 0, d_sv > 0 and d_r2 < 0
        rows2.append([f"cd {r['cd']:g}", d_rec, d_sv, d_r2, d_co, "yes" if improving else "no",
                      "yes" if fell else "no", "YES" if improving and fell else "no",
                      per[e_rec]["heldin_r2"] - per[e_sv]["heldin_r2"], per[e_rec]["co_bps"] - per[e_sv]["co_bps"]])
    print_table(h2, rows2)
    print("d X = X(last epoch) - X(valid_sv_nll pick); 'missed' = valid_recon still improved (d < 0) while "
          "valid_sv_nll rose and the held-in rates moved away from the truth; pick cost = score at the "
          "valid_recon pick - score at the valid_sv_nll pick (negative: ordinary validation chose worse).")
    for r in runs:
        curves, per = r["curves"], r["per_epoch"]
        e_sv, last = r["picks"]["valid_sv_nll pick"], r["picks"]["last epoch"]
        rec = [c["valid_recon"] for c in curves]
        svn = [c["valid_sv_nll"] for c in curves]
        after = slice(e_sv, last + 1)
        falls = int(np.sum(np.diff(rec[after]) < 0))
        rises = int(np.sum(np.diff(svn[after]) > 0))
        print(f"cd {r['cd']:g}: after the SV pick (epoch {e_sv + 1}) valid_recon fell on {falls}/{last - e_sv} epochs "
              f"({rec[e_sv]:.5f} -> {rec[last]:.5f}) and valid_sv_nll rose on {rises}/{last - e_sv} "
              f"({svn[e_sv]:.5f} -> {svn[last]:.5f}); held-in rate R2 {per[e_sv]['heldin_r2']:.3f} -> "
              f"{per[last]['heldin_r2']:.3f}, eval co-bps {per[e_sv]['co_bps']:.4f} -> {per[last]['co_bps']:.4f}")
    for r in runs:
        print(f"cd {r['cd']:g}: fit {r['fit_s']:.0f} s; restored model vs the per-epoch hook at its epoch: "
              f"max |score diff| {r['restore_check']:.2g}; curves in {r['curves_path']}")


def contrasts(cd_rates: list[float]) -> list[tuple[str, tuple[float, str], tuple[float, str]]]:
    """The claim's comparisons as (label, (cd rate, pick) of a, (cd rate, pick) of b) for a - b: each CD rate
    against no CD at each model's own valid_recon pick and at its own valid_sv_nll pick, and without CD the
    ordinary-validation pick against the sample-validation pick."""
    if 0.0 not in cd_rates:
        return []
    out = [(f"cd {cd:g} - cd 0, each at its {pk}", (cd, pk), (0.0, pk))
           for cd in cd_rates if cd > 0 for pk in ("valid_recon pick", "valid_sv_nll pick")]
    return out + [("cd 0: valid_recon pick - valid_sv_nll pick", (0.0, "valid_recon pick"), (0.0, "valid_sv_nll pick"))]


def summary_rows(per_seed: dict[int, list[dict]], cd_rates: list[float]) -> list[list[str]]:
    """One row per contrast and measure: the paired difference per data seed and, with several, the mean."""
    rows = []
    for label, a, b in contrasts(cd_rates):
        for measure, key, kind in CLAIM_MEASURES:
            pairs = []
            for runs in per_seed.values():
                by_cd = {r["cd"]: r for r in runs}
                ra, rb = by_cd[a[0]], by_cd[b[0]]
                pairs.append((ra["per_epoch"][ra["picks"][a[1]]]["sums"][key],
                              rb["per_epoch"][rb["picks"][b[1]]]["sums"][key]))
            rows.append([label, measure, *[d.text() for d in paired_differences(pairs, kind)]])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(ap, seed_help="model seed (split, init, masks, batches)")
    ap.add_argument("--epochs", type=int, default=60, help="fixed epoch budget (no early stopping)")
    ap.add_argument("--cd-rates", default="0,0.3", help="comma-separated CD rates to compare")
    ap.add_argument("--sv-rate", type=float, default=0.2)
    add_lfads_args(ap, ic_enc=128, ci_enc=64, con=64, ic=64, gen=128, fac=32, dropout=0.02)
    ap.add_argument("--out", default=str(WORK / "lfads_cd"), help="folder for the per-epoch CSVs")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    seeds = args.data_seeds
    cd_rates = [float(c) for c in args.cd_rates.split(",")]
    if 0.0 not in cd_rates:
        ap.error(f"--cd-rates: include 0, the model without CD that the others are compared with (got {args.cd_rates})")
    print(f"synthetic {args.dataset}, {args.trials} train+val trials, data seeds {','.join(map(str, seeds))}")
    print(describe_lfads(args, f"sv_rate {args.sv_rate}"))
    per_seed = {seed: measure_seed(args, cd_rates, seed) for seed in seeds}
    print("\nPaired differences a - b on the eval trials with 95 % bootstrap intervals (tie: the interval "
          "includes 0); each model at the epoch its validation rule picks on the internal split:")
    print_table(["a - b", "measure", *seed_columns(seeds)], summary_rows(per_seed, cd_rates))


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_lfads_cd.py")
