"""LFADS baseline: output shapes, coordinated dropout and SBTT gradients, priors, determinism, end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.lfads import LFADSBaseline, LFADSConfig, prepare  # noqa: E402
from baselines.lfads_model import LFADS, AR1Prior, gaussian_kl  # noqa: E402
from nlb_suite.baseline_api import (  # noqa: E402
    RunContext,
    TrialSet,
    build_config,
    check_known_keys,
    get_baseline,
    resolve_config,
)
from nlb_suite.errors import ConfigFieldError, NLBInputError  # noqa: E402
from nlb_suite.seeding import seed_everything  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)

TINY = dict(ic_enc_dim=6, ci_enc_dim=4, con_dim=4, co_dim=2, ic_dim=4, gen_dim=6, fac_dim=3, batch_size=8,
            max_epochs=3, patience=3, kl_increase_epoch=2, l2_increase_epoch=2, lr_schedule="cosine")
N_IN, N_OUT, T, FWD = 5, 3, 12, 4




def trials(n: int = 20, seed: int = 0) -> TrialSet:
    """Random Poisson train trials with held-out neurons and forward bins."""
    return poisson_trials(n, T, N_IN, N_OUT, FWD, seed, rate=0.3, first_id=0)


def context(seed: int = 0, run_dir=None) -> RunContext:
    return RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=N_IN, n_heldout=N_OUT, n_forward_bins=FWD,
                      seed=seed, run_dir=run_dir)


def baseline(seed: int = 0, **overrides) -> LFADSBaseline:
    return LFADSBaseline(LFADSConfig(**{**TINY, **overrides}), context(seed))


def test_network_output_shapes():
    """Log-rates and controller outputs cover T + forward steps; IC posterior has ic_dim."""
    seed_everything(0)
    model = LFADS(LFADSConfig(ic_enc_dim=6, ci_enc_dim=4, con_dim=4, co_dim=2, ic_dim=4, gen_dim=6, fac_dim=3,
                              ci_lag=2).dims(n_in=N_IN, n_out=N_IN + N_OUT, n_fwd=FWD))
    out = model(torch.rand(7, T, N_IN), sample=True)
    assert out.log_rates.shape == (7, T + FWD, N_IN + N_OUT)
    assert out.factors.shape == (7, T + FWD, 3)
    assert out.co_mean.shape == out.co_std.shape == (7, T + FWD, 2)
    assert out.ic_mean.shape == out.ic_std.shape == (7, 4)
    assert torch.all(out.ic_std >= math.sqrt(1e-4))
    assert torch.all(torch.isfinite(out.log_rates))
    norms = torch.nn.functional.normalize(model.factors.weight, dim=1).norm(dim=1)
    assert torch.allclose(norms, torch.ones(3))


def test_fit_predict_shapes_and_determinism(tmp_path):
    """Two fits with one seed give identical rates of the right shapes; a checkpoint and curves are written."""
    train = trials()
    a = LFADSBaseline(LFADSConfig(**TINY), context(seed=5, run_dir=tmp_path))
    a.fit(train)
    ra = a.predict(train)
    b = baseline(seed=5)
    b.fit(train)
    rb = b.predict(train)
    assert ra.heldin.shape == (20, T, N_IN) and ra.heldout.shape == (20, T, N_OUT)
    assert ra.heldin_forward.shape == (20, FWD, N_IN) and ra.heldout_forward.shape == (20, FWD, N_OUT)
    for name in ("heldin", "heldout", "heldin_forward", "heldout_forward"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
        assert np.all(np.isfinite(getattr(ra, name))) and np.all(getattr(ra, name) > 0)
    assert (tmp_path / "curves.csv").read_text().splitlines()[0].startswith("epoch,train_loss,valid_loss")
    assert (tmp_path / "lfads_best.pt").exists()
    sampled = baseline(seed=5, n_samples=3)
    sampled.fit(train)
    assert sampled.predict(train).heldout.shape == (20, T, N_OUT)


def test_valid_seed_fixes_the_split_across_model_seeds_and_unset_it_is_the_run_seed():
    """valid_seed equal to the run's seed fits exactly as leaving it unset (split and sample-validation mask);
    set, another model seed validates on the same trials yet trains differently; unset, it draws another split."""
    train = trials()
    unset, named = baseline(seed=5, sv_rate=0.2), baseline(seed=5, sv_rate=0.2, valid_seed=5)
    other, free = baseline(seed=6, sv_rate=0.2, valid_seed=5), baseline(seed=6, sv_rate=0.2)
    for model in (unset, named, other, free):
        model.fit(train)
    np.testing.assert_array_equal(unset.predict(train).heldout, named.predict(train).heldout)
    np.testing.assert_array_equal(other.validation_trials(), named.validation_trials())
    assert not np.array_equal(free.validation_trials(), named.validation_trials())
    assert not np.array_equal(other.predict(train).heldout, named.predict(train).heldout)



def test_the_sample_validation_mask_follows_valid_seed(monkeypatch):
    """The split and the sample-validation mask come from one generator, seeded by valid_seed when set: the
    seeds fit() hands numpy's default_rng."""
    train, seen, real = trials(), [], np.random.default_rng
    monkeypatch.setattr(np.random, "default_rng", lambda seed=None: seen.append(seed) or real(seed))
    baseline(seed=6, sv_rate=0.2, valid_seed=5).fit(train)
    baseline(seed=6, sv_rate=0.2).fit(train)
    assert [s for s in seen if isinstance(s, int)] == [5, 6]  # (internal_split re-wraps the Generator it is given)


