"""Data-layer commands: list, synth, tensors, download, demo."""

from __future__ import annotations

import argparse

from ..datasets.registry import DATASETS
from ..table import print_table


def _cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for spec in DATASETS.values():
        a, b = spec.train_window.offsets or (None, None)
        window = f"{spec.train_window.align_field} {a}..{b}" if a is not None else "-"
        rows.append([
            spec.name, spec.dandi_url, f"{spec.n_heldin}+{spec.n_heldout}",
            f"{spec.n_train_val}/{spec.n_test}", window,
            ",".join(spec.behavior_fields), "-" if spec.lag_ms is None else spec.lag_ms,
            ",".join(spec.psth.cond_fields) if spec.psth else "-",
            spec.psth.kern_sd_ms if spec.psth else "-",
        ])
    print_table(["dataset", "DANDI", "units in+out", "trials trainval/test", "window (ms)", "behavior",
                 "lag ms", "PSTH conditions", "PSTH sd ms"], rows)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered datasets")
    p.add_argument("what", choices=["datasets"], help="what to list")
    p.set_defaults(func=_cmd_list)
