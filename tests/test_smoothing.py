"""The smoothing baseline and its batched Poisson GLM, against scikit-learn and the published recipe."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from baselines.glm import fit_poisson_glm
from baselines.smoothing import SmoothingBaseline, SmoothingConfig, smooth_spikes, smoothing_window
from nlb_suite.baseline_api import RunContext, build_config, resolve_config
from nlb_suite.datasets.specs import DATASETS
from nlb_suite.errors import ConfigFieldError, NLBInputError
from nlb_suite.metrics import bits_per_spike
from support.smoothing_recipe import context_for, sklearn_recipe, trial_sets

# ----- GLM -------------------------------------------------------------------------------------

def _glm_problem(seed: int = 0, n: int = 3000, p: int = 8, k: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) * 0.4 + rng.standard_normal(p)
    W = rng.standard_normal((p, k)) * 0.2
    Y = rng.poisson(np.exp(X @ W - 1.0)).astype(float)
    return X, Y


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
def test_glm_coefficients_match_sklearn(alpha):
    from sklearn.linear_model import PoissonRegressor

    X, Y = _glm_problem()
    m = fit_poisson_glm(X, Y, alpha, tol=1e-10)
    assert m.converged.all()
    for k in range(Y.shape[1]):
        pr = PoissonRegressor(alpha=alpha, max_iter=10000, tol=1e-12).fit(X, Y[:, k])
        np.testing.assert_allclose(m.coef[:, k], pr.coef_, atol=1e-5)
        np.testing.assert_allclose(m.intercept[k], pr.intercept_, atol=1e-5)


def test_glm_silent_neuron_and_bad_input():
    X, Y = _glm_problem(k=2)
    Y[:, 1] = 0
    m = fit_poisson_glm(X, Y, 0.1)
    assert np.all(m.coef[:, 1] == 0) and m.predict(X)[:, 1].max() < 1e-8
    with pytest.raises(ValueError, match="finite"):
        fit_poisson_glm(np.where(X > 2, np.nan, X), Y, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        fit_poisson_glm(X, Y, -1.0)


# ----- smoothing -------------------------------------------------------------------------------

@pytest.mark.parametrize("kern_sd,bin_ms", [(50, 5), (30, 20), (60, 20), (40, 5)])
def test_smoothing_equals_numpy_same_convolution(kern_sd, bin_ms):
    x = np.random.default_rng(1).poisson(0.3, (4, 100, 3)).astype(np.float32)
    win = smoothing_window(kern_sd, bin_ms)
    want = np.apply_along_axis(lambda v: np.convolve(v, win, "same"), 1, x)
    np.testing.assert_allclose(smooth_spikes(x, win), want, atol=1e-12)


@pytest.fixture(scope="module")
def small(synthetic):
    from nlb_suite.datasets.tensors import load

    return load("mc_maze_small", synthetic("mc_maze_small"), 5, "val")


@pytest.fixture(scope="module")
def fitted(small):
    sd, alpha = DATASETS["mc_maze_small"].smoothing
    model = SmoothingBaseline(SmoothingConfig(kern_sd_ms=sd, alpha=alpha), context_for(small))
    train, evals = trial_sets(small)
    model.fit(train)
    return model, model.predict(evals)


def test_matches_published_recipe(small, fitted):
    """Same held-in rates; co-bps within 0.005 on every third held-out unit (sklearn takes ~1 s a unit)."""
    _, rates = fitted
    sd, alpha = DATASETS["mc_maze_small"].smoothing
    units = slice(None, None, 3)
    with threadpool_limits(1):  # threaded BLAS on tiny per-unit problems only thrashes a shared machine
        heldin, heldout = sklearn_recipe(small.train_spikes_heldin, small.train_spikes_heldout,
                                         small.eval_spikes_heldin, sd, alpha, small.bin_ms, units=units)
    np.testing.assert_allclose(rates.heldin, heldin, rtol=1e-5, atol=1e-7)
    target = small.target["eval_spikes_heldout"]
    assert bits_per_spike(rates.heldout, target) > 0
    ours, theirs = bits_per_spike(rates.heldout[..., units], target[..., units]), bits_per_spike(heldout, target[..., units])
    assert ours > 0
    assert abs(ours - theirs) < 0.005, (ours, theirs)


def test_shapes_dtypes_and_forward(small, fitted):
    model, rates = fitted
    n, t = small.eval_spikes_heldin.shape[:2]
    assert rates.heldin.shape == (n, t, small.eval_spikes_heldin.shape[2])
    assert rates.heldout.shape == (n, t, small.train_spikes_heldout.shape[2])
    for arr in (rates.heldin, rates.heldout):
        assert arr.dtype == np.float32 and np.isfinite(arr).all() and (arr >= 0).all()
    assert rates.heldin_forward is None and rates.heldout_forward is None  # as published
    model.config = dataclasses.replace(model.config, forward="hold")
    held = model.predict(trial_sets(small)[1])
    n_fwd = small.extras["eval_forward_bins"].shape[1]
    assert held.heldout_forward.shape == (n, n_fwd, rates.heldout.shape[2])
    np.testing.assert_array_equal(held.heldin_forward[:, -1], rates.heldin[:, -1])


def test_deterministic(small, fitted):
    _, rates = fitted
    model = SmoothingBaseline(fitted[0].config, context_for(small))
    train, evals = trial_sets(small)
    model.fit(train)
    again = model.predict(evals)
    np.testing.assert_array_equal(again.heldin, rates.heldin)
    np.testing.assert_array_equal(again.heldout, rates.heldout)


# ----- configs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(DATASETS))
def test_default_configs_are_published_settings(name):
    for bin_ms in (5, 20):
        for profile in (None, "fast"):
            cfg, sources = resolve_config(SmoothingBaseline, name, bin_ms, profile=profile)
            assert (cfg.kern_sd_ms, cfg.alpha) == tuple(map(float, DATASETS[name].smoothing))
            assert sources[-1].endswith(f"{name}.yaml") or sources[-1].endswith("profiles.fast")


@pytest.mark.parametrize("values,match", [
    ({"kern_sd_ms": -5}, "kern_sd_ms must be > 0"),
    ({"alpha": -0.1}, "alpha must be >= 0"),
    ({"log_offset": 0}, "log_offset must be > 0"),
    ({"max_iter": 0}, "max_iter must be >= 1"),
    ({"tol": float("nan")}, "tol must be > 0"),
    ({"forward": "extrapolate"}, "forward must be one of none, hold"),
    ({"alpha": "lots"}, "not a valid float"),
    ({"kern_sd": 50}, "unknown key"),
])
def test_rejects_bad_config(values, match):
    with pytest.raises(NLBInputError, match=match):
        build_config(SmoothingBaseline, values, source="test")


def test_rejects_kernel_under_one_bin():
    ctx = RunContext(dataset="mc_maze", bin_ms=20, n_heldin=3, n_heldout=2, n_forward_bins=10)
    with pytest.raises(ConfigFieldError, match="^baseline smoothing: kern_sd_ms=10 is under one 20 ms bin") as info:
        SmoothingBaseline(SmoothingConfig(kern_sd_ms=10), ctx)
    assert info.value.fields == ("kern_sd_ms",)  # a run names the file or flag the value came from