def _batch_grads(model_base: LFADSBaseline, data, idx, sv, cd):
    """Gradient of the scaled loss w.r.t. the log-rates of one batch (no dropout, fixed KL sample)."""
    model_base.model.eval()
    seed_everything(0)
    out = model_base.model(model_base.model_input(data, idx, torch.ones_like(sv)), sample=False)
    out.log_rates.retain_grad()
    loss, _ = model_base.loss(out, data, idx, sv, cd, epoch=0)
    loss.backward()
    return loss.detach(), out.log_rates.grad


def test_coordinated_dropout_routes_gradients():
    """Held-in recon gradients flow only through entries dropped at the input; held-out and forward always."""
    seed_everything(0)
    lf = baseline()
    lf.build(N_IN, N_IN + N_OUT)
    data = prepare(trials(6), FWD, torch.device("cpu"))
    idx = torch.arange(6)
    sv = torch.zeros(6, T, N_IN)
    cd = torch.bernoulli(torch.full((6, T, N_IN), 0.7))
    _, grad = _batch_grads(lf, data, idx, sv, cd)
    heldin = grad[:, :T, :N_IN]
    assert torch.all(heldin[cd == 1] == 0)
    assert torch.all(heldin[cd == 0] != 0)
    assert torch.all(grad[:, :T, N_IN:] != 0) and torch.all(grad[:, T:] != 0)
    # without CD every entry gets its gradient
    lf.model.zero_grad()
    _, full = _batch_grads(lf, data, idx, sv, None)
    assert torch.all(full != 0)
    torch.testing.assert_close(full[:, :T, :N_IN][cd == 0], heldin[cd == 0])


def test_sbtt_missing_entries_change_nothing():
    """NaN spikes: loss and gradients do not depend on what sits in the missing entries."""
    seed_everything(0)
    lf = baseline()
    lf.build(N_IN, N_IN + N_OUT)
    train = trials(6)
    rng = np.random.default_rng(1)
    missing = rng.random(train.spikes_heldin.shape) < 0.3
    train.spikes_heldin[missing] = np.nan
    data = prepare(train, FWD, torch.device("cpu"))
    assert torch.all(data.weight[:, :T, :N_IN][torch.as_tensor(missing)] == 0)
    idx, sv = torch.arange(6), torch.zeros(6, T, N_IN)
    loss_a, grad_a = _batch_grads(lf, data, idx, sv, None)
    params_a = [p.grad.clone() for p in lf.model.parameters()]
    lf.model.zero_grad()
    miss = torch.as_tensor(missing)
    data.x[miss] = 7.0  # any value in the missing entries ...
    data.target[:, :T, :N_IN][miss] = 3.0
    loss_b, grad_b = _batch_grads(lf, data, idx, sv, None)
    assert torch.isfinite(loss_a)
    torch.testing.assert_close(loss_a, loss_b)  # ... changes neither the loss
    torch.testing.assert_close(grad_a, grad_b)  # ... nor any gradient
    for pa, p in zip(params_a, lf.model.parameters()):
        torch.testing.assert_close(pa, p.grad)
    assert torch.all(grad_a[:, :T, :N_IN][miss] == 0)


def test_ic_kl_matches_closed_form():
    """Analytic IC KL equals the textbook KL of two diagonal Gaussians."""
    rng = np.random.default_rng(0)
    mq, sq, mp, vp = rng.normal(size=(3, 4)), rng.uniform(0.2, 2.0, size=(3, 4)), rng.normal(size=4), 0.1
    want = 0.5 * (np.sum(sq**2 / vp, 1) + np.sum((mp - mq) ** 2 / vp, 1) - 4 + 4 * np.log(vp) - np.sum(np.log(sq**2), 1))
    got = gaussian_kl(torch.tensor(mq), torch.tensor(sq), torch.tensor(mp), vp)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    dist = torch.distributions
    ref = dist.kl_divergence(dist.Normal(torch.tensor(mq), torch.tensor(sq)),
                             dist.Normal(torch.tensor(mp), math.sqrt(vp))).sum(-1)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-10)


