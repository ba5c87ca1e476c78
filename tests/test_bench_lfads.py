"""benchmarks/lfads_bench_common.py's paired intervals over eval trials, and the summary tables of
bench_lfads_cd.py and bench_lfads_sbtt.py built on them (which epochs and models they pair)."""

import numpy as np
import pytest

from nlb_suite.report.paired import Difference
from support.bench_scripts import load_bench


@pytest.fixture(scope="module")
def common():
    return load_bench("lfads_bench_common")


def _data(seed=0, n=7, t=11, q=5):
    rng = np.random.default_rng(seed)
    true = rng.gamma(2.0, 0.1, size=(n, t, q))
    spikes = rng.poisson(true).astype(np.float64)
    pred = true * np.exp(rng.normal(0, 0.3, size=true.shape))
    mask = rng.random(true.shape) < 0.6
    return true, spikes, pred, mask


def test_whole_sample_sums_give_the_direct_scores(common):
    true, spikes, pred, mask = _data()
    whole = np.ones((1, true.shape[0]))
    for m in (None, mask):
        assert common.BOOT["bps"](common.bps_sums(pred, spikes, m), whole)[0] == pytest.approx(
            common.masked_bps(pred, spikes, m), abs=1e-12)
        assert common.BOOT["r2"](common.r2_sums(pred, true, m), whole)[0] == pytest.approx(
            common.rate_r2(pred, true, m), abs=1e-10)


def test_a_resample_scores_as_the_trials_it_repeats(common):
    true, spikes, pred, mask = _data(seed=1)
    counts = np.array([[2.0, 0.0, 1.0, 3.0, 0.0, 1.0, 0.0]])  # trial 0 twice, trial 3 three times, ...
    rows = np.repeat(np.arange(7), counts[0].astype(int))
    boot_bps = common.BOOT["bps"](common.bps_sums(pred, spikes, mask), counts)[0]
    boot_r2 = common.BOOT["r2"](common.r2_sums(pred, true, mask), counts)[0]
    assert boot_bps == pytest.approx(common.masked_bps(pred[rows], spikes[rows], mask[rows]), abs=1e-12)
    assert boot_r2 == pytest.approx(common.rate_r2(pred[rows], true[rows], mask[rows]), abs=1e-10)


def test_r2_leaves_out_neurons_with_one_entry_or_none(common):
    true, _, pred, _ = _data(seed=2, n=3, t=4, q=3)
    mask = np.zeros(true.shape, dtype=bool)
    mask[:, :, 0] = True  # neuron 0: 12 entries
    mask[1, 2, 1] = True  # neuron 1: a single entry; neuron 2: none
    whole = np.ones((1, 3))
    got = common.BOOT["r2"](common.r2_sums(pred, true, mask), whole)[0]
    assert got == pytest.approx(common.rate_r2(pred[..., :1], true[..., :1]), abs=1e-10)
    assert got == pytest.approx(common.rate_r2(pred, true, mask), abs=1e-10)


def test_paired_differences_per_set_and_on_the_mean(common):
    sets = [_data(seed=s) for s in (3, 4)]
    pairs = [(common.r2_sums(pred, true), common.r2_sums(true * 1.2, true)) for true, _, pred, _ in sets]
    one = common.paired_differences(pairs[:1], "r2")
    two = common.paired_differences(pairs, "r2")
    assert len(one) == 1 and len(two) == 3  # one set: no mean row
    direct = [common.rate_r2(pred, true) - common.rate_r2(true * 1.2, true) for true, _, pred, _ in sets]
    assert [d.value for d in two[:2]] == pytest.approx(direct, abs=1e-10)
    assert two[2].value == pytest.approx(np.mean(direct), abs=1e-10)
    assert one[0] == two[0]
    assert all(d.lo <= d.value <= d.hi for d in two)
    same = common.paired_differences([(pairs[0][0], pairs[0][0])], "r2")[0]
    assert same == Difference(0.0, 0.0, 0.0) and same.tie


def test_paired_bits_per_spike_and_a_shift_that_every_resample_sees(common):
    true, spikes, pred, mask = _data(seed=7)
    better, worse = common.bps_sums(true, spikes, mask), common.bps_sums(true * 3.0, spikes, mask)
    d = common.paired_differences([(better, worse)], "bps")[0]
    assert d.value == pytest.approx(common.masked_bps(true, spikes, mask) - common.masked_bps(true * 3.0, spikes, mask),
                                    abs=1e-12)
    assert 0 < d.lo <= d.value <= d.hi  # tripled rates lose on every resample: resolved


def test_seed_columns_add_a_mean_only_over_several_seeds(common):
    assert common.seed_columns([3]) == ["data seed 3"]
    assert common.seed_columns([3, 5]) == ["data seed 3", "data seed 5", "mean"]


