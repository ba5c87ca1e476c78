"""One seeding function: seed_everything repeats Python, numpy and torch draws, and nothing else seeds them."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np

from nlb_suite.seeding import seed_everything

ROOT = Path(__file__).resolve().parent.parent
GLOBAL_SEEDING = re.compile(r"(?<![\w.])(random\.seed|np\.random\.seed|numpy\.random\.seed|torch\.manual_seed|"
                            r"torch\.cuda\.manual_seed(_all)?|torch\.random\.manual_seed)\s*\(")


def _draws() -> tuple:
    import torch

    return random.random(), np.random.random(3).tolist(), torch.rand(3).tolist()


def test_same_seed_same_draws_other_seed_other_draws():
    seed_everything(7)
    first = _draws()
    seed_everything(7)
    assert _draws() == first
    seed_everything(8)
    assert _draws() != first


def test_large_seed_is_accepted_by_numpy():
    seed_everything(2**40 + 3)
    a = np.random.random()
    seed_everything(2**40 + 3)
    assert np.random.random() == a


def test_nothing_else_seeds_the_global_rngs():
    """Every module, benchmark and test seeds through seed_everything, so a run is seeded one way only."""
    offenders = []
    for folder in ("nlb_suite", "baselines", "benchmarks", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "nlb_suite" / "seeding.py" or path == Path(__file__).resolve():
                continue
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if GLOBAL_SEEDING.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "seed through nlb_suite.seeding.seed_everything:\n" + "\n".join(offenders)
