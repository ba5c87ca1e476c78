"""bench_gnocchi's paired intervals (claims 1 and 2): resampled scores against hand-computed values, pairing."""

import numpy as np
import pytest

from support.bench_scripts import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_gnocchi")


def test_decoding_boot_scores_each_resample_of_trials_by_hand(bench):
    """4 trials; the resample (2, 0, 1, 1) scores trials 0, 0, 2, 3 with the decoder's predictions kept."""
    y = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 2.0], [2.0, 2.0]])
    pred = y + np.array([[1.0, 0.0], [9.0, 9.0], [0.0, 1.0], [1.0, -1.0]])
    # angles: trial 0 (0,0) vs (1,0): 0 deg; trial 2 (0,2) vs (0,3): 0 deg; trial 3 (2,2) vs (3,1): 45 - 18.43 deg
    ang3 = 45.0 - np.degrees(np.arctan2(1.0, 3.0))
    counts = np.array([[2.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    truth = {"endpoint": y, "target": y, "factors": y}
    got = bench.decoding_boot(truth, {"endpoint": pred, "target": pred, "factors": pred}, counts)
    # rows 0, 0, 2, 3: x = 0, 0, 0, 2 (ss 3, residuals 1 + 1 + 0 + 1 = 3: R2 0); y = 0, 0, 2, 2 (ss 4, residuals
    # 0 + 0 + 1 + 1 = 2: R2 0.5); mean 0.25
    assert got["endpoint R2"][0] == pytest.approx(0.25, abs=1e-12)
    assert got["target R2"][0] == pytest.approx(0.25, abs=1e-12)
    assert got["I"][0] == pytest.approx(0.25, abs=1e-12)
    assert got["angle error deg"][0] == pytest.approx(ang3 / 4, abs=1e-12)
    # all counts 1: the full-sample scores
    assert got["endpoint R2"][1] == pytest.approx(bench.r2(y, pred), abs=1e-12)
    assert got["angle error deg"][1] == pytest.approx(bench.angle_error(y, pred), abs=1e-12)


def test_paired_intervals_share_the_resamples(bench):
    """Same predictions for both models: every paired difference is exactly 0 ([0, 0]: a tie); a constant
    extra error of one model gives a constant difference (an interval of width 0 around it)."""
    from nlb_suite.metrics_bootstrap import resample_counts

    rng = np.random.default_rng(1)
    y = rng.standard_normal((30, 2))
    pred = y + 0.5 * rng.standard_normal((30, 2))
    truth = {"endpoint": y, "target": y, "factors": y}
    preds = {k: pred for k in truth}
    counts = resample_counts(30, 300, bench.BOOT_SEED)
    a = bench.decoding_boot(truth, preds, counts)
    b = bench.decoding_boot(truth, preds, counts)
    point = {k: float(v.mean()) for k, v in a.items()}
    d = bench.differences(point, point, a, b)
    for diff in d.values():
        assert (diff.value, diff.lo, diff.hi) == (0.0, 0.0, 0.0) and diff.tie
    assert a["endpoint R2"].std() > 0.01  # the resamples do vary: unpaired draws would not cancel

    gen = rng.uniform(0.5, 2.0, (3, 8, 6))
    true = gen * np.exp(0.3 * rng.standard_normal((3, 8, 6)))
    ncounts = resample_counts(6, 200, bench.BOOT_SEED)
    g = bench.unseen_boot(gen, true, ncounts)
    point = {k: float(np.nanmean(v)) for k, v in g.items()}
    for diff in bench.differences(point, point, g, bench.unseen_boot(gen, true, ncounts)).values():
        assert (diff.value, diff.lo, diff.hi) == (0.0, 0.0, 0.0)
    other = bench.unseen_boot(gen, true, resample_counts(6, 200, bench.BOOT_SEED + 1))
    assert np.ptp(g["psth R2"] - other["psth R2"]) > 0  # different resamples would not cancel


def test_unseen_boot_per_neuron_statistics_by_hand(bench):
    """2 conditions x 2 bins x 3 neurons; neuron 2's truth is flat (no psth R2); resample (2, 1, 0)."""
    true = np.array([[[1.0, 1.0, 3.0], [2.0, 3.0, 3.0]], [[3.0, 1.0, 3.0], [4.0, 3.0, 3.0]]])
    gen = true.copy()
    gen[:, :, 0] += 1.0  # neuron 0: residuals 4 x 1 over ss 5 (truth 1, 2, 3, 4): R2 0.2
    gen[:, :, 1] = 2.0  # neuron 1: residuals 4 x 1 over ss 4 (truth 1, 3, 1, 3): R2 0
    counts = np.array([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    got = bench.unseen_boot(gen, true, counts)
    np.testing.assert_allclose(got["psth R2"], [(2 * 0.2 + 0.0) / 3, 0.1], atol=1e-12)
    assert got["psth R2"][1] == pytest.approx(bench.psth_r2(gen, true), abs=1e-12)
    # |log ratio| per neuron, mean over conditions: neuron 0 log(2.5/1.5) and log(4.5/3.5); neuron 1
    # |log 2 - log 2| = 0; neuron 2 0
    n0 = 0.5 * (np.log(2.5 / 1.5) + np.log(4.5 / 3.5))
    np.testing.assert_allclose(got["rate |log ratio|"], [2 * n0 / 3, n0 / 3], atol=1e-5)


def test_pair_corr_boot_counts_pairs_of_distinct_resampled_neurons(bench):
    """Neuron counts (2, 1, 1, 0, 1): the pairs of distinct copies, i.e. (0,1) x2, (0,2) x2, (0,4) x2, (1,2),
    (1,4), (2,4); the Pearson correlation over that list of pairs, per condition, mean over conditions."""
    rng = np.random.default_rng(3)
    gen, true = rng.uniform(0.1, 2.0, (2, 9, 5)), rng.uniform(0.1, 2.0, (2, 9, 5))
    counts = np.array([[2.0, 1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    pairs = [(0, 1), (0, 1), (0, 2), (0, 2), (0, 4), (0, 4), (1, 2), (1, 4), (2, 4)]
    want = np.mean([np.corrcoef([np.corrcoef(g.T)[p] for p in pairs], [np.corrcoef(t.T)[p] for p in pairs])[0, 1]
                    for g, t in zip(gen, true)])
    got = bench.pair_corr_boot(gen, true, counts)
    assert got[0] == pytest.approx(want, abs=1e-10)
    assert got[1] == pytest.approx(bench.rate_stats(gen, true)["pair corr match"], abs=1e-10)


def test_dci_boot_refits_on_the_resampled_trials(bench):
    """All counts 1 with folds grouped by trial: the same D and C as `dci` on the full sample with those folds;
    a resample that duplicates trials still gives finite scores in [0, 1]."""
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 4))
    fac = np.column_stack([z[:, 0], z[:, 1] + 0.1 * rng.standard_normal(40), z[:, 2] - z[:, 3]])
    counts = np.vstack([np.ones(40), np.bincount(rng.integers(0, 40, 40), minlength=40)])
    got = bench.dci_boot(z, fac, counts, 0)
    idx = np.arange(40)
    full = bench.dci(z, fac, 0, cv=list(GroupKFold(5).split(idx, groups=idx)))
    assert got["D"][0] == pytest.approx(full["D"], abs=1e-12) and got["C"][0] == pytest.approx(full["C"], abs=1e-12)
    assert np.all((got["D"] >= 0) & (got["D"] <= 1) & (got["C"] >= 0) & (got["C"] <= 1))


def test_held_out_sets_leave_every_target_out_once_with_neighbours_kept(bench):
    """27 conditions (9 targets x 3 versions): sets 0, 1, 2 of 3 conditions each hold out 9 distinct
    conditions covering every target once; each held-out condition's neighbours are the adjacent targets of
    its own version and are never held out in the same set."""
    from types import SimpleNamespace

    types, versions = np.tile(np.arange(9), 3), np.repeat(np.arange(3), 9)
    b = SimpleNamespace(types=types, versions=versions)
    for seed in (0, 1, 5):
        sets = [bench.held_out_conditions(b, seed, 3, shift) for shift in (0, 1, 2)]
        held = [h for s in sets for h, _, _ in s]
        assert len(set(held)) == 9 and sorted(types[held]) == list(range(9))
        for s in sets:
            ids = {h for h, _, _ in s}
            for h, a, c in s:
                assert versions[a] == versions[c] == versions[h]
                assert {(types[h] - 1) % 9, (types[h] + 1) % 9} == {types[a], types[c]}
                assert a not in ids and c not in ids
    assert bench.held_out_conditions(b, 0, 3) == bench.held_out_conditions(b, 0, 3, 0)  # the default is set 0
    assert [h for h, _, _ in bench.held_out_conditions(b, 0, 3)] == [1, 13, 25]  # targets 1, 4, 7; versions 0, 1, 2


def test_dci_refits_fit_half_samples_plainly_and_group_the_copies_of_a_resample(bench):
    """A subset without repeats is scored exactly as `dci` scores those trials; a bootstrap resample's CV
    folds keep every copy of a trial together (the same value as `dci` given those grouped folds)."""
    from sklearn.model_selection import GroupKFold

    from nlb_suite.metrics_bootstrap import resample_counts, subsamples

    rng = np.random.default_rng(2)
    z = rng.standard_normal((40, 6))
    factors = z[:, :3] @ rng.standard_normal((3, 3)) + 0.3 * rng.standard_normal((40, 3))
    sets = subsamples(40, 20, 2, seed=0)
    got = bench.dci_subsampled(z, factors, sets, seed=0)
    for i, idx in enumerate(sets):
        want = bench.dci(z[idx], factors[idx], 0)
        assert (got["D"][i], got["C"][i]) == (want["D"], want["C"])
    counts = resample_counts(40, 1, seed=0)
    idx = np.repeat(np.arange(40), counts[0].astype(int))
    folds = list(GroupKFold(5).split(idx, groups=idx))
    assert all(not set(idx[tr]) & set(idx[te]) for tr, te in folds)
    want = bench.dci(z[idx], factors[idx], 0, cv=folds)
    boot = bench.dci_boot(z, factors, counts, seed=0)
    assert (boot["D"][0], boot["C"][0]) == (want["D"], want["C"])
    plain = bench.dci(z[idx], factors[idx], 0)  # ungrouped folds put copies on both sides: another value
    assert (plain["D"], plain["C"]) != (want["D"], want["C"])
