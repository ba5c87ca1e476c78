"""Command-line value parsers the benchmarks share, so every bench reads a seed list the same way."""

from __future__ import annotations

import argparse


def seed_list(text: str) -> list[int]:
    """A comma-separated list of distinct integer seeds, in the order given; argparse reports a bad one in one
    line (a repeated seed would count one dataset twice in every mean over seeds)."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2 (got {text!r})") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"each seed once (got {text!r})")
    return seeds


def optional_seed_list(text: str) -> list[int]:
    """As seed_list, but an empty argument means no seeds (a bench option that can switch a group of runs off)."""
    return seed_list(text) if text else []


def seeds_text(seeds: list[int]) -> str:
    """Seeds as the user typed them, for table headers."""
    return ",".join(map(str, seeds))
