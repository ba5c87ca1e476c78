"""Scoring commands: evaluate, validate, package (owned by the scoring issue)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """No scoring commands yet."""
