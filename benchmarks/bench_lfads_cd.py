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
Per-epoch curves + eval metrics go to OUT/curves_cd<rate>.csv.

    .venv/bin/python benchmarks/bench_lfads_cd.py --epochs 60 --seed 0 --trials 100 --threads 1

(synthetic mc_maze_small, 100 train+val trials -> 75 train / 25 eval; ~4-5 s per epoch per model on the
busy 2-core VM with 1 thread.) Smoke test: --epochs 3.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from lfads_bench_common import (  # noqa: E402
    WORK,
    add_data_args,
    add_lfads_args,
    lfads_config,
    load_synthetic,
    log,
    oracle_scores,
    rate_corr,
    rate_r2,
    rates_from_log,
    score_eval,
    write_curves,
)

from nlb_suite.table import print_table  # noqa: E402


def eval_scores(data, log_rates: np.ndarray) -> dict[str, float]:
    """Eval-trial scores of one set of log-rates (n, T + F, n_in + n_out)."""
    rates = rates_from_log(log_rates, data.evals)
    s = score_eval(data, rates)
    s["heldin_r2"] = rate_r2(rates.heldin, data.truth_eval.heldin)
    s["heldin_r"] = rate_corr(rates.heldin, data.truth_eval.heldin)
    return s


def train_one(data, args, cd_rate: float) -> dict:
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
    for row, s in zip(curves, per_epoch):  # the hook ran once per curve row, in order
        row.update({f"eval_{k}": v for k, v in s.items()})
    final = eval_scores(data, model.log_rates(data.evals).float().cpu().numpy())
    return {"cd": cd_rate, "curves": curves, "per_epoch": per_epoch, "final": final, "fit_s": fit_s}


