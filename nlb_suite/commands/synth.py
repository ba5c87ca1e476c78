"""`nlb-eval synth`: write a synthetic dataset in the exact NLB NWB layout (owned by the generator)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Not implemented yet."""
