"""The attractor integration gives the same bits whatever OpenBLAS kernel the generating process loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from nlb_suite.datasets import pinned_blas
from nlb_suite.datasets.known_dynamics import _streams
from nlb_suite.datasets.known_systems import (
    ATTRACTORS,
    attractor_trajectory,
    integrate_attractor,
    seeded_start,
)
from nlb_suite.datasets.pinned_blas import PINNED_KERNEL, call_pinned
from nlb_suite.errors import NLBInputError
from nlb_suite.seeding import seed_everything
from support.platforms import X86_ONLY

# lorenz data seed 0 parts between OpenBLAS's SkylakeX and generic kernels after 29,305 points
PARTING_POINT = 29_305

_IN_PROCESS = (  # argv: points after the burn-in, the start (.npy), the output (.npy)
    "import sys, numpy as np\n"
    "from nlb_suite.datasets.known_systems import burn_in_points, integrate_attractor\n"
    "burn = burn_in_points('lorenz')\n"
    "n = burn + int(sys.argv[1])\n"
    "np.save(sys.argv[3], integrate_attractor('lorenz', n, np.load(sys.argv[2]))[burn:])\n"
)


# the child, and so the kernel, exists on x86-64 only; the CI machines are x86-64, where CI fails any skip


@X86_ONLY
def test_lorenz_seed_0_is_the_generic_kernels_trajectory(tmp_path):
    # this process keeps the kernel OpenBLAS chose for the CPU (SkylakeX on the CI machines); the child
    # integrates in-process under the generic kernel, and the seeded trajectory must be the same bits
    n = PARTING_POINT + 200
    ours = attractor_trajectory("lorenz", n, _streams("lorenz", 0)[0])
    start, out = tmp_path / "start.npy", tmp_path / "generic.npy"
    np.save(start, seeded_start("lorenz", _streams("lorenz", 0)[0]))
    env = dict(os.environ, OPENBLAS_CORETYPE=PINNED_KERNEL)
    subprocess.run([sys.executable, "-c", _IN_PROCESS, str(n), str(start), str(out)], env=env, check=True,
                   capture_output=True)
    generic = np.load(out)
    assert ours.shape == generic.shape == (n, 3)
    assert np.array_equal(ours, generic)


def test_integration_leaves_numpys_global_rng_alone():
    # dysts reseeds the global RNG to 0 on every trajectory; a caller's np.random stream must go on unchanged
    seed_everything(123)
    expected = np.random.random(3)
    seed_everything(123)
    integrate_attractor("lorenz", 50, np.array([1.0, 1.0, 1.0]))
    assert np.array_equal(np.random.random(3), expected)


def test_a_childs_input_error_is_raised_here_with_its_message():
    with pytest.raises(NLBInputError, match=r"^unknown attractor 'pendulum'; expected one of lorenz, rossler"):
        call_pinned("nlb_suite.datasets.known_systems", "integrate_attractor",
                    {"name": "pendulum", "n_points": 10, "init_cond": np.zeros(3)})
    assert sorted(ATTRACTORS) == ["arneodo", "lorenz", "rossler"]


@X86_ONLY
def test_any_other_child_failure_names_the_function_and_the_last_line():
    with pytest.raises(RuntimeError, match=r"known_systems\.no_such_function in a child pinned to OpenBLAS "
                                           r"Prescott failed: AttributeError: .*no_such_function"):
        call_pinned("nlb_suite.datasets.known_systems", "no_such_function", {})


@X86_ONLY
def test_an_openblas_that_ignores_the_request_is_an_error(monkeypatch):
    # OpenBLAS loads the CPU's own kernel for a core type it does not know, without a word
    monkeypatch.setattr(pinned_blas, "PINNED_KERNEL", "NoSuchCore")
    with pytest.raises(RuntimeError, match=r"^numpy\.zeros: OpenBLAS ignored OPENBLAS_CORETYPE=NoSuchCore and "
                                           r"loaded \w+; the result would depend on this CPU$"):
        call_pinned("numpy", "zeros", {"shape": 2})


def test_arguments_and_result_cross_unchanged():
    # no BLAS on this path: the bits of floats, ints and non-ASCII text survive the trip both ways
    x = np.array([0.1 + 0.2, -2.5e-300, 30.000000000000004, np.nextafter(1.0, 2.0)])
    assert np.array_equal(call_pinned("numpy", "asarray", {"a": x}), x)
    assert call_pinned("numpy", "full", {"shape": 2, "fill_value": 2**62 + 1}).tolist() == [2**62 + 1] * 2
    assert call_pinned("numpy", "asarray", {"a": "Rössler λ"}).item() == "Rössler λ"
