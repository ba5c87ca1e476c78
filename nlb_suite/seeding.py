"""The one seeding rule: a run's seed sets Python's, numpy's global and torch's RNGs the same way everywhere."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, numpy's global RNG and torch (CPU and every CUDA device) when torch is installed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


@contextmanager
def python_random_seeded(seed: int) -> Iterator[None]:
    """Python's global `random` seeded for one block, the caller's state restored after it: Ray Tune's PBT draws
    its exploit donors from that module in the driver, so a sweep's choices repeat with its seed."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)