def pick(curves: list[dict], key: str) -> int:
    """First epoch index with the lowest value of `key`."""
    return int(np.argmin([r[key] for r in curves]))


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
    data = load_synthetic(args.dataset, args.trials, args.data_seed)
    print(data.describe())
    print(f"LFADS ic_enc {args.ic_enc}, ci_enc {args.ci_enc}, con {args.con}, co {args.co}, ic {args.ic}, "
          f"gen {args.gen}, fac {args.fac}; sv_rate {args.sv_rate}, {args.epochs} epochs, batch {args.batch_size}, "
          f"lr {args.lr} cosine, dropout {args.dropout}, seed {args.seed}, threads {args.threads}")
    out = Path(args.out)
    runs = []
    for cd in (float(c) for c in args.cd_rates.split(",")):
        log(f"training cd_rate {cd:g} ...")
        r = train_one(data, args, cd)
        path = out / f"curves_cd{cd:g}.csv"
        write_curves(path, r["curves"])
        log(f"  {len(r['curves'])} epochs in {r['fit_s']:.0f} s; curves -> {path}")
        runs.append(r)

    oracle = oracle_scores(data)
    oracle["heldin_r2"], oracle["heldin_r"] = 1.0, 1.0
    headers = ["model", "checkpoint", "epoch", "valid_recon", "valid_sv_nll", "valid_ho_nll", "co-bps", "fp-bps",
               "R2 held-in", "R2 held-out", "r held-in"]
    rows = []

    def row(name: str, label: str, epoch, c: dict, s: dict) -> list:
        nan = float("nan")
        return [name, label, epoch, c.get("valid_recon", nan), c.get("valid_sv_nll", nan),
                c.get("valid_heldout_nll", nan), s["co_bps"], s.get("fp_bps", nan), s["heldin_r2"],
                s["heldout_r2"], s["heldin_r"]]

    summary = []
    for r in runs:
        name, curves, per = f"cd {r['cd']:g}", r["curves"], r["per_epoch"]
        e_rec, e_sv, last = pick(curves, "valid_recon"), pick(curves, "valid_sv_nll"), len(curves) - 1
        e_r2 = int(np.argmax([s["heldin_r2"] for s in per]))
        e_co = int(np.argmax([s["co_bps"] for s in per]))
        for label, e in (("valid_recon pick", e_rec), ("valid_sv_nll pick", e_sv), ("last epoch", last),
                         ("best held-in R2 (hindsight)", e_r2), ("best co-bps (hindsight)", e_co)):
            rows.append(row(name, label, e + 1, curves[e], per[e]))
        diff = max(abs(r["final"][k] - per[e_rec][k]) for k in ("co_bps", "heldin_r2", "heldout_r2"))
        r["restore_check"] = diff
        summary.append((name, curves, per, e_rec, e_sv, last))
    rows.append(["oracle", "true rates", "-", float("nan"), float("nan"), float("nan"), oracle["co_bps"],
                 oracle.get("fp_bps", float("nan")), 1.0, 1.0, 1.0])
    print("\nPer checkpoint (epochs 1-based; valid_* on the internal validation split of the train trials, "
          "scores on the eval trials; R2/r: inferred vs true rates):")
    print_table(headers, rows)

    print("\nWhat ordinary validation misses (from the SV-picked epoch to the last epoch, and the cost of "
          "picking by valid_recon instead of valid_sv_nll):")
    h2 = ["model", "d valid_recon", "d valid_sv_nll", "d R2 held-in", "d co-bps", "recon kept improving",
          "held-in quality fell", "missed", "pick cost R2 held-in", "pick cost co-bps"]
    rows2 = []
    for name, curves, per, e_rec, e_sv, last in summary:
        d_rec = curves[last]["valid_recon"] - curves[e_sv]["valid_recon"]
        d_sv = curves[last]["valid_sv_nll"] - curves[e_sv]["valid_sv_nll"]
        d_r2 = per[last]["heldin_r2"] - per[e_sv]["heldin_r2"]
        d_co = per[last]["co_bps"] - per[e_sv]["co_bps"]
        improving, fell = d_rec < 0, d_sv > 0 and d_r2 < 0
        rows2.append([name, d_rec, d_sv, d_r2, d_co, "yes" if improving else "no", "yes" if fell else "no",
                      "YES" if improving and fell else "no",
                      per[e_rec]["heldin_r2"] - per[e_sv]["heldin_r2"], per[e_rec]["co_bps"] - per[e_sv]["co_bps"]])
    print_table(h2, rows2)
    print("d X = X(last epoch) - X(valid_sv_nll pick); 'missed' = valid_recon still improved (d < 0) while "
          "valid_sv_nll rose and the held-in rates moved away from the truth; pick cost = score at the "
          "valid_recon pick - score at the valid_sv_nll pick (negative: ordinary validation chose worse).")
    for name, curves, per, _, e_sv, last in summary:
        rec = [c["valid_recon"] for c in curves]
        svn = [c["valid_sv_nll"] for c in curves]
        after = slice(e_sv, last + 1)
        falls = int(np.sum(np.diff(rec[after]) < 0))
        rises = int(np.sum(np.diff(svn[after]) > 0))
        print(f"{name}: after the SV pick (epoch {e_sv + 1}) valid_recon fell on {falls}/{last - e_sv} epochs "
              f"({rec[e_sv]:.5f} -> {rec[last]:.5f}) and valid_sv_nll rose on {rises}/{last - e_sv} "
              f"({svn[e_sv]:.5f} -> {svn[last]:.5f}); held-in rate R2 {per[e_sv]['heldin_r2']:.3f} -> "
              f"{per[last]['heldin_r2']:.3f}, eval co-bps {per[e_sv]['co_bps']:.4f} -> {per[last]['co_bps']:.4f}")
    for r in runs:
        path = out / f"curves_cd{r['cd']:g}.csv"
        print(f"cd {r['cd']:g}: fit {r['fit_s']:.0f} s; restored model vs the per-epoch hook at its epoch: "
              f"max |score diff| {r['restore_check']:.2g}; curves in {path}")


if __name__ == "__main__":
    main()
