"""Run one numerical function in a child Python whose OpenBLAS uses a fixed kernel, so its bits do not
depend on which CPU the generator runs on.

OpenBLAS picks its kernels by CPU when it loads (it reads OPENBLAS_CORETYPE only then, hence a child), and its
AVX-512 kernels (SkylakeX) round some small calls differently from its Haswell, Zen and generic ones. Most of
the generator only sees that in the last bits of a float. A chaotic flow does not: LSODA's stiff steps call
BLAS, and lorenz data seed 0 integrated under the SkylakeX kernels parts from the Haswell/Zen/generic
trajectory after 29,305 points (benchmarks/RESULTS.md, "Cross-session reproducibility"). The child is pinned
to the generic SSE3 kernel, which numpy 2's own baseline (SSE4.2) guarantees on every x86-64 CPU; on other
machines (arm64) nothing is pinned and such a trajectory may differ from x86's.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import NLBInputError

PINNED_KERNEL = "Prescott"  # OpenBLAS's generic x86-64 kernel set
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder that holds nlb_suite/
_INPUT_ERROR = "nlb_suite.errors.NLBInputError: "
_CHILD = (
    "import importlib, sys\n"
    "import numpy as np\n"
    "module, function, src, dst = sys.argv[1:5]\n"
    "with np.load(src, allow_pickle=False) as z:\n"
    "    kwargs = {k: z[k].item() if z[k].ndim == 0 else z[k] for k in z.files}\n"
    "np.save(dst, getattr(importlib.import_module(module), function)(**kwargs), allow_pickle=False)\n"
)

Argument = Union[np.ndarray, str, int, float]


def pinning_applies() -> bool:
    """True on x86-64, where every CPU numpy runs on has the pinned kernel's instructions."""
    return platform.machine().lower() in {"x86_64", "amd64"}


def call_pinned(module: str, function: str, kwargs: dict[str, Argument]) -> np.ndarray:
    """`module.function(**kwargs)` (an array result) computed in a child Python pinned to PINNED_KERNEL.

    Arguments travel as an .npz without pickles (scalars and strings as 0-d arrays), the result as an .npy; an
    NLBInputError in the child is raised here with its message, any other failure as a RuntimeError.
    """
    env = dict(os.environ, OPENBLAS_CORETYPE=PINNED_KERNEL)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_PARENT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="nlb_pinned_") as tmp:
        src, dst = Path(tmp) / "args.npz", Path(tmp) / "result.npy"
        np.savez(src, **{k: np.asarray(v) for k, v in kwargs.items()})
        done = subprocess.run([sys.executable, "-c", _CHILD, module, function, str(src), str(dst)],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit code {done.returncode}, no message"
            if last.startswith(_INPUT_ERROR):
                raise NLBInputError(last[len(_INPUT_ERROR):])
            raise RuntimeError(f"{module}.{function} in a child pinned to OpenBLAS {PINNED_KERNEL} failed: {last}")
        return np.load(dst, allow_pickle=False)
