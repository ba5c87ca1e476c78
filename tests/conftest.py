"""Shared fixtures: small synthetic NLB folders (generated once per test session); CI skip rules."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from support.ci_skips import (  # noqa: F401  (hooks: under CI a skip fails; skip count printed)
    pytest_make_collect_report,
    pytest_runtest_makereport,
    pytest_terminal_summary,
)

logging.getLogger("nlb_tools").setLevel(logging.ERROR)

# Small sizes keep the nlb_tools reference fast while covering every dataset shape.
TEST_TRIALS = {"mc_maze": 60, "mc_maze_small": 40, "mc_maze_medium": 40, "mc_maze_large": 40,
               "mc_rtt": 60, "area2_bump": 60, "dmfc_rsg": 60}


@pytest.fixture(scope="session", autouse=True)
def nlb_tools_without_fork():
    """nlb_tools smooths spikes in a forked multiprocessing.Pool; forking this process after Ray or torch have
    started native threads can deadlock the child on a lock one of them held (seen: a suite stuck for minutes
    in the tensor parity tests after the Ray tests). The same map, run serially, gives the same values."""
    import nlb_tools.nwb_interface as nwb_interface

    patch = pytest.MonkeyPatch()
    patch.setattr(nwb_interface, "_poolmap", lambda f, xs, nprocs=None, chunksize=None: [f(x) for x in xs])
    yield
    patch.undo()


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """`synthetic(name)` -> folder holding the NWB files of a small synthetic dataset (cached)."""
    from nlb_suite.datasets.synthetic import write_synthetic

    cache: dict[tuple, Path] = {}

    def get(name: str, trials: int | None = None, seed: int = 0) -> Path:
        key = (name, trials, seed)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"synth_{name}")
            write_synthetic(name, root, seed=seed, trials=trials or TEST_TRIALS[name])
            cache[key] = sorted(root.glob("**/*.nwb"))[0].parent
        return cache[key]

    return get
