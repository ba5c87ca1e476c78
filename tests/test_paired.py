"""Ties, best marks and the gap share on hand-made numbers (exact values), and the paired interval."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from nlb_suite.metrics_bootstrap import paired_interval
from nlb_suite.report.paired import ArmPart, Difference, compare_metric, compare_runs, gap_share, is_tie


def test_gap_share():
    assert gap_share(0.75, 0.5, 1.0) == 0.5
    assert gap_share(1.0, 0.5, 1.0) == 1.0 and gap_share(0.5, 0.5, 1.0) == 0.0
    assert gap_share(0.25, 0.5, 1.0) == -0.5  # below the floor
    assert gap_share(0.75, 1.0, 1.0) is None and gap_share(0.75, 1.0, 0.5) is None  # no gap to close
    assert gap_share(None, 0.5, 1.0) is None and gap_share(0.7, None, 1.0) is None
    assert gap_share(math.nan, 0.5, 1.0) is None


def test_is_tie():
    assert is_tie(-0.1, 0.2) and is_tie(0.0, 0.1) and is_tie(-0.1, 0.0)
    assert not is_tie(0.01, 0.2) and not is_tie(-0.2, -0.01)
    assert is_tie(math.nan, 0.3)  # an interval that resolves nothing is no win
    assert Difference(-0.5, -0.88, -0.12).text() == "-0.5000 [-0.8800, -0.1200]"
    assert Difference(0.02, -0.01, 0.05).text() == "+0.0200 [-0.0100, +0.0500] tie"
    assert Difference(0.0234, 0.0102, 0.0361).text(digits=3) == "+0.023 [+0.010, +0.036]"


def test_paired_interval_exact():
    b = np.zeros(401)
    lo, hi, share = paired_interval(np.linspace(-1.0, 3.0, 401), b)
    assert (lo, hi) == (pytest.approx(-0.9), pytest.approx(2.9))
    assert share == pytest.approx(300 / 401)


def test_paired_interval_bias_corrected_by_hand():
    """BC percentiles: z0 from the share of resamples below the observed difference, shifted quantiles."""
    d = np.linspace(-1.0, 3.0, 401)  # percentile q of d is -1 + 4 q (linear interpolation on 401 points)
    assert paired_interval(d, np.zeros(401), observed=1.0)[:2] == (pytest.approx(-0.9), pytest.approx(2.9))
    nd = NormalDist()
    z0 = nd.inv_cdf(100.5 / 401)  # 100 resamples below 0.0, one equal to it
    lo_q, hi_q = nd.cdf(2 * z0 - nd.inv_cdf(0.975)), nd.cdf(2 * z0 + nd.inv_cdf(0.975))
    lo, hi, share = paired_interval(d, np.zeros(401), observed=0.0)
    assert (lo, hi) == (pytest.approx(-1 + 4 * lo_q), pytest.approx(-1 + 4 * hi_q))
    assert (round(lo, 4), round(hi, 4)) == (-0.9981, 1.9228) and share == pytest.approx(300 / 401)


def test_a_paired_difference_takes_the_bias_corrected_interval_around_the_measured_value():
    d = np.linspace(-1.0, 3.0, 401)
    diff = Difference.paired(0.0, d + 5.0, np.full(401, 5.0))  # a - b over the shared resamples is d
    assert (diff.value, round(diff.lo, 4), round(diff.hi, 4)) == (0.0, -0.9981, 1.9228)  # as by hand above
    assert diff.tie and Difference.paired(1.0, d, np.zeros(401), level=0.25).text(2) == "+1.00 [+0.50, +1.50]"


def test_top_ties_and_differences_from_paired_resamples():
    top = np.linspace(0.8, 1.2, 401)
    boot = [top,                                    # A: top (value 1.0)
            top - np.linspace(0.1, 0.9, 401),       # B: 0.5, resolved: [-0.88, -0.12]
            top + np.linspace(-0.3, 0.1, 401),      # C: 0.9, tie: [-0.29, +0.09]
            top + 1.0,                              # D: a reference above everything, never top
            None]                                   # E: no rates
    values = [1.0, 0.5, 0.9, 2.0, None]
    eligible = [True, True, True, False, True]
    c = compare_metric("co-bps", values, eligible, boot)
    assert c.paired and c.top == 0 and c.tied == {0, 2}
    assert c.diffs[1].value == -0.5 and c.diffs[1].lo == pytest.approx(-0.88) and c.diffs[1].hi == pytest.approx(-0.12)
    assert not c.diffs[1].tie and c.diffs[2].tie
    assert c.diffs[2].lo == pytest.approx(-0.29) and c.diffs[2].hi == pytest.approx(0.09)
    assert c.diffs[3].value == 1.0 and not c.diffs[3].tie and c.diffs[4] is None


def test_without_paired_resamples_overlapping_intervals_tie():
    values = [1.0, 0.5, 0.9]
    intervals = [[0.9, 1.1], [0.4, 0.6], [0.85, 0.95]]
    c = compare_metric("vel R2", values, [True] * 3, None, intervals)
    assert not c.paired and c.top == 0 and c.tied == {0, 2} and c.diffs == [None] * 3


def test_tp_corr_is_better_more_negative():
    """dmfc_rsg's tp corr: the most negative run is the top, differences to it are positive, ties still paired."""
    base = np.linspace(-0.6, -0.4, 401)
    boot = [base, base + 0.3, base + np.linspace(-0.05, 0.1, 401)]  # -0.5 top, -0.2 resolved, -0.48 tie
    c = compare_metric("tp corr", [-0.5, -0.2, -0.48], [True] * 3, boot)
    assert c.top == 0 and c.tied == {0, 2} and c.diffs[1].value == pytest.approx(0.3) and not c.diffs[1].tie
    marginal = compare_metric("tp corr", [-0.5, -0.2, -0.45], [True] * 3, None,
                              [[-0.6, -0.4], [-0.3, -0.1], [-0.55, -0.35]])
    assert marginal.top == 0 and marginal.tied == {0, 2}  # -0.2's interval does not reach the top's
    assert compare_metric("co-bps", [-0.5, -0.2], [True] * 2).top == 1


