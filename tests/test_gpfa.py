"""GPFA baseline: exact batched inference, monotone EM, recovery of a simulated GPFA, co-bps and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.gpfa import GPFABaseline, GPFAConfig
from baselines.gpfa_core import GPFAParams, fit_em, infer, rbf_kernels, segments
from nlb_suite.baseline_api import RunContext, TrialSet, resolve_config
from nlb_suite.datasets.specs import DATASETS
from nlb_suite.metrics import bits_per_spike


@pytest.fixture(autouse=True)
def one_blas_thread():
    """One BLAS thread: on shared, loaded cores multithreaded OpenBLAS is far slower for these small matrices."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


def simulate(n: int, t: int, q: int, tau_bins: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, GPFAParams]:
    """Trials (n, t, q) and their latents (n, p, t) drawn from a GPFA model."""
    rng = np.random.default_rng(seed)
    p = len(tau_bins)
    eps = np.full(p, 1e-3)
    params = GPFAParams(C=rng.normal(size=(q, p)), d=rng.normal(size=q), R=rng.uniform(0.2, 0.6, size=q),
                        gamma=1.0 / tau_bins**2, eps=eps)
    chol = np.linalg.cholesky(rbf_kernels(params.gamma, eps, t))
    x = np.einsum("pts,nps->npt", chol, rng.normal(size=(n, p, t)))
    y = np.einsum("qp,npt->ntq", params.C, x) + params.d + rng.normal(size=(n, t, q)) * np.sqrt(params.R)
    return y, x, params


def test_batched_inference_matches_dense_gaussian():
    """Log-likelihood and posterior means equal the textbook dense-covariance formulas."""
    y, _, params = simulate(n=3, t=6, q=4, tau_bins=np.array([2.0, 4.0]), seed=1)
    n, t, q = y.shape
    p = params.x_dim
    k = rbf_kernels(params.gamma, params.eps, t)
    k_big = np.zeros((p * t, p * t))  # latent-major
    for i in range(p):
        k_big[i * t:(i + 1) * t, i * t:(i + 1) * t] = k[i]
    obs = np.kron(params.C, np.eye(t))  # (q*t, p*t): unit-major y from latent-major x
    cov = obs @ k_big @ obs.T + np.kron(np.diag(params.R), np.eye(t))
    yv = (y - params.d).transpose(0, 2, 1).reshape(n, q * t)
    sign, logdet = np.linalg.slogdet(cov)
    ll = -0.5 * (n * (q * t * np.log(2 * np.pi) + logdet) + np.einsum("ni,ij,nj->", yv, np.linalg.inv(cov), yv))
    means = (k_big @ obs.T @ np.linalg.solve(cov, yv.T)).T.reshape(n, p, t)
    post = infer(y, params)
    assert post.log_likelihood == pytest.approx(ll, rel=1e-10)
    np.testing.assert_allclose(post.means, means, atol=1e-10)
    post_cov = k_big - k_big @ obs.T @ np.linalg.solve(cov, obs @ k_big)
    np.testing.assert_allclose(post.cov.reshape(p * t, p * t), post_cov, atol=1e-10)


def test_segments_cover_trial():
    y = np.arange(2 * 50 * 1, dtype=float).reshape(2, 50, 1)
    seg = segments(y, 20)
    assert seg.shape == (6, 20, 1)
    assert seg[0, 0, 0] == 0 and seg[2, -1, 0] == 49  # first and last bins of trial 0 covered


