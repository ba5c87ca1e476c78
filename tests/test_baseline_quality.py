"""The quality bar on synthetic data: ceiling > gpfa > 0 and ceiling > smoothing > 0 co-bps, LFADS (its
quick fast profile) above smoothing, each run's metrics equal to nlb_tools' own score of its submission."""

from __future__ import annotations

import json

import pytest

from nlb_suite.h5io import load_h5
from nlb_suite.runs import RunSpec, execute
from support.nlb_reference import assert_results_equal, nlb_tools_evaluate, nlb_tools_tensors


@pytest.fixture(scope="module")
def runs(synthetic, tmp_path_factory):
    folder = synthetic("mc_maze_small", trials=100)
    out = tmp_path_factory.mktemp("quality")
    results = {name: execute(RunSpec(name, "mc_maze_small", data=folder, out=out / name,
                                     profile=None if name == "oracle" else "fast", ci=0), progress=False)
               for name in ("oracle", "smoothing", "gpfa", "lfads")}
    return folder, results


def test_ceiling_above_models_above_zero(runs):
    _, r = runs
    ceiling = r["oracle"].metrics["co-bps"]
    for name in ("smoothing", "gpfa"):
        assert 0 < r[name].metrics["co-bps"] < ceiling, (name, r[name].metrics, ceiling)
        assert r[name].metrics["vel R2"] < r["oracle"].metrics["vel R2"]


def test_lfads_fast_profile_learns_below_ceiling(runs):
    """The 100-epoch demo profile of LFADS learns single-trial structure (psth R2 above smoothing's), stays
    below the true rates on co-bps and predicts forward bins. A smoke profile, not a score: on the current
    stand-ins it is below smoothing on co-bps, where the cpu default leads (benchmarks/RESULTS.md)."""
    _, r = runs
    lfads, smooth, ceiling = r["lfads"].metrics, r["smoothing"].metrics, r["oracle"].metrics
    assert smooth["psth R2"] + 0.03 < lfads["psth R2"], (lfads, smooth)
    assert 0 < lfads["co-bps"] < ceiling["co-bps"]
    assert 0 < lfads["fp-bps"] < ceiling["fp-bps"]


@pytest.fixture(scope="module")
def nlb_tools_target(runs):
    """nlb_tools' eval targets of the runs' data, made once: building them is the slow part of the oracle."""
    folder, _ = runs
    return nlb_tools_tensors(folder, "mc_maze_small", 5, "val")["target"]


@pytest.mark.parametrize("name", ["smoothing", "gpfa", "lfads"])
def test_metrics_json_equals_nlb_tools_score(runs, nlb_tools_target, name):
    run = runs[1][name].run_dir
    assert_results_equal(json.loads((run / "metrics.json").read_text()),
                         nlb_tools_evaluate(nlb_tools_target, load_h5(run / "submission.h5")))