def test_compare_runs_never_marks_a_reference_and_single_run_is_untied():
    metrics = [{"co-bps": 0.4}, {"co-bps": 0.2}, None]
    out = compare_runs(metrics, [None, None, None], ["oracle", "smoothing", "gpfa"], ["co-bps"])
    assert out["co-bps"].top == 1 and out["co-bps"].tied == {1}


def test_the_mean_over_one_data_set_is_its_paired_difference():
    d = np.linspace(-1.0, 3.0, 401)
    one = Difference.mean_over_sets([(0.0, d + 5.0, np.full(401, 5.0))])
    assert one == Difference.paired(0.0, d + 5.0, np.full(401, 5.0))
    assert (round(one.lo, 4), round(one.hi, 4)) == (-0.9981, 1.9228)  # the hand-computed BC interval above


def test_the_mean_over_data_sets_averages_values_and_resamples():
    d = np.linspace(-1.0, 3.0, 401)
    flat = np.full(401, 0.4)  # a set whose difference is 0.4 on every resample: order cannot matter
    mean = Difference.mean_over_sets([(0.0, d, np.zeros(401)), (0.4, flat, np.zeros(401))])
    assert mean == Difference.paired(0.2, (d + 0.4) / 2, np.zeros(401))
    assert mean.value == pytest.approx(0.2)
    # the hand-computed BC interval of d above, shifted by 0.4 and halved
    assert (mean.lo, mean.hi) == (pytest.approx((-0.9981 + 0.4) / 2, abs=1e-4), pytest.approx((1.9228 + 0.4) / 2, abs=1e-4))


def test_data_sets_are_resampled_independently_not_in_lockstep():
    """Two sets with the same resampled differences: in lockstep their mean would keep one set's spread; drawn
    independently it shrinks by about sqrt(2)."""
    d = np.random.default_rng(3).normal(0.0, 1.0, 4000)
    one = Difference.mean_over_sets([(0.0, d, np.zeros(4000))])
    two = Difference.mean_over_sets([(0.0, d, np.zeros(4000)), (0.0, d, np.zeros(4000))])
    ratio = (two.hi - two.lo) / (one.hi - one.lo)
    assert 0.65 < ratio < 0.77 and abs(ratio - 1 / math.sqrt(2)) < 0.05


def test_the_mean_over_data_sets_needs_equal_resample_counts():
    with pytest.raises(ValueError, match=r"same number of resamples \(got \[3, 4\]\)"):
        Difference.mean_over_sets([(0.0, np.zeros(3), np.zeros(3)), (0.0, np.zeros(4), np.zeros(4))])
    with pytest.raises(ValueError, match="at least one data set"):
        Difference.mean_over_sets([])


