"""Bootstrap intervals: exact at the identity resample, seeded, and sensible."""

from __future__ import annotations

import numpy as np
import pytest

from nlb_suite import metrics_bootstrap as B
from nlb_suite.metrics_evaluate import bootstrap_group, evaluate_report
from support.eval_targets import KINDS, make_submission, make_target


@pytest.mark.parametrize("kind", KINDS)
def test_identity_resample_reproduces_every_metric(kind):
    target, truth = make_target(kind, 5, seed=3)
    report = evaluate_report(target, make_submission(target, truth, "realistic"))
    (g,) = report.groups.values()
    ones = np.ones((1, g.n_eval_trials))
    for key, value in g.metrics.items():
        data = g.boot[key]
        if key in ("co-bps", "fp-bps"):
            got = B.boot_bps(data, ones)
        elif key == "vel R2":
            got = B.boot_vel(data, g.n_eval_trials, ones)
        elif key == "psth R2":
            got = B.boot_psth(data, np.ones((1, len(data))))
        else:
            got = B.boot_tp(*data, ones)
        assert got[0] == pytest.approx(value, abs=1e-12), key


def test_intervals_are_seeded_and_bracket_co_bps():
    target, truth = make_target("mc_maze", 20, seed=4)
    report = evaluate_report(target, make_submission(target, truth, "realistic"), ci=200, seed=7)
    (g,) = report.groups.values()
    again = bootstrap_group(g, 200, 7)
    assert report.intervals == [{"mc_maze_20_split": again}]
    lo, hi = again["co-bps"]
    assert lo < g.metrics["co-bps"] < hi
    assert bootstrap_group(g, 200, 8) != again


def test_resample_counts_sum_to_trials():
    c = B.resample_counts(17, 50, 0)
    assert c.shape == (50, 17) and np.all(c.sum(axis=1) == 17)
    assert B.percentile_interval(np.array([np.nan, np.nan])) == [pytest.approx(np.nan, nan_ok=True)] * 2


def test_psth_resamples_conditions_with_multiplicity():
    """Each resample is the psth R2 of its drawn conditions, a condition drawn k times counting k times."""
    from nlb_suite.metrics import r2_score

    rng = np.random.default_rng(0)
    rates = rng.random((5, 4, 3))
    idx = [np.array([0, 1]), np.array([2, 3, 4])]
    keep = [np.array([True, True, True, False]), np.ones(4, bool)]
    true = [rng.random((3, 3)), rng.random((4, 3))]
    counts = np.array([[1.0, 1.0], [3.0, 1.0], [1.0, 2.0]])
    pred = [rates[i].mean(axis=0)[k] for i, k in zip(idx, keep)]
    got = B.boot_psth(list(zip(pred, true)), counts)
    for row, c in zip(got, counts):
        t = np.vstack([np.repeat(x, int(m), axis=0) for x, m in zip(true, c)])
        p = np.vstack([np.repeat(x, int(m), axis=0) for x, m in zip(pred, c)])
        assert row == pytest.approx(r2_score(t, p), abs=1e-12)
