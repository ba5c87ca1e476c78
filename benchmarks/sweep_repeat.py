"""Did two runs of one sweep command give the same sweep? Compares two sweep folders field by field.

    python benchmarks/sweep_repeat.py SWEEPDIR_A SWEEPDIR_B

Compares what the seed fixes and leaves out what the wall clock moves: every trial's row of trials.csv
(its values, best validation score and epoch, epochs run; not `fit_s`), the chosen trial and its lineage
(which trial trained which stretch with which values), and the bytes of best_run's submission. Ray names
trials with a random prefix per experiment (`fe875_00003`), so trials are matched by their index. Prints one
table and the first difference of each kind; exit code 1 when anything differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlb_suite.sweep.search import trial_index  # noqa: E402

TIME_FIELDS = ("fit_s",)


def trial_table(sweep: Path) -> dict[int, dict[str, str]]:
    """trials.csv as {trial index: row without the trial id and the time fields}."""
    with open(sweep / "trials.csv", newline="") as f:
        return {trial_index(row.pop("trial")): {k: v for k, v in row.items() if k not in TIME_FIELDS}
                for row in csv.DictReader(f)}


def choice(sweep: Path) -> dict:
    """The chosen trial and its lineage, trial ids reduced to their index."""
    info = json.loads((sweep / "sweep.json").read_text())
    if "best" not in info:
        raise SystemExit(f"{sweep / 'sweep.json'}: no best trial (state {info.get('state')!r}); compare finished sweeps")
    best = info["best"]
    lineage = [{**stretch, "trial": trial_index(stretch["trial"])} for stretch in best.get("lineage") or []]
    return {"trial": trial_index(best["trial"]), "valid_best": best["valid_best"], "lineage": lineage}


def first_difference(a: dict, b: dict) -> str:
    """The first key (in a's order, then b's extras) whose values differ, with both values; '' when equal."""
    for key in [*a, *(k for k in b if k not in a)]:
        if a.get(key) != b.get(key):
            return f"{key}: {a.get(key)!r} vs {b.get(key)!r}"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="a sweep folder (holds sweep.json, trials.csv, best_run/)")
    ap.add_argument("b", type=Path)
    args = ap.parse_args()
    from nlb_suite.h5io import sha256_file
    from nlb_suite.table import print_table

    ta, tb = trial_table(args.a), trial_table(args.b)
    differing = [i for i in sorted(set(ta) | set(tb)) if ta.get(i) != tb.get(i)]
    ca, cb = choice(args.a), choice(args.b)
    lineage_diff = next((f"stretch {n}: {first_difference(x, y)}" for n, (x, y) in
                         enumerate(zip(ca["lineage"], cb["lineage"])) if x != y), "")
    if not lineage_diff and len(ca["lineage"]) != len(cb["lineage"]):
        lineage_diff = f"{len(ca['lineage'])} vs {len(cb['lineage'])} stretches"
    subs = [sha256_file(folder / "best_run" / "submission.h5") for folder in (args.a, args.b)]
    rows = [
        ["trials (values, valid_best, best_epoch, epochs, status)", f"{len(ta)} / {len(tb)}",
         "identical" if not differing else f"{len(differing)} differ; first trial {differing[0]}: "
         + first_difference(ta.get(differing[0], {}), tb.get(differing[0], {}))],
        ["chosen trial and its validation score", f"{ca['trial']} {ca['valid_best']:.6f} / "
         f"{cb['trial']} {cb['valid_best']:.6f}",
         "identical" if (ca["trial"], ca["valid_best"]) == (cb["trial"], cb["valid_best"]) else "differ"],
        ["chosen lineage (trial, from_epoch, values per stretch)", f"{len(ca['lineage'])} / {len(cb['lineage'])}",
         lineage_diff or "identical"],
        ["best_run/submission.h5 sha256", f"{subs[0][:12]} / {subs[1][:12]}",
         "identical" if subs[0] == subs[1] else "differ"],
    ]
    print(f"sweep A: {args.a}\nsweep B: {args.b}")
    print_table(["compared", "A / B", "result"], rows)
    sys.exit(0 if all(row[2] == "identical" for row in rows) else 1)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "sweep_repeat.py")
