"""One set of CPU kernels, AVX2, whatever more an x86-64 CPU offers, so that a seeded run does not depend on
whether the machine has AVX-512.

numpy (its own SIMD loops: exp and log differ in the last bits), OpenBLAS, torch's ATen, MKL and oneDNN each choose
their kernels by CPU when they load, and AVX-512 and AVX2 kernels round differently: GPFA's co-bps moved by 0.0012
and NDT's by 0.0022 between the two on one file (benchmarks/RESULTS.md, "Fits across CPU kinds"). Their
environment variables hold them all to AVX2. They are read when each library loads, so `nlb-eval
--portable-kernels` starts itself again with them set, and checks afterwards that every loaded library took them.
MKL keeps its promise only among Intel CPUs (on others its reproducibility mode falls back to automatic).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import NoReturn

from .errors import NLBInputError
from .versions import numpy_dispatch, on_x86_64, openblas_kernels, openblas_libraries

PORTABLE_ENV = {  # each library's AVX2 kernels, whatever the CPU offers beyond them
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's OpenBLAS
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # torch's MKL (matrix products on CPU): no AVX-512 code ...
    "MKL_CBWR": "AVX2",  # ... and its reproducibility mode (Intel CPUs)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # torch's oneDNN
}
NUMPY_DISABLE = "NPY_DISABLE_CPU_FEATURES"  # numpy's switch for its dispatched SIMD loops
NUMPY_ENABLE = "NPY_ENABLE_CPU_FEATURES"  # numpy refuses to start with both set, so the restart drops this one
TORCH_CAPABILITY = "AVX2"  # what torch.backends.cpu.get_cpu_capability() says once ATen took the request
RESTARTED = "NLB_SUITE_PORTABLE_RESTARTED"  # set in the restarted command: it never restarts twice


def numpy_beyond_avx2(dispatch: list[str]) -> list[str]:
    """numpy's dispatch targets above AVX2 (names differ by numpy version: X86_V4, AVX512_ICL, AVX512_SKX ...)."""
    return [t for t in dispatch if t.startswith(("AVX512", "X86_V4"))]


def portable_environ(environ: Mapping[str, str], dispatch: list[str]) -> dict[str, str]:
    """`environ` with the portable kernel variables set (numpy's targets above AVX2 switched off), others kept."""
    kept = {k: v for k, v in environ.items() if k != NUMPY_ENABLE}
    return {**kept, **PORTABLE_ENV, NUMPY_DISABLE: " ".join(numpy_beyond_avx2(dispatch))}


def applies(environ: Mapping[str, str]) -> bool:
    """Are the portable kernel variables set in `environ` (the fixed ones, and numpy's switch)?"""
    return NUMPY_DISABLE in environ and all(environ.get(key) == value for key, value in PORTABLE_ENV.items())


def variables_text(dispatch: list[str]) -> str:
    """The variables to set by hand, as a line of KEY=VALUE."""
    env = portable_environ({}, dispatch)
    return " ".join(f"{k}='{v}'" if " " in v else f"{k}={v}" for k, v in env.items())


def check_cpu(machine_is_x86: bool, features: Mapping[str, bool]) -> None:
    """Refuse a CPU that cannot run the AVX2 kernels, and Windows, where a process cannot restart in place."""
    if not machine_is_x86:
        raise NLBInputError("--portable-kernels: this CPU is not x86-64 (expected x86-64 with AVX2)")
    if not features.get("AVX2"):
        raise NLBInputError("--portable-kernels: this CPU has no AVX2 (expected x86-64 with AVX2)")
    if os.name == "nt":
        raise NLBInputError("--portable-kernels: Windows cannot restart a command in place; set "
                            f"{variables_text(numpy_dispatch()[1])} before starting nlb-eval")


def kernel_problems(openblas: list[dict], features: Mapping[str, bool], dispatch: list[str],
                    torch_capability: str | None) -> list[str]:
    """What a library loaded in this process did not take of the request (empty: every one took it).
    `torch_capability`: None when torch is not loaded (it is checked once a command loads it)."""
    problems = []
    if not openblas:
        problems.append("no OpenBLAS seen in this process (numpy on another BLAS?), so its kernels cannot be held")
    kernels = openblas_kernels(openblas)
    if openblas and kernels != [PORTABLE_ENV["OPENBLAS_CORETYPE"]]:
        problems.append(f"OpenBLAS loaded {', '.join(kernels)} kernels, expected {PORTABLE_ENV['OPENBLAS_CORETYPE']} "
                        "(an OpenBLAS built without runtime kernel choice?)")
    if on := [t for t in numpy_beyond_avx2(dispatch) if features.get(t)]:
        problems.append(f"numpy still dispatches to {', '.join(on)}")
    if torch_capability is not None and torch_capability != TORCH_CAPABILITY:
        problems.append(f"torch runs {torch_capability} kernels, expected {TORCH_CAPABILITY}")
    return problems


def check_loaded() -> None:
    """Under the portable variables, refuse (one line) if a library loaded in this process ignored them; torch
    only if it is loaded. Nothing to check without the variables."""
    if not applies(os.environ):
        return
    import scipy.linalg  # noqa: F401  (scipy's own OpenBLAS, checked with numpy's)

    torch = sys.modules.get("torch")
    capability = torch.backends.cpu.get_cpu_capability() if torch is not None else None
    features, dispatch = numpy_dispatch()
    if problems := kernel_problems(openblas_libraries(), features, dispatch, capability):
        raise NLBInputError("portable kernels: " + "; ".join(problems))


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The portable variables to hand to Ray's workers (a cluster's start without them), {} when not held."""
    return {k: environ[k] for k in (*PORTABLE_ENV, NUMPY_DISABLE) if k in environ} if applies(environ) else {}


def restart_with_portable_kernels() -> NoReturn:
    """Start this command again (same interpreter, flags and arguments) with the portable kernel variables set;
    does not return. A restarted command whose variables were changed on the way is refused, not restarted."""
    features, dispatch = numpy_dispatch()
    if os.environ.get(RESTARTED):
        raise NLBInputError(f"--portable-kernels: the restarted command lacks the kernel variables "
                            f"({variables_text(dispatch)})")
    check_cpu(on_x86_64(), features)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, restart_argv(), {**portable_environ(os.environ, dispatch), RESTARTED: "1"})


def restart_argv() -> list[str]:
    """The command as it was started: the console script (or `python -m ...` as typed). `python -m` would put the
    working folder first on the import path, so a stray numpy/ there could shadow the real one."""
    if orig := list(getattr(sys, "orig_argv", [])):  # Python >= 3.10: the interpreter's flags kept too
        return [sys.executable, *orig[1:]]
    if sys.argv[0].endswith(("cli.py", "-c")):  # python -m nlb_suite.cli on 3.9
        return [sys.executable, "-m", "nlb_suite.cli", *sys.argv[1:]]
    return [sys.executable, *sys.argv]  # the console script on 3.9
