"""Command-line value parsers the benchmarks share, so every bench reads a seed list the same way."""

from __future__ import annotations

import argparse


def _distinct_ints(text: str, what: str) -> list[int]:
    """Comma-separated distinct integers in the order given, or one argparse line naming `what` repeated."""
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2 (got {text!r})") from None
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"each {what} once (got {text!r})")
    return values


def seed_list(text: str) -> list[int]:
    """A comma-separated list of distinct integer seeds, in the order given; argparse reports a bad one in one
    line (a repeated seed would count one dataset twice in every mean over seeds)."""
    return _distinct_ints(text, "seed")


def optional_seed_list(text: str) -> list[int]:
    """As seed_list, but an empty argument means no seeds (a bench option that can switch a group of runs off)."""
    return seed_list(text) if text else []


def index_list(text: str) -> list[int]:
    """Distinct integer indices (of held-out sets, say), checked as seed_list checks seeds."""
    return _distinct_ints(text, "index")


def seeds_text(seeds: list[int]) -> str:
    """Seeds as the user typed them, for table headers."""
    return ",".join(map(str, seeds))
