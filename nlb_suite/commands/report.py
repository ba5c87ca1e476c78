"""`nlb-eval report`: one self-contained HTML page comparing run folders (optionally Markdown too)."""

from __future__ import annotations

import argparse


def _cmd_report(args: argparse.Namespace) -> int:
    from ..report import build_report

    out = build_report(args.runs, args.out, args.markdown, args.title)
    print(f"report: {out} ({out.stat().st_size / 1e3:.0f} kB)" + (f", {args.markdown}" if args.markdown else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page comparing run folders, grouped by dataset")
    p.add_argument("runs", nargs="+", metavar="RUNDIR", help="run folders from `nlb-eval run`")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--markdown", help="also write the summary tables and provenance as Markdown here")
    p.add_argument("--title", default="NLB baseline comparison", help="page title")
    p.set_defaults(func=_cmd_report)
