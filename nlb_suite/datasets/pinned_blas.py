"""Run one numerical function in a child Python whose OpenBLAS uses its generic kernel, so that its bits do not
depend on the CPU's own kernel choice.

OpenBLAS picks its kernels by CPU when it loads (it reads OPENBLAS_CORETYPE only then, hence a child). Its
AVX-512 kernels (SkylakeX) round some small calls differently from its Haswell kernels (Zen loads the same set)
and its generic one. Most of the generator only sees that in the last bits of a float. A chaotic flow does not:
LSODA's stiff steps call BLAS, and lorenz data seed 0 integrated under SkylakeX parts from the Haswell and
generic trajectory after 29,305 points (benchmarks/RESULTS.md, "Lorenz data seed 0 on every CPU"). The child
asks for `Prescott`, the generic x86-64 kernel (OpenBLAS builds may report it as Katmai); it needs only SSE3,
numpy's minimum on x86-64. The child checks that every OpenBLAS it loaded took that kernel; where numpy and scipy
use another BLAS (MKL, Accelerate) a log line says so; on other machines (arm64) nothing is pinned.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import NLBInputError
from ..jsonio import dumps_json
from ..versions import on_x86_64

PINNED_KERNEL = "Prescott"
GENERIC_KERNELS = ("Prescott", "Katmai")  # the names OpenBLAS builds report for that request
_INPUT_ERROR = re.compile(r"^nlb_suite\.errors\.\w+: (.*)$")
_CHILD = (  # argv: module, function, folder holding path.json and args.npz; writes result.npy and kernels.json
    "import json, sys\n"
    "work = sys.argv[3]\n"
    "sys.path[:] = json.load(open(work + '/path.json'))\n"
    "import importlib\n"
    "import numpy as np\n"
    "with np.load(work + '/args.npz', allow_pickle=False) as z:\n"
    "    kwargs = {k: z[k].item() if z[k].ndim == 0 else z[k] for k in z.files}\n"
    "result = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])(**kwargs)\n"
    "from nlb_suite.jsonio import write_json\n"
    "from nlb_suite.versions import openblas_kernels\n"
    "write_json(work + '/kernels.json', openblas_kernels())\n"
    "np.save(work + '/result.npy', result, allow_pickle=False)\n"
)

Argument = Union[np.ndarray, str, int, float]
log = logging.getLogger("nlb_suite.synthetic")


def call_pinned(module: str, function: str, kwargs: dict[str, Argument]) -> np.ndarray:
    """`module.function(**kwargs)` (an array result) computed in a child Python pinned to the generic kernel on
    x86-64, and in this process elsewhere (no kernel to pin to).

    Arguments travel as an .npz without pickles (scalars and strings as 0-d arrays, back as Python scalars), the
    result as an .npy; the child gets this process's sys.path and runs in a scratch folder. An nlb_suite input
    error in the child is raised here as NLBInputError with its message, any other failure as a RuntimeError,
    and so is an OpenBLAS that ignored the requested kernel.
    """
    if not on_x86_64():  # elsewhere no kernel to pin to; on x86-64 every CPU has the generic kernel's instructions
        return getattr(importlib.import_module(module), function)(**kwargs)
    if not sys.executable:
        raise RuntimeError(f"{module}.{function}: no Python executable to start the pinned child with")
    env = dict(os.environ, OPENBLAS_CORETYPE=PINNED_KERNEL, OPENBLAS_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    with tempfile.TemporaryDirectory(prefix="nlb_pinned_") as tmp:
        work = Path(tmp)
        (work / "path.json").write_text(dumps_json([os.path.abspath(p or os.curdir) for p in sys.path]))
        np.savez(work / "args.npz", **{k: np.asarray(v) for k, v in kwargs.items()})
        done = subprocess.run([sys.executable, "-c", _CHILD, module, function, tmp], env=env, cwd=tmp,
                              capture_output=True, encoding="utf-8", errors="replace")
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit code {done.returncode}, no message"
            match = _INPUT_ERROR.match(last)
            if match:
                raise NLBInputError(match.group(1))
            raise RuntimeError(f"{module}.{function} in a child pinned to OpenBLAS {PINNED_KERNEL} failed: {last}")
        _check_kernels(json.loads((work / "kernels.json").read_text()), f"{module}.{function}")
        return np.load(work / "result.npy", allow_pickle=False)


def _check_kernels(kernels: list[str], what: str) -> None:
    """RuntimeError if an OpenBLAS in the child ignored the request; a log line if the child loaded none."""
    if not kernels:
        log.warning("%s: numpy and scipy use no OpenBLAS here; its result may differ from other machines' "
                    "in the last bits, or wholly for a chaotic flow", what)
    elif any(k not in GENERIC_KERNELS for k in kernels):
        raise RuntimeError(f"{what}: OpenBLAS ignored OPENBLAS_CORETYPE={PINNED_KERNEL} and loaded "
                           f"{', '.join(kernels)}; the result would depend on this CPU")
