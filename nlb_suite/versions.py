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


def numpy_dispatch() -> tuple[dict[str, bool], list[str]]:
    """numpy's CPU features ({name: available and enabled}) and the SIMD targets its loops dispatch to: like
    OpenBLAS's kernels, the target taken (AVX-512 or AVX2) decides the last bits of exp, log and friends."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return dict(__cpu_features__), list(__cpu_dispatch__)


def numpy_simd() -> str:
    """numpy's dispatch targets enabled on this CPU, e.g. "X86_V3,X86_V4,AVX512_ICL" ("" when none is)."""
    features, dispatch = numpy_dispatch()
    return ",".join(t for t in dispatch if features.get(t))
