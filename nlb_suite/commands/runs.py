"""Run commands: run a baseline, compare runs, and the main job (`demo`)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..table import print_table

METRIC_ORDER = ("co-bps", "vel R2", "psth R2", "fp-bps", "tp corr")
DEMO_DATASET = "mc_maze_small"
DEMO_REPORT = "report.html"


def _fmt(value, interval=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.4f}"
    if interval:
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return text


def comparison_table(group) -> tuple[list[str], list[list[str]], list[str]]:
    """One group's runs (best co-bps first): every metric with its interval, '*' on the best run and on every
    run tied with it ('* tie'), references and published rows tagged, % of ceiling and gap closed; notes."""
    from ..report.summary import summarize

    s = summarize(group, sort=True)
    role = {"run": "", "reference": "reference", "published": "published, test phase"}
    headers = ["run", "role"] + s.metrics + s.extra_headers
    rows = []
    for r in s.rows:
        cells = []
        for c in r.cells:
            text = c.text() + (f" {c.ci_text()}" if c.ci_text() else "")
            cells.append(text + ((" * tie" if c.tie else " *") if c.best else ""))
        rows.append([r.name, role.get(r.kind, r.kind)] + cells + list(r.extra))
    notes = [n.replace("★", "*") for n in s.notes] + group.notes
    return headers, rows, notes


def print_comparison(group) -> None:
    """The comparison table of one group, its paired differences to the top run, and its notes."""
    from ..report.arm_tables import arm_differences, arm_notes, arm_table
    from ..report.summary import differences

    headers, rows, notes = comparison_table(group)
    print_table(headers, rows)
    d_headers, d_rows = differences(group)
    if d_rows:
        print("\npaired differences to the top run of each metric, value [95% interval] ('tie': includes 0):")
        print_table(d_headers, d_rows)
    arms = arm_table(group)
    if arms[1]:
        print("\narms (one configuration at several model seeds), mean over fits (SD over fits):")
        print_marked(arms, arm_differences(group), "differences to the top arm of each metric, value "
                     "[95% Welch t interval, fits and trials] ('tie': includes 0):")
    for n in notes + arm_notes(group):
        print(f"note: {n}")


def print_marked(table: tuple[list[str], list[list]], differences: tuple[list[str], list[list[str]]],
                 caption: str) -> None:
    """A table of cells with best marks (`ArmCell`, '*'), then, when there are any, the differences to the top
    under their caption."""
    print_table(table[0], [[c.marked("*") for c in r] for r in table[1]])
    if differences[1]:
        print(f"\n{caption}")
        print_table(*differences)


def _cmd_run(args: argparse.Namespace) -> int:
    from ..baseline_api import config_made_elsewhere, parse_overrides
    from ..runs import RunSpec, execute

    elsewhere = config_made_elsewhere(Path(args.config), args.dataset, args.bin) if args.config else None
    if elsewhere:
        print(f"note: --config {args.config} is {elsewhere}; its settings are used for {args.dataset} at "
              f"{args.bin} ms", file=sys.stderr)

    spec = RunSpec(baseline=args.baseline, dataset=args.dataset, bin_ms=args.bin, phase=args.phase,
                   data=Path(args.data) if args.data else None, synthetic=args.synthetic,
                   out=Path(args.out) if args.out else None, seed=args.seed, device=args.device,
                   overrides=parse_overrides(args.set or []), profile=args.profile, ci=args.ci,
                   overwrite=args.overwrite, config_file=Path(args.config) if args.config else None)
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
    if result.truth:
        print_truth(result.truth)
    return 0


def print_truth(truth: dict) -> None:
    """The ground-truth scores of a synthetic run (rate R2, state R2) as a small table."""
    dims = truth.get("latent dims")
    state = "- (the model exposes no latents)" if truth.get("state R2") is None else \
        f"{truth['state R2']:.4f} ({dims} inferred vs {truth.get('true latent dims')} true dims)"
    print("\nground truth (eval trials; state R2: affine map true -> inferred fitted on the train trials):")
    print_table(["metric", "value"], [
        ["rate R2 (all units)", _fmt(truth.get("rate R2"))],
        ["rate R2 held-in / held-out", f"{_fmt(truth.get('rate R2 held-in'))} / {_fmt(truth.get('rate R2 held-out'))}"],
        ["state R2", state]])


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..metrics_evaluate import check_bootstrap
    from ..report.build import gather

    check_bootstrap(args.ci, 0)
    groups = gather(args.runs, n_boot=args.ci)
    for g in groups:
        print(f"\n{g.title}")
        print_comparison(g)
    print_families(groups)
    return 0


def print_families(groups: list) -> None:
    """Each configuration's mean over the data sets of one synthetic generator, with differences to the top whose
    intervals take the sets as the units, and notes on data sets that were not pooled."""
    from ..report.data_sets import family_differences, family_table, find_families

    families, notes = find_families(groups)
    if families or notes:
        print("\nmeans over data sets")
    for f in families:
        print(f"\n{f.title}")
        print_marked(family_table(f), family_differences(f), "differences to the top configuration of each metric, "
                     "mean over data sets [95% t interval over the sets] ('tie': includes 0):")
        for n in f.notes:
            print(f"note: {n}")
    for n in notes:
        print(f"note: {n}")


def is_demo_folder(path: Path) -> bool:
    """A folder `nlb-eval demo` wrote: only run folders (each holding only what its run wrote) and the report."""
    from ..runs import is_own_run_folder

    return all(is_own_run_folder(p) if p.is_dir() else p.name == DEMO_REPORT for p in path.iterdir())


def run_main_job(out: Path, dataset: str = DEMO_DATASET, seed: int = 0, package_to: Path | None = None,
                 overwrite: bool = False) -> int:
    """Every registered baseline (fast profile) on the synthetic default, compared with each other (paired
    differences, ties) and with the references (true rates, true PSTH), with an HTML report and the run with
    the top co-bps packaged for local scoring."""
    from ..baseline_api import available_baselines, config_profiles, get_baseline
    from ..cli import main as cli_main
    from ..datasets.specs import get_dataset
    from ..outputs import claim_output
    from ..runs import RunSpec, execute
    from .scoring import claim_package_out

    claim_output(out, "--out", "demo folder", is_demo_folder, overwrite)  # before minutes of work
    if package_to is not None:
        claim_package_out(package_to, overwrite, "--package")
    run_dirs = []
    for name in available_baselines():
        if name == "true_psth" and get_dataset(dataset).psth is None:
            continue  # no conditions, no condition average
        profile = "fast" if "fast" in config_profiles(get_baseline(name), dataset, 5) else None
        print(f"\n== {name} on synthetic {dataset} (5 ms, phase val, {profile or 'default'} profile)")
        result = execute(RunSpec(baseline=name, dataset=dataset, synthetic=True, out=out / name, seed=seed,
                                 profile=profile, overwrite=overwrite))
        t = result.timings
        print(f"   fit {t['fit_s']:.1f} s, predict {t['predict_s']:.1f} s, co-bps {result.metrics['co-bps']:.4f}")
        run_dirs.append(result.run_dir)
    from ..report import render_report
    from ..report.build import gather

    (group,) = gather(run_dirs)
    print(f"\nSynthetic {dataset}, 5 ms, phase val (95% bootstrap intervals over eval trials)")
    print_comparison(group)
    report = render_report([group], out / DEMO_REPORT, title=f"Baselines on synthetic {dataset}")
    print(f"\ncomparison report (open in a browser): {report}")
    co = group.comparison.get("co-bps")
    if co is None or co.top is None or package_to is None:
        return 0
    best = group.runs[co.top]
    tied = [group.runs[i].label for i in sorted(co.tied) if i != co.top]
    print(f"\npackaging the run with the top co-bps ({best.label})"
          + (f"; tied with {', '.join(tied)} (not resolved by the eval trials)" if tied else "") + ":")
    return cli_main(["package", str(best.record.path), "--out", str(package_to)] + ["--overwrite"] * overwrite)


def _cmd_demo(args: argparse.Namespace) -> int:
    return run_main_job(Path(args.out), args.dataset, args.seed, Path(args.package), args.overwrite)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """--dataset, --data | --synthetic, --bin and --phase: what one run (or one sweep) works on."""
    p.add_argument("--dataset", required=True, help="dataset name (see `nlb-eval list datasets`)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="folder with the dataset's NWB files")
    src.add_argument("--synthetic", action="store_true", help="use the synthetic stand-in (generated and cached)")
    p.add_argument("--bin", type=int, default=5, help="bin width in ms: 5 or 20 (default 5)")
    p.add_argument("--phase", choices=["val", "test"], default="val")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a baseline on a dataset: tensors -> fit -> rates -> submission -> scores")
    p.add_argument("baseline", help="baseline name (see `nlb-eval list baselines`)")
    add_data_arguments(p)
    p.add_argument("--out", help="run folder (default runs/<dataset>_<bin>ms_<phase>_<baseline>_s<seed>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--config", metavar="FILE.yaml", help="config fields from this YAML instead of the dataset's "
                   "default (e.g. a sweep's best_config.yaml, or a run folder: the config it ran with)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    p.add_argument("--profile", help="a named profile of the default config, e.g. fast; none: the published "
                   "settings (default: the device's profile, e.g. cpu, where the config has one)")
    p.add_argument("--ci", type=int, default=200, help="bootstrap resamples for intervals (0: none)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it is a previous run folder (never any other folder)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compare", help="one table of all metrics of several runs, best first, with paired "
                       "differences and ties")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--ci", type=int, default=1000, metavar="N",
                   help="paired bootstrap resamples of the eval trials for differences between runs (default "
                        "1000; 0: no paired intervals, ties judged by overlapping intervals)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("demo", help="the main job: every baseline on the synthetic default, with the ceiling")
    p.add_argument("--dataset", default=DEMO_DATASET, help=f"synthetic dataset (default {DEMO_DATASET})")
    p.add_argument("--out", default="runs/demo", help="run folders go here (default runs/demo)")
    p.add_argument("--package", default=f"submissions/demo_{DEMO_DATASET}.h5",
                   help="where to package the best model's submission")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous demo folder and packaged demo submission (never anything else)")
    p.set_defaults(func=_cmd_demo)
