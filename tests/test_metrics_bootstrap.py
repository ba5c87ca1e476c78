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


def test_subsamples_are_seeded_sets_without_repeats():
    s = B.subsamples(10, 5, 40, seed=3)
    assert s.shape == (40, 5) and s.min() >= 0 and s.max() <= 9
    assert all(len(set(row)) == 5 and list(row) == sorted(row) for row in s)
    assert np.array_equal(s, B.subsamples(10, 5, 40, seed=3)) and not np.array_equal(s, B.subsamples(10, 5, 40, seed=4))
    assert len({tuple(r) for r in s}) > 20  # the draws vary
    with pytest.raises(ValueError, match=r"subsample size must be between 1 and 9 \(got 10\)"):
        B.subsamples(10, 10, 1, seed=0)


def test_subsample_interval_reflects_and_rescales_by_hand():
    # n=6, size=3: scale sqrt(3/3) = 1; value - observed = [0, 0, 3]; percentiles 2.5 / 97.5 = 0 / 2.85
    assert B.subsample_interval(np.array([2.0, 2.0, 5.0]), 2.0, 6, 3) == pytest.approx([2.0 - 2.85, 2.0])
    # n=4, size=1: scale sqrt(1/3); [-1, 0, 1] -> percentiles -0.95 / 0.95
    lo, hi = B.subsample_interval(np.array([1.0, 2.0, 3.0, np.nan]), 2.0, 4, 1)
    assert (lo, hi) == pytest.approx((2.0 - 0.95 / np.sqrt(3), 2.0 + 0.95 / np.sqrt(3)))
    assert B.subsample_interval(np.array([np.nan]), 1.0, 4, 2) == [pytest.approx(np.nan, nan_ok=True)] * 2


def test_subsample_interval_of_a_mean_matches_normal_theory():
    """For a mean, half-samples' spread rescaled gives the t-interval's width (the delete-d factor is exact)."""
    x = np.random.default_rng(5).normal(size=200)
    sets = B.subsamples(200, 100, 4000, seed=1)
    lo, hi = B.subsample_interval(x[sets].mean(axis=1), x.mean(), 200, 100)
    half_width = 1.96 * x.std(ddof=1) / np.sqrt(200)
    assert (hi - lo) / 2 == pytest.approx(half_width, rel=0.05)
    assert (lo + hi) / 2 == pytest.approx(x.mean(), abs=0.05 * half_width)
    # size 150 of 200: subsets vary less, the factor sqrt(150 / 50) restores the same width
    lo3, hi3 = B.subsample_interval(x[B.subsamples(200, 150, 4000, seed=1)].mean(axis=1), x.mean(), 200, 150)
    assert (hi3 - lo3) / 2 == pytest.approx(half_width, rel=0.05)