def test_em_recovers_simulated_gpfa():
    """Monotone EM; posterior means explain the true latents; timescales roughly recovered."""
    tau = np.array([2.0, 6.0])
    y, x, _ = simulate(n=80, t=30, q=25, tau_bins=tau, seed=0)
    res = fit_em(y, 2, em_iters=60, tol=0.0, tau_init_bins=4.0)
    lls = np.array(res.log_likelihoods)
    assert np.all(np.diff(lls) >= -1e-6 * np.abs(lls[:-1]))
    post = infer(y, res.params, need_cov=False)
    est = post.means.transpose(0, 2, 1).reshape(-1, 2)
    true = x.transpose(0, 2, 1).reshape(-1, 2)
    design = np.column_stack([est, np.ones(len(est))])
    coef, *_ = np.linalg.lstsq(design, true, rcond=None)
    r2 = 1 - ((true - design @ coef) ** 2).sum(0) / ((true - true.mean(0)) ** 2).sum(0)
    assert np.all(r2 > 0.9), r2
    got = np.sort(res.params.tau_bins())
    np.testing.assert_allclose(got, tau, rtol=0.3)


def _trial_sets(tensors):
    ti, ei, ex = tensors.train_input, tensors.eval_input, tensors.extras
    train = TrialSet("train", ti["train_spikes_heldin"], tensors.train_trial_ids, ex["train_bins"],
                     ex["train_forward_bins"], spikes_heldout=ti["train_spikes_heldout"],
                     spikes_heldin_forward=ti["train_spikes_heldin_forward"],
                     spikes_heldout_forward=ti["train_spikes_heldout_forward"])
    evals = TrialSet("eval", ei["eval_spikes_heldin"], tensors.eval_trial_ids, ex["eval_bins"], ex["eval_forward_bins"])
    return train, evals


@pytest.fixture(scope="module")
def small_maze(tmp_path_factory):
    from nlb_suite.datasets.synthetic import write_synthetic
    from nlb_suite.datasets.tensors import load

    root = tmp_path_factory.mktemp("gpfa_maze")
    write_synthetic("mc_maze_small", root, trials=40)
    tensors = load("mc_maze_small", sorted(root.glob("**/*.nwb"))[0].parent, 5, "val")
    train, evals = _trial_sets(tensors)
    ctx = RunContext("mc_maze_small", 5, train.spikes_heldin.shape[2], train.spikes_heldout.shape[2],
                     train.forward_bins.shape[1], seed=3)
    return tensors, train, evals, ctx


def _run(small_maze, **overrides):
    tensors, train, evals, ctx = small_maze
    cfg = GPFAConfig(**{"latent_dim": 8, "alpha1": 0.01, "em_iters": 30, **overrides})
    model = GPFABaseline(cfg, ctx)
    model.fit(train)
    return model, model.predict(evals)


def test_co_bps_positive_and_deterministic(small_maze):
    tensors = small_maze[0]
    model, rates = _run(small_maze, forward=True)
    n, t, _ = tensors.eval_spikes_heldin.shape
    assert rates.heldout.shape == (n, t, tensors.train_spikes_heldout.shape[2])
    assert rates.heldin_forward.shape[1] == small_maze[2].forward_bins.shape[1]
    assert np.all(np.isfinite(rates.heldout)) and rates.heldin.min() >= 1e-10 * 0.99
    co_bps = bits_per_spike(rates.heldout, tensors.target["eval_spikes_heldout"])
    assert co_bps > 0.0, co_bps
    lls = np.array(model.em.log_likelihoods)
    assert np.all(np.diff(lls) >= -1e-8 * np.abs(lls[:-1]))
    _, again = _run(small_maze, forward=True)
    np.testing.assert_array_equal(again.heldout, rates.heldout)
    np.testing.assert_array_equal(again.heldin_forward, rates.heldin_forward)


def test_configs_match_published_settings():
    for name, spec in DATASETS.items():
        for bin_ms in (5, 20):
            cfg, sources = resolve_config(GPFABaseline, name, bin_ms)
            assert (cfg.latent_dim, cfg.alpha1, cfg.alpha2) == tuple(spec.gpfa), name
            fast, _ = resolve_config(GPFABaseline, name, bin_ms, profile="fast")
            assert fast.em_iters < cfg.em_iters and fast.latent_dim <= cfg.latent_dim
