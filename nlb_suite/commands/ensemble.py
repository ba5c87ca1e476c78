"""`nlb-eval ensemble`: average the rates of several runs into a new run folder, chosen on internal validation."""

from __future__ import annotations

import argparse

from ..table import print_table


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from ..ensemble import build_ensemble

    out, sel, metrics = build_ensemble(args.runs, args.out, size=args.size, data=args.data, ci=args.ci,
                                       seed=args.seed, overwrite=args.overwrite, min_size=args.min_size,
                                       max_size=args.max_size)
    print("runs ranked by their own internal-validation co-bps (never the eval trials; a refit run: its selection "
          "fit's):")
    print_table(["rank", "run", "baseline", "seed", "validation co-bps", "in ensemble"],
                [[i + 1, str(m.path), m.record.info.get("baseline"), m.record.info.get("seed"),
                  f"{m.score:.4f}" + (" (selection fit)" if m.refit else ""), "yes" if i < sel.size else "no"]
                 for i, m in enumerate(sel.ranked)])
    if sel.table:
        print(f"\nco-bps of the average of the top k on the {len(sel.shared_ids)} validation trials all runs held back:")
        print_table(["k", "validation co-bps", "chosen"], [[r["k"], f"{r['co-bps']:.4f}", "yes" if r["k"] == sel.size
                                                            else ""] for r in sel.table])
    print(f"\nensemble of {sel.size} runs ({sel.rule})\nrun folder: {out}")
    if metrics:
        print_table(["metric", "value"], [[k, f"{v:.4f}"] for k, v in metrics.items()])
    else:
        print("phase test: no local target; submission.h5 is ready to package")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ensemble", help="average the rates of several runs of one dataset/bin/phase into a new run "
                       "folder; members and size chosen on the runs' internal validation split")
    p.add_argument("runs", nargs="+", help="run folders (same dataset, bin, phase and data), each with an internal "
                   "validation score in run.json (ndt, stndt, lfads runs; a refit run is ranked by its selection "
                   "fit's and needs --size)")
    p.add_argument("--out", required=True, help="the ensemble's run folder")
    p.add_argument("--size", type=int, help="average the top SIZE runs by validation co-bps (default: the size with "
                   "the best validation co-bps on the validation trials all runs share)")
    p.add_argument("--min-size", type=int, help="the smallest ensemble the validation choice may pick (default 1)")
    p.add_argument("--max-size", type=int, help="the largest ensemble the validation choice may pick (default: all runs)")
    p.add_argument("--data", help="the runs' data folder, if it moved (checked against run.json's checksums)")
    p.add_argument("--ci", type=int, default=200, help="bootstrap resamples for intervals (0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it is a previous run folder (never any other folder)")
    p.set_defaults(func=_cmd_ensemble)
