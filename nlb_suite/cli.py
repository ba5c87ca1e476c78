"""`nlb-eval`: the command line. Each command group lives in its own module under nlb_suite/commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import NLBInputError

# Each module defines `register(subparsers)`, adding its commands with `set_defaults(func=...)`.
COMMAND_MODULES = (
    "nlb_suite.commands.data",
    "nlb_suite.commands.synth",
    "nlb_suite.commands.scoring",
    "nlb_suite.commands.runs",
    "nlb_suite.commands.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlb-eval",
        description="Neural Latents Benchmark toolkit: data, tensors, scoring and submissions.",
    )
    parser.add_argument("--version", action="version", version=f"nlb_suite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print one line on stderr and return exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NLBInputError as exc:
        print(f"nlb-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nlb-eval: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
