"""One set of CPU kernels on every x86-64 machine with AVX2, so that a seeded run gives the same numbers on an
AVX-512 server and an AVX2 laptop.

OpenBLAS, torch's ATen, MKL and oneDNN each choose their kernels by CPU when they load, and AVX-512 and AVX2
kernels round differently: GPFA's co-bps moved by 0.0012 and NDT's by 0.0022 between the two on one file
(benchmarks/RESULTS.md, "Fits across CPU kinds"). Their environment variables hold them all to AVX2. They are read
when each library loads, so `nlb-eval --portable-kernels` starts itself again with them set.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

from .errors import NLBInputError

PORTABLE_ENV = {  # each library's AVX2 kernels, whatever the CPU offers beyond them
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's OpenBLAS
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # torch's MKL (matrix products on CPU)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # torch's oneDNN
}
PORTABLE_OPENBLAS_KERNEL = "Haswell"  # what OpenBLAS reports once it took the request
RESTARTED = "NLB_SUITE_PORTABLE_RESTARTED"  # set in the restarted command: it never restarts twice


def portable_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with the portable kernel variables set (any other variable kept)."""
    return {**environ, **PORTABLE_ENV}


def applies(environ: Mapping[str, str]) -> bool:
    """Are the portable kernel variables set in `environ`?"""
    return all(environ.get(key) == value for key, value in PORTABLE_ENV.items())


def check_cpu() -> None:
    """Refuse a CPU that cannot run the AVX2 kernels (one line, exit code 2)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise NLBInputError(f"--portable-kernels: this CPU is {platform.machine()}, expected x86-64 with AVX2")
    try:
        flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    except OSError:
        return  # not Linux: the libraries' own checks below still apply
    if " avx2" not in flags:
        raise NLBInputError("--portable-kernels: this CPU has no AVX2 (expected x86-64 with AVX2)")


def check_taken(openblas_kernels: list[str]) -> None:
    """After the libraries loaded: OpenBLAS must report the requested kernel (an OpenBLAS without runtime kernel
    choice ignores the variable, and its numbers would not be portable)."""
    if openblas_kernels and set(openblas_kernels) != {PORTABLE_OPENBLAS_KERNEL}:
        raise NLBInputError(f"--portable-kernels: OpenBLAS loaded {', '.join(openblas_kernels)} kernels, expected "
                            f"{PORTABLE_OPENBLAS_KERNEL} (an OpenBLAS built without runtime kernel choice?)")


def restart_with_portable_kernels(argv: list[str]) -> None:
    """Start this command again (same interpreter, same arguments) with the portable kernel variables set;
    does not return. A restarted command whose variables were changed on the way is refused, not restarted."""
    if os.environ.get(RESTARTED):
        raise NLBInputError("--portable-kernels: the restarted command lacks the kernel variables "
                            f"({', '.join(f'{k}={v}' for k, v in PORTABLE_ENV.items())})")
    os.execve(sys.executable, [sys.executable, "-m", "nlb_suite.cli", *argv],
              {**portable_environ(os.environ), RESTARTED: "1"})
