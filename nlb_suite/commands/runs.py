"""Run commands: run a baseline, compare runs, and the main job (`demo`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..table import print_table

METRIC_ORDER = ("co-bps", "vel R2", "psth R2", "fp-bps", "tp corr")
DEMO_DATASET = "mc_maze_small"


def _fmt(value, interval=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.4f}"
    if interval:
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return text


def comparison_rows(records) -> tuple[list[str], list[list[str]]]:
    """Table of every metric per run (with intervals), best co-bps first; % of ceiling when an oracle ran."""
    metric_names = [m for m in METRIC_ORDER if any(r.metrics and m in r.metrics for r in records)]
    ceiling = next((r.metrics.get("co-bps") for r in records if r.info["baseline"] == "oracle" and r.metrics), None)
    headers = ["run", "baseline", "dataset", "bin"] + metric_names
    if ceiling:
        headers.append("co-bps % of ceiling")
    ordered = sorted(records, key=lambda r: -(r.metrics or {}).get("co-bps", -math.inf))
    rows = []
    for r in ordered:
        m, iv = r.metrics or {}, r.intervals or {}
        row = [r.path.name, r.info["baseline"], r.info["dataset"], f"{r.info['bin_ms']} ms"]
        row += [_fmt(m.get(k), iv.get(k)) for k in metric_names]
        if ceiling:
            row.append(f"{100 * m['co-bps'] / ceiling:.1f}%" if "co-bps" in m else "-")
        rows.append(row)
    return headers, rows


def _cmd_run(args: argparse.Namespace) -> int:
    from ..baseline_api import parse_overrides
    from ..runs import RunSpec, execute

    spec = RunSpec(baseline=args.baseline, dataset=args.dataset, bin_ms=args.bin, phase=args.phase,
                   data=Path(args.data) if args.data else None, synthetic=args.synthetic,
                   out=Path(args.out) if args.out else None, seed=args.seed, device=args.device,
                   overrides=parse_overrides(args.set or []), profile=args.profile, ci=args.ci)
    result = execute(spec)
    t = result.timings
    print(f"run folder: {result.run_dir}")
    print(f"time: tensors {t['tensors_s']:.1f} s, fit {t['fit_s']:.1f} s, predict {t['predict_s']:.1f} s")
    if result.metrics:
        print_table(["metric", "value", "95% interval"],
                    [[k, f"{v:.4f}", _fmt(None) if not result.intervals else
                      "[{:.4f}, {:.4f}]".format(*result.intervals.get(k, [math.nan, math.nan]))]
                     for k, v in result.metrics.items()])
    else:
        print("phase test: no local target; submission.h5 is ready to package")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..runs import read_run

    records = [read_run(p) for p in args.runs]
    groups: dict[tuple, list] = {}
    for r in records:
        groups.setdefault((r.info["dataset"], r.info["bin_ms"], r.info["phase"]), []).append(r)
    for (dataset, bin_ms, phase), recs in groups.items():
        if len(groups) > 1:
            print(f"\n{dataset}, {bin_ms} ms, phase {phase}")
        if not any(r.metrics for r in recs):
            print("no metrics (phase test runs have no local target)")
        headers, rows = comparison_rows(recs)
        print_table(headers, rows)
    return 0


def run_main_job(out: Path, dataset: str = DEMO_DATASET, seed: int = 0, package_to: Path | None = None) -> int:
    """Every registered baseline (fast profile) on the synthetic default, compared with the ceiling,
    with an HTML report and the best model packaged for upload."""
    from ..baseline_api import available_baselines, config_profiles, get_baseline
    from ..cli import main as cli_main
    from ..runs import RunSpec, execute, read_run

    records = []
    for name in available_baselines():
        profile = "fast" if "fast" in config_profiles(get_baseline(name), dataset, 5) else None
        print(f"\n== {name} on synthetic {dataset} (5 ms, phase val, {profile or 'default'} profile)")
        result = execute(RunSpec(baseline=name, dataset=dataset, synthetic=True, out=out / name, seed=seed,
                                 profile=profile))
        t = result.timings
        print(f"   fit {t['fit_s']:.1f} s, predict {t['predict_s']:.1f} s, co-bps {result.metrics['co-bps']:.4f}")
        records.append(read_run(result.run_dir))
    print(f"\nSynthetic {dataset}, 5 ms, phase val (95% bootstrap intervals over eval trials)")
    headers, rows = comparison_rows(records)
    print_table(headers, rows)
    from ..report import build_report

    report = build_report([r.path for r in records], out / "report.html",
                          title=f"Baselines on synthetic {dataset}")
    print(f"\ncomparison report (open in a browser): {report}")
    best = max((r for r in records if r.info["baseline"] != "oracle" and r.metrics),
               key=lambda r: r.metrics["co-bps"], default=None)
    if best is not None and package_to is not None:
        print(f"\npackaging the best model ({best.info['baseline']}) for phase val:")
        return cli_main(["package", str(best.path), "--out", str(package_to), "--phase", "val", "--force"])
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    return run_main_job(out, args.dataset, args.seed, Path(args.package))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a baseline on a dataset: tensors -> fit -> rates -> submission -> scores")
    p.add_argument("baseline", help="baseline name (see `nlb-eval list baselines`)")
    p.add_argument("--dataset", required=True, help="dataset name (see `nlb-eval list datasets`)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder with the dataset's NWB files")
    src.add_argument("--synthetic", action="store_true", help="use the synthetic stand-in (generated and cached)")
    p.add_argument("--bin", type=int, default=5, help="bin width in ms: 5 or 20 (default 5)")
    p.add_argument("--phase", choices=["val", "test"], default="val")
    p.add_argument("--out", help="run folder (default runs/<dataset>_<bin>ms_<phase>_<baseline>_s<seed>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    p.add_argument("--profile", help="a named profile of the default config, e.g. fast; none: the published "
                   "settings (default: the device's profile, e.g. cpu, where the config has one)")
    p.add_argument("--ci", type=int, default=200, help="bootstrap resamples for intervals (0: none)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compare", help="one table of all metrics of several runs, best first")
    p.add_argument("runs", nargs="+", help="run folders")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("demo", help="the main job: every baseline on the synthetic default, with the ceiling")
    p.add_argument("--dataset", default=DEMO_DATASET, help=f"synthetic dataset (default {DEMO_DATASET})")
    p.add_argument("--out", default="runs/demo", help="run folders go here (default runs/demo)")
    p.add_argument("--package", default=f"submissions/demo_{DEMO_DATASET}.h5",
                   help="where to package the best model's submission")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
