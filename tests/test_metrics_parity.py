"""nlb_suite.evaluate and the metric functions against nlb_tools, to 1e-9, on all dataset kinds and bins."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import nlb_suite
from nlb_suite import metrics as M
from nlb_suite.errors import NLBInputError
from nlb_suite.h5io import save_h5
from nlb_suite.metrics_ridge import ridge_grid_search_r2
from support.eval_targets import KINDS, make_submission, make_target
from support.nlb_reference import assert_results_equal, nlb_tools_evaluate

logging.getLogger("nlb_tools").setLevel(logging.ERROR)
ev = pytest.importorskip("nlb_tools.evaluation")


@pytest.mark.parametrize("how", ["random", "realistic"])
@pytest.mark.parametrize("bin_ms", [5, 20])
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_matches_nlb_tools(kind, bin_ms, how):
    target, truth = make_target(kind, bin_ms, seed=100 * KINDS.index(kind) + bin_ms)  # fixed per case, not per process
    sub = make_submission(target, truth, how)
    ours = nlb_suite.evaluate(target, sub)
    ref = nlb_tools_evaluate(target, sub)
    assert_results_equal(ours, ref)
    assert all(isinstance(v, float) for d in ours for m in d.values() for v in m.values())


def _all_groups(how: str = "realistic") -> tuple[dict, dict]:
    """Target and submission holding all seven datasets at both bins (like eval_data_test.h5)."""
    target, sub = {}, {}
    names = ["mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium", "mc_maze_small"]
    for i, name in enumerate(names):
        kind = name if name in KINDS else "mc_maze"
        for bin_ms in (5, 20):
            t, truth = make_target(kind, bin_ms, seed=10 * i + bin_ms, n_train=40, n_eval=24)
            s = make_submission(t, truth, how, seed=i)
            key = name + ("" if bin_ms == 5 else "_20")
            target[key], sub[key] = t.popitem()[1], s.popitem()[1]
    return target, sub


def test_scaling_sets_merge_and_order_like_nlb_tools():
    target, sub = _all_groups()
    ours = nlb_suite.evaluate(target, sub)
    ref = nlb_tools_evaluate(target, sub)
    assert_results_equal(ours, ref)
    assert [next(iter(d)) for d in ours] == [
        "mc_maze_split", "mc_maze_20_split", "mc_rtt_split", "mc_rtt_20_split", "area2_bump_split",
        "area2_bump_20_split", "dmfc_rsg_split", "dmfc_rsg_20_split", "mc_maze_scaling_split",
        "mc_maze_scaling_20_split"]
    assert list(ours[8]["mc_maze_scaling_split"])[:4] == ["[500] co-bps", "[500] vel R2", "[500] psth R2",
                                                          "[500] fp-bps"]


def test_h5_files_from_nlb_tools_save_to_h5(tmp_path):
    from nlb_tools.make_tensors import save_to_h5

    target, sub = _all_groups("random")
    for k in list(target)[4:]:  # a smaller file: keep four groups
        target.pop(k)
    save_to_h5(target, str(tmp_path / "target.h5"))
    save_h5(sub, tmp_path / "sub.h5")
    ref = nlb_tools_evaluate(str(tmp_path / "target.h5"), str(tmp_path / "sub.h5"))
    assert_results_equal(nlb_suite.evaluate(tmp_path / "target.h5", str(tmp_path / "sub.h5")), ref)
    assert len(ref) == 4


def test_submission_without_forward_rates_or_missing_groups():
    target, sub = _all_groups()
    for g in sub.values():
        g.pop("eval_rates_heldin_forward")
        g.pop("eval_rates_heldout_forward")
    del sub["mc_rtt"], sub["mc_maze_medium_20"]
    del target["area2_bump"]
    assert_results_equal(nlb_suite.evaluate(target, sub), nlb_tools_evaluate(target, sub))


def test_bits_per_spike_nan_spikes_and_zero_rates():
    rng = np.random.default_rng(3)
    spikes = rng.poisson(0.2, (20, 30, 7)).astype(float)
    spikes[2, 5:9] = np.nan
    spikes[:, :, 3] = 0  # a silent neuron: its null rate becomes 1e-9
    rates = rng.gamma(1.0, 0.2, spikes.shape)
    rates[1, :4] = 0.0
    assert M.bits_per_spike(rates, spikes) == pytest.approx(ev.bits_per_spike(rates.copy(), spikes), abs=1e-12)
    nll = ev.neg_log_likelihood(rates.copy(), spikes, zero_warning=False)
    assert M.neg_log_likelihood(rates, spikes) == pytest.approx(nll, rel=1e-13)


def test_per_neuron_bits_per_spike():
    rng = np.random.default_rng(4)
    spikes = rng.poisson(0.3, (15, 20, 5)).astype(float)
    spikes[0, :3] = np.nan
    rates = rng.gamma(2.0, 0.15, spikes.shape)
    per = M.bits_per_spike_per_neuron(rates, spikes)
    for n in range(5):
        assert per[n] == pytest.approx(ev.bits_per_spike(rates[..., n : n + 1], spikes[..., n : n + 1]), abs=1e-12)
    weights = np.nansum(spikes, axis=(0, 1))
    assert np.sum(per * weights) / weights.sum() == pytest.approx(M.bits_per_spike(rates, spikes), abs=1e-12)


@pytest.mark.parametrize("bad,label", [(-0.1, "negative"), (np.nan, "NaN"), (np.inf, "infinite")])
def test_bad_rates_are_rejected(bad, label):
    spikes = np.ones((3, 4, 2))
    rates = np.full(spikes.shape, 0.5)
    rates[1, 2, 0] = bad
    with pytest.raises(NLBInputError, match=f"^bits_per_spike: 1 {label} value\\(s\\) "
                                            r"\(first at \[1, 2, 0\]; expected finite rates >= 0\)$"):
        M.bits_per_spike(rates, spikes)
    spikes[1, 2, 0] = np.nan  # ignored where the spikes are NaN, as in nlb_tools
    assert np.isfinite(M.bits_per_spike(rates, spikes))


def test_shape_mismatch_is_rejected():
    with pytest.raises(NLBInputError, match=r"rates have shape \(2, 3, 4\) \(expected \(2, 3, 5\)"):
        M.bits_per_spike(np.ones((2, 3, 4)), np.ones((2, 3, 5)))


def test_psth_with_positive_and_negative_jitter():
    rng = np.random.default_rng(5)
    rates = rng.gamma(2, 0.1, (12, 30, 4))
    psth = rng.gamma(2, 0.1, (3, 30, 4))
    psth[:, :3] = np.nan
    psth[:, -2:] = np.nan
    cond_idx = [np.array([0, 3, 4, 7]), np.array([], dtype=int), np.array([1, 2, 5, 6, 8, 9, 10, 11])]
    jitter = np.array([0, 1, -2, 3, 0, -1, 2, 0, 1, -2, 0, 3])
    ref = ev.eval_psth(psth, rates, cond_idx, jitter=jitter)
    assert M.psth_r2(psth, rates, cond_idx, jitter) == pytest.approx(ref, abs=1e-12)
    with pytest.raises(NLBInputError, match="NaN rate predictions within required trial times"):
        M.psth_r2(np.nan_to_num(psth, nan=0.1), rates, cond_idx, jitter)


def test_speed_tp_correlation_and_pearson():
    from scipy.stats import pearsonr

    rng = np.random.default_rng(6)
    spikes = rng.poisson(0.2, (24, 40, 3)).astype(float)
    for i in range(24):
        spikes[i, : 5 + i] = np.nan
    rates = rng.gamma(2, 0.1, (24, 40, 9))
    i = np.arange(24)
    beh = np.stack([i % 2, 180.0 * ((i // 2) % 2), np.zeros(24), rng.uniform(500, 900, 24),
                    rng.uniform(500, 900, 24)], axis=1)
    beh[7] = np.nan
    ref = ev.speed_tp_correlation(spikes, rates, beh)
    assert M.speed_tp_correlation(spikes, rates, beh) == pytest.approx(ref, abs=1e-12)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert M.pearson_r(x, y) == pytest.approx(pearsonr(x, y)[0], abs=1e-14)
    assert np.isnan(M.pearson_r(np.ones(5), y[:5]))


def test_r2_score_like_sklearn_with_constant_columns():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(7)
    y = rng.normal(size=(40, 4))
    y[:, 2] = 1.0
    p = y + rng.normal(0, 0.5, y.shape)
    assert M.r2_score(y, p) == pytest.approx(r2_score(y, p), abs=1e-14)
    p[:, 2] = 1.0
    assert M.r2_score(y, p) == pytest.approx(r2_score(y, p), abs=1e-14)


@pytest.mark.parametrize("n,p", [(1003, 15), (2507, 40), (404, 60)])
def test_ridge_grid_search_matches_sklearn(n, p):
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    rng = np.random.default_rng(n)
    z = rng.normal(size=(n, 4))
    x = np.exp(z @ rng.normal(0, 0.4, (4, p)) - 2.5) + rng.gamma(2, 0.01, (n, p))
    x[:, 0] = 0.05  # a constant (silent) input
    y = z[:, :2] + rng.normal(0, 0.8, (n, 2))
    xe, ye = x[: n // 3] * 1.05, y[: n // 3]
    grid = GridSearchCV(Ridge(), {"alpha": np.logspace(-4, 0, 9)}).fit(x, y)
    r2, pred = ridge_grid_search_r2(x, y, xe, ye)
    assert r2 == pytest.approx(grid.score(xe, ye), abs=1e-10)
    assert np.allclose(pred, grid.predict(xe), atol=1e-10)


def test_ridge_ties_pick_the_first_alpha():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(100, 3))
    y = np.ones((100, 2))  # every alpha scores R^2 = 1 on every fold
    r2, pred = ridge_grid_search_r2(x, y, x, y)
    assert r2 == 1.0 and np.allclose(pred, 1.0)


def test_velocity_decoding_with_two_masks_matches_nlb_tools():
    rng = np.random.default_rng(9)
    tr, evr = rng.gamma(2, 0.1, (50, 20, 10)), rng.gamma(2, 0.1, (20, 20, 10))
    tb = tr[..., :2] @ np.ones((2, 2)) + rng.normal(0, 0.1, (50, 20, 2))
    eb = evr[..., :2] @ np.ones((2, 2)) + rng.normal(0, 0.1, (20, 20, 2))
    tb[0, -3:] = np.nan
    tm = np.stack([np.arange(50) % 3 == 0, np.arange(50) % 3 != 0]).T
    em = np.stack([np.arange(20) % 2 == 0, np.arange(20) % 2 == 1]).T
    ref = ev.velocity_decoding(tr, tb, tm, evr, eb, em)
    assert M.velocity_decoding(tr, tb, tm, evr, eb, em) == pytest.approx(ref, abs=1e-10)
