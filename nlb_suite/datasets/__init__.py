"""Datasets: registry of the seven NLB datasets, NWB reading, benchmark tensors, synthetic data, DANDI.

The registry is imported eagerly (cheap); `load` and `BenchmarkTensors` load the NWB/tensor machinery
(scipy.signal among it) on first use, so scoring and the CLI start fast.
"""

from __future__ import annotations

from typing import Any

from .specs import DATASETS, SUPPORTED_BINS, DatasetSpec, check_bin, get_dataset

__all__ = ["DATASETS", "SUPPORTED_BINS", "DatasetSpec", "BenchmarkTensors", "check_bin", "get_dataset", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "BenchmarkTensors"):
        from . import tensors

        return getattr(tensors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
