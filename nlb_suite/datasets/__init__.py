"""Datasets: registry of the seven NLB datasets, NWB reading, benchmark tensors, synthetic data, DANDI."""

from .registry import DATASETS, SUPPORTED_BINS, DatasetSpec, check_bin, get_dataset
from .tensors import BenchmarkTensors, load

__all__ = ["DATASETS", "SUPPORTED_BINS", "DatasetSpec", "BenchmarkTensors", "check_bin", "get_dataset", "load"]
