"""Installed package versions and the BLAS kernels loaded, for run provenance (runs.py), the synthetic cache's key
(synthetic_cache.py) and the pinned attractor integration (datasets/pinned_blas.py)."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Optional

from threadpoolctl import threadpool_info


def installed_version(package: str) -> Optional[str]:
    """The installed version of `package`, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def openblas_libraries() -> list[dict]:
    """threadpoolctl's record of each OpenBLAS loaded in this process ('architecture': its kernel set,
    'num_threads'), [] if none is."""
    return [i for i in threadpool_info() if i.get("internal_api") == "openblas"]


def openblas_kernels(libraries: Optional[list[dict]] = None) -> list[str]:
    """The kernel sets of the OpenBLAS libraries loaded in this process (e.g. ["SkylakeX"]), [] if none is.

    OpenBLAS picks them by CPU when it loads, and they round differently (AVX-512 against AVX2 against generic),
    so they decide the last bits of numpy's and scipy's linear algebra, and hence GPFA's fits.
    """
    return sorted({str(i.get("architecture")) for i in (openblas_libraries() if libraries is None else libraries)})


def openblas_threads(libraries: Optional[list[dict]] = None) -> list[int]:
    """The thread counts of the OpenBLAS libraries loaded in this process, [] if none is: a BLAS call splits its
    sums by thread, so GPFA's numbers move with the count as they do with the kernel."""
    return sorted({int(i.get("num_threads", 0)) for i in (openblas_libraries() if libraries is None else libraries)})


def on_x86_64() -> bool:
    """Is this an x86-64 machine, where OpenBLAS and the other libraries choose their kernels by CPU at load?"""
    return platform.machine().lower() in {"x86_64", "amd64"}