def test_cd_summary_pairs_each_model_at_its_own_picked_epoch():
    cd = load_bench("bench_lfads_cd")
    common = load_bench("lfads_bench_common")
    true, spikes, pred, _ = _data(seed=5)

    def run(rate, recon_epoch, sv_epoch, scale):
        per = [{"sums": {"co_bps": common.bps_sums(pred * scale * (1 + e / 10), spikes),
                         "heldin_r2": common.r2_sums(pred * scale * (1 + e / 10), true)}} for e in range(4)]
        return {"cd": rate, "per_epoch": per, "picks": {"valid_recon pick": recon_epoch, "valid_sv_nll pick": sv_epoch}}

    runs = [run(0.0, 3, 0, 1.0), run(0.3, 1, 2, 0.9)]
    rows = cd.summary_rows({0: runs}, [0.0, 0.3])
    assert [r[:2] for r in rows] == [
        ["cd 0.3 - cd 0, each at its valid_recon pick", "co-bps"],
        ["cd 0.3 - cd 0, each at its valid_recon pick", "R2 held-in"],
        ["cd 0.3 - cd 0, each at its valid_sv_nll pick", "co-bps"],
        ["cd 0.3 - cd 0, each at its valid_sv_nll pick", "R2 held-in"],
        ["cd 0: valid_recon pick - valid_sv_nll pick", "co-bps"],
        ["cd 0: valid_recon pick - valid_sv_nll pick", "R2 held-in"]]

    def r2(scale, e):
        return common.rate_r2(pred * scale * (1 + e / 10), true)

    def bps(scale, e):
        return common.masked_bps(pred * scale * (1 + e / 10), spikes)

    expected = [r2(0.9, 1) - r2(1.0, 3), r2(0.9, 2) - r2(1.0, 0), r2(1.0, 3) - r2(1.0, 0)]
    got = [float(rows[i][2].split()[0]) for i in (1, 3, 5)]
    assert got == pytest.approx(expected, abs=1e-4)
    assert float(rows[0][2].split()[0]) == pytest.approx(bps(0.9, 1) - bps(1.0, 3), abs=1e-4)
    assert len(rows[0]) == 3  # one data seed: no mean column
    other = [run(0.0, 0, 0, 1.0), run(0.3, 3, 3, 0.9)]  # a second data seed, other picks
    two = cd.summary_rows({0: runs, 1: other}, [0.0, 0.3])
    second = r2(0.9, 3) - r2(1.0, 0)
    assert [float(c.split()[0]) for c in two[1][2:]] == pytest.approx([expected[0], second, (expected[0] + second) / 2],
                                                                      abs=1e-4)
    assert cd.contrasts([0.3, 0.5]) == []  # nothing to compare with without the no-CD model


def test_sbtt_summary_rows_per_fraction_and_measure():
    sbtt = load_bench("bench_lfads_sbtt")
    common = load_bench("lfads_bench_common")
    true, spikes, pred, mask = _data(seed=6)
    full = common.r2_sums(true, true, mask)
    seed_pairs = {0.5: {"miss R2": ("r2", common.r2_sums(pred, true, mask), full)},
                  0.8: {"miss R2": ("r2", common.r2_sums(pred * 2, true, mask), full)}}
    rows = sbtt.summary_rows({0: seed_pairs, 1: seed_pairs})
    assert [r[:2] for r in rows] == [["0.5 - 0", "miss R2"], ["0.8 - 0", "miss R2"]]
    assert len(rows[0]) == 5  # two seeds and the mean
    want = common.rate_r2(pred * 2, true, mask) - 1.0
    assert float(rows[1][2].split()[0]) == pytest.approx(want, abs=1e-4)
    assert float(rows[1][4].split()[0]) == pytest.approx(want, abs=1e-4)  # the mean of two equal seeds


def test_sbtt_scores_both_models_on_the_entries_the_sparse_one_never_saw():
    from types import SimpleNamespace

    from nlb_suite.baseline_api import Rates

    sbtt = load_bench("bench_lfads_sbtt")
    common = load_bench("lfads_bench_common")
    true, spikes, pred, miss = _data(seed=8)
    out_true, out_spikes, out_pred, _ = _data(seed=9, q=3)
    data = SimpleNamespace(target={"eval_spikes_heldout": out_spikes}, evals=SimpleNamespace(spikes_heldin=spikes),
                           truth_eval=SimpleNamespace(heldin=true))
    full = Rates(heldin=true, heldout=out_true, heldin_forward=None, heldout_forward=None)
    sparse = Rates(heldin=pred, heldout=out_pred, heldin_forward=None, heldout_forward=None)
    pairs = sbtt.hidden_entry_pairs(data, {0.0: {"eval": full}, 0.5: {"eval": sparse, "miss_ev": miss}})
    assert list(pairs) == [0.5] and list(pairs[0.5]) == ["co-bps", "miss bps", "miss R2"]
    whole = np.ones((1, true.shape[0]))

    def score(kind, sums):
        return common.BOOT[kind](sums, whole)[0]

    kind, a, b = pairs[0.5]["miss bps"]
    assert (score(kind, a), score(kind, b)) == pytest.approx(
        (common.masked_bps(pred, spikes, miss), common.masked_bps(true, spikes, miss)), abs=1e-12)
    kind, a, b = pairs[0.5]["miss R2"]
    assert (score(kind, a), score(kind, b)) == pytest.approx((common.rate_r2(pred, true, miss), 1.0), abs=1e-10)
    kind, a, b = pairs[0.5]["co-bps"]
    assert (score(kind, a), score(kind, b)) == pytest.approx(
        (common.masked_bps(out_pred, out_spikes), common.masked_bps(out_true, out_spikes)), abs=1e-12)