def test_each_set_keeps_its_own_pairing_when_shuffled():
    """Three sets whose b varies by resample but a - b is constant per set (0.1, 0.2, 0.6): whatever order each
    set is drawn in, every resample of the mean differs by exactly 0.3, so the interval collapses onto it. If b
    were not re-ordered with a, or two sets shared a's order but not b's, it would not."""
    rng = np.random.default_rng(5)
    parts = []
    for d in (0.1, 0.2, 0.6):
        b = rng.normal(0.2, 0.05, 500)
        parts.append((d, b + d, b))
    mean = Difference.mean_over_sets(parts)
    assert mean.value == pytest.approx(0.3)
    assert (mean.lo, mean.hi) == (pytest.approx(0.3), pytest.approx(0.3))


def test_a_nan_resample_of_one_set_is_left_out_of_the_mean():
    d = np.linspace(-1.0, 3.0, 401)
    with_nan = np.append(d, np.nan)  # the first set keeps its order, the second is constant: order cannot matter
    mean = Difference.mean_over_sets([(1.0, with_nan, np.zeros(402)), (1.0, np.full(402, 1.0), np.zeros(402))])
    assert mean == Difference.paired(1.0, (d + 1.0) / 2, np.zeros(401))  # the NaN resample dropped, not the set



def test_a_difference_between_arms_by_hand():
    """One data set: arm a of three fits, arm b of one; the variance adds a's fit variance over its fit count to
    the trials' variance of the difference; Welch-Satterthwaite's degrees of freedom count only the fits' term."""
    from scipy.stats import t as student_t

    rng = np.random.default_rng(0)
    boot_a, boot_b = rng.normal(0.305, 0.003, 500), rng.normal(0.30, 0.003, 500)
    part = ArmPart(0.005, (0.30, 0.31, 0.305), (0.30,), boot_a, boot_b)
    trials = np.var(boot_a - boot_b, ddof=1)
    fits = np.var([0.30, 0.31, 0.305], ddof=1) / 3
    df = (trials + fits) ** 2 / (fits**2 / 2)
    half = student_t.ppf(0.975, df) * np.sqrt(trials + fits)
    d = Difference.between_arms([part])
    assert d.value == 0.005
    assert (d.lo, d.hi) == pytest.approx((0.005 - half, 0.005 + half), rel=1e-12)


def test_arms_of_one_fit_give_the_normal_interval_of_the_trials():
    rng = np.random.default_rng(1)
    boot_a, boot_b = rng.normal(0.31, 0.002, 800), rng.normal(0.30, 0.002, 800)
    d = Difference.between_arms([ArmPart(0.01, (0.31,), (0.30,), boot_a, boot_b)])
    half = NormalDist().inv_cdf(0.975) * np.std(boot_a - boot_b, ddof=1)
    assert (d.lo, d.hi) == pytest.approx((0.01 - half, 0.01 + half), rel=1e-12)


def test_between_arms_averages_data_sets_and_leaves_out_nan_resamples():
    rng = np.random.default_rng(2)
    parts = []
    for value in (0.01, 0.03):
        a, b = rng.normal(0.3 + value, 0.002, 400), rng.normal(0.3, 0.002, 400)
        a[:5] = np.nan
        parts.append(ArmPart(value, (0.3 + value - 0.001, 0.3 + value + 0.001), (0.3, 0.301), a, b))
    d = Difference.between_arms(parts)
    assert d.value == pytest.approx(0.02)
    trials = sum(np.nanvar(p.boot_a - p.boot_b, ddof=1) for p in parts) / 4
    fit_terms = [np.var(f, ddof=1) / 2 / 4 for p in parts for f in (p.fits_a, p.fits_b)]
    total = trials + sum(fit_terms)
    df = total**2 / sum(t**2 / 1 for t in fit_terms)
    from scipy.stats import t as student_t

    assert d.hi - d.value == pytest.approx(student_t.ppf(0.975, df) * np.sqrt(total), rel=1e-12)
    with pytest.raises(ValueError, match="at least one data set"):
        Difference.between_arms([])


