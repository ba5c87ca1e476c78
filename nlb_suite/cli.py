"""`nlb-eval`: the command line. Each command group lives in its own module under nlb_suite/commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .blas_threads import DEFAULT_BLAS_THREADS, blas_threads
from .errors import NLBInputError
from .termination import Terminated, sigterm_raises, stopped

# Each module defines `register(subparsers)`, adding its commands with `set_defaults(func=...)`.
COMMAND_MODULES = (
    "nlb_suite.commands.data",
    "nlb_suite.commands.synth",
    "nlb_suite.commands.scoring",
    "nlb_suite.commands.runs",
    "nlb_suite.commands.report",
    "nlb_suite.commands.sweep",
    "nlb_suite.commands.ensemble",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (exit 2) like every other user error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `nlb-eval` parser with every command module's subcommands."""
    parser = OneLineParser(
        prog="nlb-eval",
        description="Neural Latents Benchmark toolkit: data, tensors, scoring and submissions.",
    )
    parser.add_argument("--version", action="version", version=f"nlb_suite {__version__}")
    parser.add_argument("--portable-kernels", action="store_true",
                        help="hold numpy's, OpenBLAS's and torch's CPU kernels (MKL's, oneDNN's) to AVX2, so an "
                             "AVX-512 machine computes as one without AVX-512 (restarts the command with the "
                             "libraries' kernel variables set)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _hold_portable_kernels(argv: Sequence[str] | None) -> None:
    """`--portable-kernels`: restart the command with the AVX2 kernel variables set (the libraries read them when
    they load), then check that every library loaded so far took them."""
    import os

    from .portable_kernels import applies, check_loaded, restart_with_portable_kernels, variables_text
    from .versions import numpy_dispatch

    if not applies(os.environ):
        if argv is not None:  # called from Python: the libraries are loaded already, and a restart would end it
            raise NLBInputError("--portable-kernels: the kernels are chosen when the libraries load, so it works "
                                f"on the command line only (or set {variables_text(numpy_dispatch()[1])} before "
                                "Python starts)")
        restart_with_portable_kernels()
    check_loaded()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print one line on stderr and return exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_raises():
            if args.portable_kernels:
                _hold_portable_kernels(argv)
            with blas_threads(DEFAULT_BLAS_THREADS):  # a command's numbers must not depend on the core count
                return int(args.func(args) or 0)
    except (Terminated, KeyboardInterrupt) as exc:
        return stopped(exc, "nlb-eval")
    except NLBInputError as exc:
        print(f"nlb-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system said no (permissions, disk full, a path that vanished)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"nlb-eval {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
