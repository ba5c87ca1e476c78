"""`nlb-eval synth`: write a synthetic dataset in the exact NLB NWB layout (owned by the generator)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..table import print_table


def is_synthetic_folder(path: Path) -> bool:
    """A folder `nlb-eval synth` wrote: its ground truth and NWB files, nothing else (never a real download,
    which has no ground_truth.h5)."""
    from ..datasets.truth import TRUTH_FILE

    truth = path / TRUTH_FILE
    return truth.is_file() and all(p == truth or p.is_dir() or p.suffix == ".nwb" for p in path.rglob("*"))


def _cmd_synth(args: argparse.Namespace) -> int:

    from ..datasets.synthetic import write_synthetic  # heavy imports (pynwb) only when used
    from ..errors import check_seed
    from ..outputs import claim_output, discard_temp_dir, make_temp_dir, replace_folder

    check_seed(args.seed)
    out = Path(args.out)
    replacing = claim_output(out, "--out", "synthetic dataset folder", is_synthetic_folder, args.overwrite)
    work = make_temp_dir(out)  # written whole, then renamed: never a half-written dataset or a mix of two
    try:
        ds = write_synthetic(args.name, work, seed=args.seed, trials=args.trials,
                             quirks=not args.no_quirks, progress=True)
        replace_folder(work, out, replacing)
    except BaseException:
        discard_temp_dir(work)
        raise
    rows = []
    for kind, path in (("train", ds.train_file), ("test", ds.test_file)):
        st = ds.stats[kind]
        splits = "/".join(str(st["trials"][s]) for s in ("train", "val", "test", "none"))
        rows.append([kind, str(path.relative_to(ds.path)), splits, st["units"], f"{st['duration_s']:.1f}",
                     st["gaps"], f"{st['rate_hz']:.2f}"])
    print(f"synthetic {ds.spec.name} (seed {ds.seed}, quirks {'on' if ds.quirks else 'off'}) -> {out}")
    print_table(["file", "path", "trials train/val/test/none", "units", "duration s", "obs gaps",
                 "mean rate Hz"], rows)
    print(f"ground truth: {ds.ground_truth.relative_to(ds.path)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `synth NAME --out DIR [--seed N] [--trials N] [--no-quirks] [--overwrite]`."""
    p = sub.add_parser("synth", help="write a synthetic dataset (NWB files + ground truth)")
    p.add_argument("name", help="dataset name, e.g. mc_maze_small (see `list datasets`)")
    p.add_argument("--out", required=True, help="output folder (DANDI-style layout)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same arrays)")
    p.add_argument("--trials", type=int, default=None, help="train+val trials (default: a fast demo size)")
    p.add_argument("--no-quirks", action="store_true", help="leave out the awkward cases (gaps, off-grid times)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier `synth` output at --out")
    p.set_defaults(func=_cmd_synth)