@pytest.mark.parametrize("k", [2, 3, 6])
def test_identical_configurations_resolve_about_one_time_in_twenty(k):
    """Two arms of one configuration (true difference 0), k fits each with a spread twice the trials' noise:
    the interval leaves out 0 close to the nominal 5 % of the time, where the paired interval of two single
    fits, which holds the fits fixed, resolves most such differences."""
    rng = np.random.default_rng(k)
    n_boot, reps, resolved, singles = 200, 400, 0, 0
    for _ in range(reps):
        trial_noise = rng.normal(0, 0.0015, n_boot)  # shared by every fit: the same resampled trials
        fits_a, fits_b = rng.normal(0.3, 0.003, k), rng.normal(0.3, 0.003, k)
        boot_a, boot_b = fits_a.mean() + trial_noise, fits_b.mean() + trial_noise
        boot_a = boot_a + rng.normal(0, 0.0005, n_boot)  # fit-by-trial interaction: not all trial noise cancels
        d = Difference.between_arms([ArmPart(fits_a.mean() - fits_b.mean(), tuple(fits_a), tuple(fits_b), boot_a,
                                             boot_b)])
        resolved += not d.tie
        one = Difference.paired(fits_a[0] - fits_b[0], fits_a[0] + trial_noise + rng.normal(0, 0.0005, n_boot),
                                fits_b[0] + trial_noise)
        singles += not one.tie
    assert resolved / reps <= 0.08
    assert singles / reps >= 0.6


def test_across_sets_is_a_t_interval_over_the_sets_differences():
    from scipy.stats import t as student_t

    d = Difference.across_sets([0.0007, 0.0016, 0.0033])
    half = student_t.ppf(0.975, 2) * np.std([0.0007, 0.0016, 0.0033], ddof=1) / np.sqrt(3)
    assert d.value == pytest.approx(0.0056 / 3) and (d.lo, d.hi) == pytest.approx((d.value - half, d.value + half))
    assert d.tie  # resolved set by set, yet three sets' spread does not exclude 0
    one = Difference.across_sets([0.01])
    assert one.value == 0.01 and math.isnan(one.lo) and one.tie


def test_welch_over_fits_on_one_shared_set_by_hand():
    from scipy.stats import t as student_t

    a, b = [0.3155, 0.3228, 0.3269], [0.3237, 0.3276, 0.3284]
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    half = student_t.ppf(0.975, df) * np.sqrt(va + vb)
    d = Difference.welch(a, b)
    assert d.value == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.lo, d.hi) == pytest.approx((d.value - half, d.value + half), rel=1e-12)
    assert math.isnan(Difference.welch([0.3], [0.2]).lo)  # one fit a side: no spread to go on


def test_arms_at_the_same_model_seeds_count_the_spread_of_their_differences():
    """Fits at one seed that move together (a shared first stage): paired, only the per-seed differences' spread
    enters; unpaired, each arm's whole spread does."""
    from scipy.stats import t as student_t

    rng = np.random.default_rng(3)
    shared = np.array([0.300, 0.306, 0.303, 0.309])  # each seed's own luck, the same in both arms
    fits_a, fits_b = tuple(shared + [0.002, 0.0015, 0.0025, 0.002]), tuple(shared)
    boot = rng.normal(0, 0.0005, 400)
    value = float(np.mean(fits_a) - np.mean(fits_b))
    kw = dict(boot_a=np.mean(fits_a) + boot, boot_b=np.mean(fits_b) + boot)
    paired = Difference.between_arms([ArmPart(value, fits_a, fits_b, paired=True, **kw)])
    unpaired = Difference.between_arms([ArmPart(value, fits_a, fits_b, **kw)])
    d = np.subtract(fits_a, fits_b)
    half = student_t.ppf(0.975, 3) * np.std(d, ddof=1) / 2  # the trials' term is 0 here (the same resamples)
    assert (paired.lo, paired.hi) == pytest.approx((value - half, value + half), rel=1e-9)
    assert not paired.tie and unpaired.tie
    w = Difference.welch(fits_a, fits_b, paired=True)
    assert (w.lo, w.hi) == pytest.approx((paired.lo, paired.hi), rel=1e-9)


def test_no_spread_left_is_a_nan_interval_everywhere():
    """A constant per-seed difference, or identical per-set differences: no spread to go on, so no interval (a tie),
    in each constructor alike; paired arms of unequal sizes are refused."""
    assert math.isnan(Difference.welch([0.31, 0.32], [0.30, 0.31], paired=True).lo)
    assert math.isnan(Difference.across_sets([0.01, 0.01]).lo)
    flat = np.full(50, 0.3)
    assert Difference.between_arms([ArmPart(0.0, (0.3, 0.3), (0.3, 0.3), flat, flat)]).tie
    with pytest.raises(ValueError, match="paired arms need as many fits each"):
        Difference.between_arms([ArmPart(0.0, (0.3, 0.31), (0.3,), flat, flat, paired=True)])
