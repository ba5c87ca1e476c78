"""`nlb-eval report`: one self-contained HTML page comparing run folders (optionally Markdown too)."""

from __future__ import annotations

import argparse
from pathlib import Path

HEAD_BYTES = 4096  # the generator marker sits at the top of every file report writes


def is_report_file(path: Path) -> bool:
    """A file `nlb-eval report` wrote: its head carries the report's generator marker."""
    from ..report.html import GENERATOR_META
    from ..report.markdown import GENERATOR_COMMENT

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return False
    return GENERATOR_META in head or head.startswith(GENERATOR_COMMENT)


def _cmd_report(args: argparse.Namespace) -> int:
    from ..outputs import claim_output
    from ..report import build_report

    for flag, path in (("--out", args.out), ("--markdown", args.markdown)):
        if path is not None:
            claim_output(Path(path), flag, "report", is_report_file, args.overwrite, folder=False)
    out = build_report(args.runs, args.out, args.markdown, args.title)
    print(f"report: {out} ({out.stat().st_size / 1e3:.0f} kB)" + (f", {args.markdown}" if args.markdown else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page comparing run folders, grouped by dataset")
    p.add_argument("runs", nargs="+", metavar="RUNDIR", help="run folders from `nlb-eval run`")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--markdown", help="also write the summary tables and provenance as Markdown here")
    p.add_argument("--title", default="NLB baseline comparison", help="page title")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out/--markdown if they are reports written earlier (never other files)")
    p.set_defaults(func=_cmd_report)
