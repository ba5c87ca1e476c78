"""`nlb-eval synth`: write a synthetic dataset in the exact NLB NWB layout (owned by the generator)."""

from __future__ import annotations

import argparse

from ..table import print_table


def _cmd_synth(args: argparse.Namespace) -> int:
    from ..datasets.synthetic import write_synthetic  # heavy imports (pynwb) only when used
    from ..outputs import check_folder_out

    check_folder_out(args.out, "--out")
    ds = write_synthetic(args.name, args.out, seed=args.seed, trials=args.trials,
                         quirks=not args.no_quirks, progress=True)
    rows = []
    for kind, path in (("train", ds.train_file), ("test", ds.test_file)):
        st = ds.stats[kind]
        splits = "/".join(str(st["trials"][s]) for s in ("train", "val", "test", "none"))
        rows.append([kind, str(path.relative_to(ds.path)), splits, st["units"], f"{st['duration_s']:.1f}",
                     st["gaps"], f"{st['rate_hz']:.2f}"])
    print(f"synthetic {ds.spec.name} (seed {ds.seed}, quirks {'on' if ds.quirks else 'off'}) -> {ds.path}")
    print_table(["file", "path", "trials train/val/test/none", "units", "duration s", "obs gaps",
                 "mean rate Hz"], rows)
    print(f"ground truth: {ds.ground_truth.relative_to(ds.path)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `synth NAME --out DIR [--seed N] [--trials N] [--no-quirks]`."""
    p = sub.add_parser("synth", help="write a synthetic dataset (NWB files + ground truth)")
    p.add_argument("name", help="dataset name, e.g. mc_maze_small (see `list datasets`)")
    p.add_argument("--out", required=True, help="output folder (DANDI-style layout)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same arrays)")
    p.add_argument("--trials", type=int, default=None, help="train+val trials (default: a fast demo size)")
    p.add_argument("--no-quirks", action="store_true", help="leave out the awkward cases (gaps, off-grid times)")
    p.set_defaults(func=_cmd_synth)