def test_ar1_log_density_matches_closed_form():
    """AR(1) prior log-density equals a stationary Gaussian with covariance pvar·α^|i−j|."""
    from scipy.stats import multivariate_normal

    prior = AR1Prior(2, tau=4.0, nvar=0.3).double()
    u = torch.randn(3, 9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    alpha = math.exp(-1 / 4.0)
    pvar = 0.3 / (1 - alpha**2)
    lags = np.abs(np.subtract.outer(np.arange(9), np.arange(9)))
    cov = pvar * alpha**lags
    want = [sum(multivariate_normal(np.zeros(9), cov).logpdf(u[b, :, k].numpy()) for k in range(2)) for b in range(3)]
    np.testing.assert_allclose(prior.log_prob(u).detach().numpy(), want, rtol=1e-6)  # float32 init of τ, σ²
    kl = prior.kl(torch.zeros(3, 9, 2, dtype=torch.float64), torch.full((3, 9, 2), 0.5, dtype=torch.float64))
    assert kl.shape == (3,) and torch.all(torch.isfinite(kl))


def test_end_to_end_run(synthetic, tmp_path):
    """`execute` with the fast profile and tiny overrides writes a run folder with curves and finite co-bps."""
    from nlb_suite.runs import RunSpec, execute

    folder = synthetic("mc_maze_small")
    overrides = {**TINY, "max_epochs": 2, "batch_size": 16}
    result = execute(RunSpec("lfads", "mc_maze_small", data=folder, out=tmp_path / "run", profile="fast", ci=0,
                             overrides=overrides), progress=False)
    assert (result.run_dir / "curves.csv").exists()
    rows = (result.run_dir / "curves.csv").read_text().splitlines()
    assert len(rows) == 3
    assert np.isfinite(result.metrics["co-bps"]) and np.isfinite(result.metrics["fp-bps"])


@pytest.mark.parametrize("key,value", [("cd_rate", 1.0), ("sv_rate", -0.1), ("gen_dim", 0), ("dropout", 1.5),
                                       ("lr", 0.0), ("lr_schedule", "step"), ("co_prior_tau", 0.0),
                                       ("sv_early_stop", True), ("valid_frac", 1.0), ("kl_ic_scale", -1.0),
                                       ("monitor", "valid_acc"), ("monitor", "valid_sv_nll"), ("valid_seed", -1), ("valid_seed", 2**63)])
def test_bad_config_values(key, value):
    """Out-of-range values are one-line NLBInputErrors."""
    cls = get_baseline("lfads")
    with pytest.raises(NLBInputError, match=key):
        build_config(cls, {key: value}, source="test")


def test_bad_types_and_ci_lag():
    """Wrong types and a ci_lag past the encoded window are NLBInputErrors."""
    with pytest.raises(NLBInputError):
        build_config(LFADSBaseline, {"gen_dim": "big"}, source="test")
    with pytest.raises(ConfigFieldError, match=f"^baseline lfads: ci_lag={T} must be under the {T} encoded bins"):
        baseline(ci_lag=T).fit(trials())


def test_sample_validation_masks_training_and_scores_validation(tmp_path):
    """SV entries get no training gradient; with sv_early_stop the held-back entries are scored on validation."""
    seed_everything(0)
    lf = baseline(sv_rate=0.25, sv_early_stop=True)
    lf.build(N_IN, N_IN + N_OUT)
    data = prepare(trials(6), FWD, torch.device("cpu"))
    sv = torch.bernoulli(torch.full((6, T, N_IN), 0.25))
    _, grad = _batch_grads(lf, data, torch.arange(6), sv, None)
    assert torch.all(grad[:, :T, :N_IN][sv == 1] == 0) and torch.all(grad[:, :T, :N_IN][sv == 0] != 0)
    fitted = LFADSBaseline(LFADSConfig(**{**TINY, "sv_rate": 0.25, "sv_early_stop": True}), context(run_dir=tmp_path))
    assert fitted.config.train_settings().monitor == "valid_sv_nll"
    fitted.fit(trials())
    assert all(np.isfinite(row["valid_sv_nll"]) for row in fitted.curves)
    assert "valid_sv_nll" in (tmp_path / "curves.csv").read_text().splitlines()[0]


def test_monitor_heldout_nll_keeps_the_epoch_that_predicts_heldout_neurons_best():
    """monitor=valid_heldout_nll: the fit ends at the epoch with the lowest held-out NLL on its validation trials.

    Recomputed from the final model's predicted log-rates: the held-out neurons' mean Poisson NLL over the
    window and the forward bins equals the smallest value in the curve column.
    """
    from baselines.lfads_model import poisson_nll

    train = trials(24)
    lf = baseline(monitor="valid_heldout_nll", max_epochs=10, patience=10, lr=0.01)
    assert lf.config.train_settings().monitor == "valid_heldout_nll"
    lf.fit(train)
    column = [row["valid_heldout_nll"] for row in lf.curves]
    recon = [row["valid_recon"] for row in lf.curves]
    assert column[int(np.argmin(recon))] > min(column) * (1 + 1e-3)  # valid_recon would keep another epoch
    log_rates = lf.log_rates(train)[lf.valid_ids][:, :, N_IN:]
    counts = torch.as_tensor(np.concatenate([train.spikes_heldout, train.spikes_heldout_forward], axis=1)
                             [lf.valid_ids], dtype=torch.float32)
    assert float(poisson_nll(log_rates, counts).mean()) == pytest.approx(min(column), rel=1e-5)


def test_monitor_contradicting_sv_early_stop_is_refused():
    """sv_early_stop already means monitor=valid_sv_nll; another monitor beside it is a one-line error."""
    with pytest.raises(NLBInputError, match="sv_early_stop contradicts monitor=valid_recon"):
        LFADSConfig(**{**TINY, "sv_rate": 0.2, "sv_early_stop": True, "monitor": "valid_recon"})
    assert LFADSConfig(**{**TINY, "sv_rate": 0.2, "monitor": "valid_sv_nll"}).resolved_monitor() == "valid_sv_nll"
    assert LFADSConfig(**TINY).resolved_monitor() == "valid_recon"


def test_on_epoch_hook_sees_every_validated_epoch_in_eval_mode():
    """extras['on_epoch'] is called once per epoch after validation, with the curve row, model in eval mode."""
    seen = []
    ctx = context()
    model = LFADSBaseline(LFADSConfig(**TINY), ctx)

    def on_epoch(epoch, row):
        seen.append((epoch, row["valid_loss"], model.model.training, torch.is_grad_enabled()))
        model.log_rates(trials(4, seed=3))  # scoring inside the hook must not disturb training

    ctx.extras["on_epoch"] = on_epoch
    model.fit(trials())
    assert [s[0] for s in seen] == [r["epoch"] for r in model.curves] == [0, 1, 2]
    assert [s[1] for s in seen] == [r["valid_loss"] for r in model.curves]
    assert not any(s[2] or s[3] for s in seen)
    assert all(r["train_s"] > 0 for r in model.curves)


def test_a_conflict_between_two_fields_names_where_each_came_from(tmp_path):
    """sv_early_stop needs sv_rate > 0: the error names the file and flag each conflicting value came from, one
    origin once, and none for a field left at its class default."""
    path = tmp_path / "sv.yaml"
    path.write_text("sv_early_stop: true\n")
    msg = "baseline lfads: sv_early_stop needs sv_rate > 0"
    cases = [({"sv_rate": 0.0}, f"{path} (sv_early_stop), --set (sv_rate): {msg}"),
             ({"sv_rate": 0.0, "sv_early_stop": True}, f"--set: {msg}"),
             ({}, f"{path}: {msg}")]  # sv_rate stays at the class default 0
    for overrides, expected in cases:
        with pytest.raises(NLBInputError) as info:
            resolve_config(LFADSBaseline, "mc_maze_small", 5, overrides=overrides, config_file=path)
        assert str(info.value) == expected
    overrides = {"sv_rate": 0.2, "monitor": "valid_recon"}
    expected = (f"{path} (sv_early_stop), --set (monitor): baseline lfads: sv_early_stop contradicts "
                "monitor=valid_recon (sv_early_stop means monitor=valid_sv_nll)")
    with pytest.raises(NLBInputError) as info:
        resolve_config(LFADSBaseline, "mc_maze_small", 5, overrides=overrides, config_file=path)
    assert str(info.value) == expected
    path.write_text("monitor: valid_sv_nll\n")
    with pytest.raises(NLBInputError) as info:
        resolve_config(LFADSBaseline, "mc_maze_small", 5, config_file=path)
    assert str(info.value) == f"{path}: baseline lfads: monitor=valid_sv_nll needs sv_rate > 0"
    with pytest.raises(NLBInputError) as info:
        check_known_keys(LFADSBaseline, {"gen_dim": 8, "gen_dmi": 8, "sv_rat": 0.1}, "config of lfads",
                         {"gen_dim": "a.yaml", "gen_dmi": "a.yaml", "sv_rat": "--set"})
    assert str(info.value).startswith("a.yaml (gen_dmi), --set (sv_rat): unknown key(s) gen_dmi, sv_rat for baseline lfads")
