"""GNOCCHI: noise schedule, DDIM step and MMD against hand-computed values; networks, losses, determinism, CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.diffusion import (  # noqa: E402
    ddim_sample,
    ddim_step,
    ddim_timesteps,
    gaussian_kernel,
    linear_schedule,
    mmd,
    predicted_x0,
    q_sample,
)
from baselines.gnocchi import GUIDANCE_FILE, GnocchiConfig, prepare  # noqa: E402
from baselines.gnocchi_guidance import (  # noqa: E402
    AffineReadout,
    SolverScratch,
    _row_objective,
    clamp_mask,
    held_in_correction,
    joint_proximal,
    poisson_proximal,
)
from baselines.gnocchi_model import ConditionalUNet1d  # noqa: E402
from nlb_suite.baseline_api import TrialSet, build_config, get_baseline  # noqa: E402
from nlb_suite.errors import NLBInputError  # noqa: E402
from nlb_suite.seeding import seed_everything  # noqa: E402
from support.tiny_gnocchi import FWD, N_IN, N_OUT, TINY, T, baseline  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)


def trials(n: int = 20, seed: int = 0) -> TrialSet:
    """Random Poisson train trials with held-out neurons and forward bins."""
    return poisson_trials(n, T, N_IN, N_OUT, FWD, seed, rate=0.3, first_id=0)


# ----- diffusion pieces against hand-computed values ---------------------------------------------

def test_linear_schedule_and_forward_noising_by_hand():
    """betas 0.1, 0.2, 0.3 -> alpha-bar 0.9, 0.72, 0.504; x_t = sqrt(ab) x0 + sqrt(1 - ab) eps."""
    s = linear_schedule(3, 0.1, 0.3)
    np.testing.assert_allclose(s.betas.numpy(), [0.1, 0.2, 0.3], rtol=1e-12)
    np.testing.assert_allclose(s.alphas_bar.numpy(), [0.9, 0.72, 0.504], rtol=1e-12)
    x0 = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    noise = torch.tensor([[0.5], [-1.0]], dtype=torch.float64)
    x_t = q_sample(x0, torch.tensor([1, 2]), noise, s)
    np.testing.assert_allclose(x_t.numpy().ravel(), [math.sqrt(0.72) + math.sqrt(0.28) * 0.5,
                                                     2 * math.sqrt(0.504) - math.sqrt(0.496)], rtol=1e-12)
    ab = s.alphas_bar[torch.tensor([1, 2])]
    torch.testing.assert_close(predicted_x0(x_t, noise, ab), x0)  # the exact noise recovers x0
    # the default: alpha-bar_T = exp(sum log(1 - beta)) ~ exp(-sum beta - sum beta^2 / 2) = exp(-5.005 - 0.0167)
    d = linear_schedule(1000, 1e-5, 1e-2)
    assert d.n_steps == 1000 and float(d.betas[0]) == pytest.approx(1e-5) and float(d.betas[-1]) == pytest.approx(1e-2)
    assert float(d.alphas_bar[-1]) == pytest.approx(0.006593, rel=1e-3)
    with pytest.raises(NLBInputError, match="beta_start <= beta_end"):
        linear_schedule(10, 0.2, 0.1)


def test_ddim_step_by_hand():
    """x_t = 2, eps = 0.5, ab_t = 0.64, ab_prev = 0.81: x0_hat = 2.125; eta 0 -> 2.130445, eta 1 -> 2.386057."""
    x_t, eps = torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    # eta 0: 0.9 * 2.125 + sqrt(0.19) * 0.5
    np.testing.assert_allclose(ddim_step(x_t, eps, 0.64, 0.81).numpy(), [2.1304449], rtol=1e-7)
    # eta 1: sigma = sqrt(0.19 / 0.36) sqrt(1 - 0.64 / 0.81) = 0.3328201; direction sqrt(0.19 - sigma^2) = 0.2814780
    got = ddim_step(x_t, eps, 0.64, 0.81, eta=1.0, noise=torch.tensor([1.0], dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), [1.9125 + 0.2814780 * 0.5 + 0.3328201], rtol=1e-6)
    # the last step (ab_prev = 1) returns the clean estimate itself
    np.testing.assert_allclose(ddim_step(x_t, eps, 0.64, 1.0).numpy(), [2.125], rtol=1e-12)
    # clipping: x0_hat = (2 + sqrt(0.75) 3) / 0.5 = 9.196 -> 5, eps re-derived, the final step returns 5
    clipped = ddim_step(x_t, torch.tensor([-3.0], dtype=torch.float64), 0.25, 1.0, clip_x0=5.0)
    np.testing.assert_allclose(clipped.numpy(), [5.0], rtol=1e-12)
    with pytest.raises(ValueError, match="noise"):
        ddim_step(x_t, eps, 0.64, 0.81, eta=0.5)


def test_ddim_timesteps_and_sampler_with_an_exact_denoiser():
    """Evenly spaced descending steps; with the true noise of a fixed x0 the sampler returns that x0."""
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    with pytest.raises(NLBInputError, match="ddim_steps"):
        ddim_timesteps(10, 11)
    s = linear_schedule(100, 1e-4, 0.05)
    target = torch.tensor([[0.3, -1.2], [2.0, 0.5]])

    def oracle(x, steps):  # the noise that maps target to x at each row's step
        ab = s.alphas_bar[steps].float()[:, None]
        return (x - ab.sqrt() * target) / (1 - ab).sqrt()

    out = ddim_sample(oracle, (2, 2), s, 7, 0.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    torch.testing.assert_close(out, target, rtol=1e-4, atol=1e-4)


def test_truncated_snr_weight_by_hand():
    """max(1, (1 - ab) / ab): ab 0.2 -> 4, 0.5 -> 1, 0.9 -> 1; "none" -> 1 everywhere."""
    from baselines.gnocchi import noise_weight

    ab = torch.tensor([0.2, 0.5, 0.9, 0.01])
    np.testing.assert_allclose(noise_weight(ab, "truncated").numpy(), [4.0, 1.0, 1.0, 99.0], rtol=1e-6)
    np.testing.assert_array_equal(noise_weight(ab, "none").numpy(), np.ones(4))


def test_mmd_by_hand():
    """k = exp(-mean (x - y)^2 / d); x = {0, 1}, y = {0, 0}: MMD^2 = (1 - 1/e) / 2."""
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [0.0]])
    assert float(mmd(x, y)) == pytest.approx((1 - math.exp(-1)) / 2, rel=1e-6)
    k = gaussian_kernel(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 3.0], [0.0, 0.0]]))
    np.testing.assert_allclose(k.numpy(), [[math.exp(-5 / 2), 1.0]], rtol=1e-6)  # mean sq 5, d = 2
    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    assert float(mmd(z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(mmd(z, z + 3.0)) > float(mmd(z, z + 1.0)) > 0
    k1 = gaussian_kernel(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 3.0]]), bandwidth=1.0)
    assert float(k1) == pytest.approx(math.exp(-5), rel=1e-6)  # mean sq 5, bandwidth 1


def test_mmd_bandwidth_d_barely_sees_codes_collapsed_onto_the_origin():
    """Why mmd_bandwidth exists: at d = 16 InfoDiffusion's kernel (bandwidth d) is ~flat over N(0, I) draws,
    so codes collapsed at 0 cost almost nothing (1 + e^(-1/8) - 2 e^(-1/16) ~ 0.004 in expectation, by
    Jensen a bit more); bandwidth 1 puts that collapse far from the prior."""
    prior = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    other = torch.randn(500, 16, generator=torch.Generator().manual_seed(1))
    collapsed = torch.zeros(500, 16)
    assert float(mmd(collapsed, prior)) < 0.01 and float(mmd(other, prior)) < 0.001
    assert float(mmd(collapsed, prior, bandwidth=1.0)) > 0.3 > 0.01 > float(mmd(other, prior, bandwidth=1.0))


# ----- networks and losses ---------------------------------------------------------------------------

@pytest.mark.parametrize("length", [13, 16, 45])
def test_unet_shapes_zero_start_and_conditioning(length):
    """Any length comes back cropped; the zero-initialised output starts at 0; step and code both matter."""
    seed_everything(0)
    cfg = GnocchiConfig(**{**TINY, "unet_widths": [8, 16, 16]})
    net = ConditionalUNet1d(cfg.dims(N_IN, N_IN + N_OUT)).eval()
    x, steps, code = torch.randn(3, length, 4), torch.tensor([0, 10, 40]), torch.randn(3, 3)
    out = net(x, steps, code)
    assert out.shape == (3, length, 4) and torch.all(out == 0)
    torch.nn.init.normal_(net.out.weight)
    base = net(x, steps, code)
    assert not torch.allclose(base, net(x, steps, code + 1.0))
    assert not torch.allclose(base, net(x, steps + 5, code))


@pytest.mark.parametrize("stride,n_bins,steps", [(1, 13, 13), (4, 13, 4), (4, 16, 4), (5, 45, 9)])
def test_autoencoder_latent_stride(stride, n_bins, steps):
    """Latents at 1/stride of the bin rate, read out at every bin; constant latents give constant rates."""
    from baselines.gnocchi_model import SpikeAutoencoder

    seed_everything(0)
    ae = SpikeAutoencoder(GnocchiConfig(**{**TINY, "latent_stride": stride}).dims(N_IN, N_IN + N_OUT))
    z = ae.encode(torch.rand(2, n_bins, N_IN + N_OUT))
    assert ae.latent_length(n_bins) == steps and z.shape == (2, steps, 4)
    rates = ae.log_rates(torch.ones(2, steps, 4), n_bins)
    assert rates.shape == (2, n_bins, N_IN + N_OUT)
    torch.testing.assert_close(rates, rates[:, :1].expand_as(rates))


def test_diffusion_loss_gradients_reach_encoder_not_autoencoder():
    """Stage 2 trains the code encoder and the denoiser; the frozen autoencoder gets no gradient."""
    seed_everything(0)
    g = baseline()
    g.build(N_IN, N_IN + N_OUT)
    torch.nn.init.normal_(g.model.denoiser.out.weight, std=0.1)
    for p in g.model.autoencoder.parameters():
        p.requires_grad_(False)
    data = prepare(trials(6), FWD, torch.device("cpu"))
    latents = torch.randn(6, (T + FWD) // 2, 4)  # latent_stride 2
    idx = torch.arange(6)
    loss, logs = g.diffusion_loss(data, latents, idx, torch.tensor([0, 5, 10, 20, 30, 49]), torch.randn(6, 8, 4),
                                  train=False)
    loss.backward()
    assert set(logs) == {"noise_mse", "recon", "mmd"} and all(np.isfinite(v) for v in logs.values())
    assert all(p.grad is not None and torch.any(p.grad != 0) for p in g.model.encoder.parameters())
    assert all(p.grad is None for p in g.model.autoencoder.parameters())


def test_diffusion_loss_mmd_uses_the_configured_bandwidth():
    """The loss's MMD term is mmd(codes, prior draws, mmd_bandwidth): same draws, the two kernels' values."""
    data = prepare(trials(6), FWD, torch.device("cpu"))
    latents, idx = torch.randn(6, (T + FWD) // 2, 4), torch.arange(6)
    logged = {}
    for bandwidth in (0.0, 1.0):
        seed_everything(0)
        g = baseline(mmd_bandwidth=bandwidth)
        g.build(N_IN, N_IN + N_OUT)
        g.model.eval()
        _, logs = g.diffusion_loss(data, latents, idx, torch.full((6,), 10), torch.zeros(6, 8, 4), train=False,
                                   prior_generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            code = g.codes(g.encoder_input(data, idx, False))
        prior = torch.randn(code.shape, generator=torch.Generator().manual_seed(7))
        assert logs["mmd"] == pytest.approx(float(mmd(code, prior, bandwidth)), rel=1e-5)
        logged[bandwidth] = logs["mmd"]
    assert logged[1.0] > logged[0.0]


def test_autoencoder_loss_scores_only_entries_hidden_at_the_input():
    """Coordinated dropout: log-rate gradients only at hidden entries; kept and NaN entries get none."""
    seed_everything(0)
    g = baseline(ae_smooth_scale=0.0, ae_l2_scale=0.0)
    g.build(N_IN, N_IN + N_OUT)
    train = trials(4)
    train.spikes_heldout[0, :3] = np.nan
    data = prepare(train, FWD, torch.device("cpu"))
    keep = torch.bernoulli(torch.full(data.counts.shape, 0.7, dtype=torch.float32))
    captured = {}
    readout = g.model.autoencoder.log_rates

    def spy(latents, n_bins):
        captured["lr"] = readout(latents, n_bins)
        captured["lr"].retain_grad()
        return captured["lr"]

    g.model.autoencoder.log_rates = spy
    loss, _ = g.autoencoder_loss(data, torch.arange(4), keep)
    loss.backward()
    grad = captured["lr"].grad
    hidden = (keep == 0) & (data.weight == 1)
    assert torch.all(grad[~hidden] == 0) and torch.all(grad[hidden] != 0)
    assert torch.all(data.weight[0, :3, N_IN:] == 0)


# ----- fit / predict -----------------------------------------------------------------------------------

def test_fit_predict_shapes_determinism_and_files(tmp_path):
    """One seed -> identical rates; another seed -> different ones; curves of both stages and checkpoints."""
    train = trials()
    a = baseline(seed=4, run_dir=tmp_path)
    a.fit(train)
    ra = a.predict(train)
    b = baseline(seed=4)
    b.fit(train)
    rb = b.predict(train)
    c = baseline(seed=5)
    c.fit(train)
    for name, shape in (("heldin", (20, T, N_IN)), ("heldout", (20, T, N_OUT)), ("heldin_forward", (20, FWD, N_IN)),
                        ("heldout_forward", (20, FWD, N_OUT))):
        assert getattr(ra, name).shape == shape
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
        assert np.all(np.isfinite(getattr(ra, name))) and np.all(getattr(ra, name) > 0)
    assert not np.array_equal(ra.heldout, c.predict(train).heldout)
    np.testing.assert_array_equal(ra.heldout, a.predict(train).heldout)  # predicting twice: same samples
    assert (tmp_path / "curves.csv").read_text().splitlines()[0].startswith("epoch,train_loss,valid_loss")
    assert "valid_nll" in (tmp_path / "autoencoder" / "curves.csv").read_text().splitlines()[0]
    assert (tmp_path / "gnocchi_best.pt").exists() and (tmp_path / "autoencoder" / "gnocchi_autoencoder_best.pt").exists()
    assert [r["epoch"] for r in a.curves["diffusion"]] == [0, 1, 2]
    restored = baseline(seed=4)  # the checkpoint is a complete fitted model
    restored.load(tmp_path / "gnocchi_best.pt", N_IN, N_IN + N_OUT)
    np.testing.assert_allclose(restored.predict(train).heldout, ra.heldout, rtol=1e-6)


def test_valid_seed_fixes_the_split_across_model_seeds_and_unset_it_is_the_run_seed():
    """valid_seed equal to the run's seed fits exactly as leaving it unset (the split and every fixed validation
    draw come from it, so runs made before the field stay reproducible); set, two model seeds validate on the
    same trials yet train differently: repeat fits that differ in their training draws alone."""
    train = trials()
    unset, named, other, free = baseline(seed=4), baseline(seed=4, valid_seed=4), baseline(seed=5, valid_seed=4), \
        baseline(seed=5)
    for model in (unset, named, other, free):
        model.fit(train)
    np.testing.assert_array_equal(unset.predict(train).heldout, named.predict(train).heldout)
    np.testing.assert_array_equal(other.validation_trials(), named.validation_trials())
    assert not np.array_equal(free.validation_trials(), named.validation_trials())  # seed 5 alone draws another
    assert not np.array_equal(other.predict(train).heldout, named.predict(train).heldout)
    # the fixed validation draws that follow the split (the autoencoder's mask; then the diffusion stage's steps
    # and noise) come from the same generator: it leaves the first stage in one state at both model seeds
    states = [baseline(seed=s, valid_seed=4).fit_autoencoder_stage(train).rng.bit_generator.state for s in (4, 5)]
    assert states[0] == states[1]
    assert baseline(seed=5).fit_autoencoder_stage(train).rng.bit_generator.state != states[0]


def test_the_autoencoder_stage_follows_its_own_lr_schedule():
    """ae_lr_schedule shapes the autoencoder's learning-rate path only: `none` holds ae_lr, cosine warms up and
    decays, and the diffusion stage keeps lr_schedule either way."""
    paths = {}
    for schedule in ("none", "cosine"):
        fitted = baseline(ae_lr_schedule=schedule, ae_max_epochs=4, ae_lr=0.004, lr=0.002, lr_schedule="none")
        fitted.fit(trials())
        paths[schedule] = ([r["lr"] for r in fitted.curves["autoencoder"]], [r["lr"] for r in fitted.curves["diffusion"]])
    assert paths["none"][0] == pytest.approx([0.004] * 4)
    # one warm-up epoch (x 1/2), then the cosine over the 3 epochs left down to lr_min_ratio 0.05
    assert paths["cosine"][0] == pytest.approx([0.004 * m for m in (0.5, 1.0, 0.05 + 0.95 * 0.75, 0.05 + 0.95 * 0.25)])
    assert paths["none"][1] == paths["cosine"][1] == pytest.approx([0.002] * 3)


def test_predict_uses_held_in_spikes_only_and_sample_mean():
    """Rates depend on held-in spikes alone; unguided, they are the mean of the per-sample rates given the codes;
    codes have code_dim."""
    g = baseline(guidance=[0.0])
    train = trials()
    g.fit(train)
    evals = TrialSet(split="eval", spikes_heldin=train.spikes_heldin[:6], trial_ids=np.arange(6),
                     bins=train.bins[:6], forward_bins=train.forward_bins[:6])
    with_heldout = trials()
    leaked = TrialSet(split="eval", spikes_heldin=train.spikes_heldin[:6], trial_ids=np.arange(6),
                      bins=train.bins[:6], forward_bins=train.forward_bins[:6],
                      spikes_heldout=with_heldout.spikes_heldout[:6] + 5)
    np.testing.assert_array_equal(g.predict(evals).heldout, g.predict(leaked).heldout)
    codes = g.encode(evals)
    assert codes.shape == (6, 3)
    samples = g.sample_rates(codes, 2, seed=0, n_bins=T + FWD)
    assert samples.shape == (6, 2, T + FWD, N_IN + N_OUT)
    np.testing.assert_allclose(samples.mean(1)[:, :T, N_IN:], g.predict(evals).heldout, rtol=1e-5)
    lat = g.latents(evals)  # kept from predict(); the same as sampling them again
    assert lat.shape == (6, T, 4)
    fresh = baseline(guidance=[0.0])
    fresh.model = g.model
    np.testing.assert_allclose(fresh.latents(evals), lat, rtol=1e-5)


def test_missing_held_in_spikes_are_handled():
    """NaN held-in entries: fit and predict stay finite; a missing entry enters the encoder as a zero."""
    train = trials()
    rng = np.random.default_rng(1)
    missing = rng.random(train.spikes_heldin.shape) < 0.2
    train.spikes_heldin[missing] = np.nan
    g = baseline()
    g.fit(train)
    r = g.predict(train)
    assert np.all(np.isfinite(r.heldout)) and np.all(np.isfinite(r.heldin))
    zeroed = TrialSet(**{**train.__dict__, "spikes_heldin": np.where(missing, 0.0, train.spikes_heldin)})
    np.testing.assert_array_equal(g.encode(train), g.encode(zeroed))
    assert not np.array_equal(g.encode(train), g.encode(trials()))


def test_ddim_step_applies_a_clean_sample_correction_by_hand():
    """correct(x0_hat) -> 1: eps' = (2 - 0.8 * 1) / 0.6 = 2, x_prev = 0.9 * 1 + sqrt(0.19) * 2; it sees alpha-bar_t."""
    seen = []

    def to_one(x0, alpha_bar):
        seen.append(alpha_bar)
        return torch.ones_like(x0)

    x_t, eps = torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    np.testing.assert_allclose(ddim_step(x_t, eps, 0.64, 0.81, correct=to_one).numpy(), [0.9 + math.sqrt(0.19) * 2],
                               rtol=1e-12)
    assert seen == [pytest.approx(0.64)]


def test_poisson_proximal_by_hand():
    """argmin exp(z) - 3 z + (z - 0)^2 / 2: the root of exp(z) - 3 + z (0.79206); an unobserved entry stays at
    x0_hat; a huge variance gives the likelihood's own optimum log 3."""
    x0 = torch.tensor([[[0.0, 0.5]]])
    spikes = torch.tensor([[[3.0, 3.0]]])
    observed = torch.tensor([[[1.0, 0.0]]])
    z = poisson_proximal(x0, lambda v: v, spikes, observed, variance=1.0, iters=50)
    root = 0.0
    for _ in range(50):  # Newton on exp(z) - 3 + z
        root -= (math.exp(root) - 3 + root) / (math.exp(root) + 1)
    np.testing.assert_allclose(z.numpy(), [[[root, 0.5]]], atol=3e-4)  # float32 objective: ~sqrt(eps) in z
    assert root == pytest.approx(0.79206, abs=1e-5)
    loose = poisson_proximal(x0, lambda v: v, spikes, torch.ones_like(spikes), variance=1e6, iters=50)
    np.testing.assert_allclose(loose.numpy(), [[[math.log(3), math.log(3)]]], atol=3e-4)


def _readout(seed: int, affine: bool = False):
    """A fixed linear readout (n, 3, 2) latents -> (n, 3, 4) log-rates, mixing latent dims into neurons: a plain
    callable (gradient by autograd) or the same map as an AffineReadout (gradient by its adjoint)."""
    w = torch.as_tensor(np.random.default_rng(seed).normal(0, 0.7, (2, 4)), dtype=torch.float32)
    if affine:
        return AffineReadout(torch.eye(3), w.T.contiguous(), torch.full((4,), -0.5), torch.ones(2), torch.zeros(2)), w
    return lambda z: z @ w - 0.5, w


def test_an_affine_readout_gives_the_objective_and_gradient_autograd_gives():
    """Same values, same gradients as autograd through the same map, also where the clamp at 10 holds the
    log-rates (no gradient through the likelihood there); interpolation, standardisation and bias included."""
    rng = np.random.default_rng(5)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    interp = as_t(np.abs(rng.normal(0, 1, (7, 4))))
    readout = AffineReadout(interp, as_t(rng.normal(0, 0.5, (6, 3))), as_t(rng.normal(0, 1, 6)),
                            as_t(rng.uniform(0.5, 2, 3)), as_t(rng.normal(0, 1, 3)))
    plain = lambda z: (interp @ (z * readout.std + readout.mean)) @ readout.weight.T + readout.bias  # noqa: E731
    z = as_t(rng.normal(0, 1, (5, 4, 3)))
    z[0] += 2.0 * torch.sign(readout.weight[4])  # row 0: neuron 4 passes the clamp at 10 in places
    target = z + as_t(rng.normal(0, 0.3, z.shape))
    spikes = as_t(rng.poisson(2.0, (5, 7, 6)))
    observed = as_t(rng.random((5, 7, 6)) > 0.2)
    assert readout(z)[0].max() > 10 and readout(z)[1:].max() < 10
    np.testing.assert_allclose(readout(z).numpy(), plain(z).numpy(), rtol=1e-6, atol=1e-6)
    f_plain, g_plain, raw_plain = _row_objective(z, plain, spikes, observed, target, 0.7)
    f_aff, g_aff, raw_aff = _row_objective(z, readout, spikes, observed, target, 0.7)
    np.testing.assert_allclose(f_aff.numpy(), f_plain.numpy(), rtol=1e-6)
    np.testing.assert_allclose(g_aff.numpy(), g_plain.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(raw_aff.numpy(), raw_plain.numpy(), rtol=1e-6, atol=1e-6)
    v = as_t(rng.normal(0, 1, z.shape))  # the linear part and its adjoint are transposes: <J v, r> = <v, J' r>
    r = as_t(rng.normal(0, 1, spikes.shape))
    jv = readout.linear(v, out=torch.empty_like(r))
    np.testing.assert_allclose((jv * r).sum().item(), (v * readout.adjoint(r)).sum().item(), rtol=1e-5)
    np.testing.assert_allclose(jv.numpy(), (readout(z + v) - readout(z)).numpy(), atol=2e-5)


def test_the_clamp_mask_never_waits_for_a_device_and_an_empty_mask_changes_nothing(monkeypatch):
    """On CPU the mask is skipped where the clamp holds nowhere; off the CPU it is always made, without asking
    the device whether it is empty (a `meta` tensor has no values: asking would raise). Made or skipped, an
    empty mask gives the same objective and gradient to the bit."""
    raw = torch.tensor([[1.0, 9.9], [3.0, 10.5]])
    assert clamp_mask(raw[:1]) is None and torch.equal(clamp_mask(raw), raw > 10.0)
    assert clamp_mask(torch.empty(0)) is None
    nan_row = torch.tensor([[float("nan"), 1.0], [11.0, 2.0]])  # a NaN elsewhere never hides a value past 10
    assert torch.equal(clamp_mask(nan_row), torch.tensor([[False, False], [True, False]]))
    assert clamp_mask(torch.empty(2, 3, device="meta")).device.type == "meta"
    log_rates, _ = _readout(0, True)
    rng = np.random.default_rng(4)
    z = torch.as_tensor(rng.normal(0, 1, (5, 3, 2)), dtype=torch.float32)
    spikes = torch.as_tensor(rng.poisson(1.0, (5, 3, 4)), dtype=torch.float32)
    observed = torch.ones_like(spikes)
    assert log_rates(z).max() < 10
    skipped = _row_objective(z, log_rates, spikes, observed, z * 0.5, 0.7)
    monkeypatch.setattr("baselines.gnocchi_guidance.clamp_mask", lambda r: r > 10.0)  # as on a GPU
    made = _row_objective(z, log_rates, spikes, observed, z * 0.5, 0.7)
    assert all(torch.equal(a, b) for a, b in zip(skipped, made))


def test_a_correction_reuses_its_buffers_across_ddim_steps_with_the_same_bits_as_fresh_ones(monkeypatch):
    """held_in_correction makes the per-sample solver's buffers once for all DDIM steps: each step's answer is
    what a solve with buffers of its own gives, to the bit; an unknown solver is refused by name."""
    log_rates, _ = _readout(1, True)
    rng = np.random.default_rng(6)
    spikes = torch.as_tensor(rng.poisson(1.5, (5, 3, 4)), dtype=torch.float32)
    observed = torch.as_tensor(rng.random((5, 3, 4)) > 0.1, dtype=torch.float32)
    made = []

    class Counted(SolverScratch):
        def __init__(self, like):
            made.append(like.shape)
            super().__init__(like)

    monkeypatch.setattr("baselines.gnocchi_guidance.SolverScratch", Counted)
    correct = held_in_correction(log_rates, spikes, observed, scale=2.0, iters=6)
    assert made == [spikes.shape]
    for step, alpha_bar in enumerate((0.2, 0.6, 0.9)):
        x0 = torch.as_tensor(rng.normal(0, 1, (5, 3, 2)), dtype=torch.float32)
        before = len(made)
        answer = correct(x0, alpha_bar)
        assert len(made) == before, step  # the steps share the correction's buffers
        fresh = poisson_proximal(x0, log_rates, spikes, observed, 2.0 * (1 - alpha_bar), 6)  # its own buffers
        assert torch.equal(answer, fresh), step
    with pytest.raises(ValueError, match=r"scratch buffers \(4, 3, 4\) do not fit spikes \(5, 3, 4\)"):
        poisson_proximal(x0, log_rates, spikes, observed, 1.0, 6, scratch=SolverScratch(spikes[:4]))
    with pytest.raises(ValueError, match="guidance solver 'newton': expected one of per_sample, joint"):
        held_in_correction(log_rates, spikes, observed, scale=2.0, iters=6, solver="newton")


@pytest.mark.parametrize("affine", [False, True])
def test_poisson_proximal_reaches_newtons_optimum_per_row(affine):
    """With a mixing readout, every row lands on its own optimum (float64 Newton with the exact Hessian)."""
    rng = np.random.default_rng(3)
    log_rates, w = _readout(0, affine)
    x0 = torch.as_tensor(rng.normal(0, 1, (5, 3, 2)), dtype=torch.float32)
    spikes = torch.as_tensor(rng.poisson(2.0, (5, 3, 4)), dtype=torch.float32)
    observed = torch.as_tensor(rng.random((5, 3, 4)) > 0.2, dtype=torch.float32)
    z = poisson_proximal(x0, log_rates, spikes, observed, variance=2.0, iters=40).numpy()
    w64 = w.double().numpy()
    for row in range(5):
        target, y, o = x0[row].double().numpy(), spikes[row].double().numpy(), observed[row].double().numpy()
        sol = target.copy()
        for _ in range(30):  # Newton: grad = (exp(eta) - y) o W' + (z - x0) / v, Hessian block per time bin
            lam = np.exp(sol @ w64 - 0.5) * o
            grad = (lam - y * o) @ w64.T + (sol - target) / 2.0
            for t in range(3):
                hess = (w64 * lam[t]) @ w64.T + np.eye(2) / 2.0
                sol[t] -= np.linalg.solve(hess, grad[t])
        np.testing.assert_allclose(z[row], sol, atol=5e-4)  # stops where float32 terms resolve no decrease


@pytest.mark.parametrize("affine", [False, True])
def test_poisson_proximal_solves_each_row_alone(affine):
    """A row's solution does not depend on the rows solved beside it (own curvature, own step length), even
    after few iterations: alone, in the batch, and beside a row whose spikes changed."""
    rng = np.random.default_rng(4)
    log_rates, _ = _readout(1, affine)
    x0 = torch.as_tensor(rng.normal(0, 1, (6, 3, 2)), dtype=torch.float32)
    spikes = torch.as_tensor(rng.poisson(1.5, (6, 3, 4)), dtype=torch.float32)
    observed = torch.ones_like(spikes)
    together = poisson_proximal(x0, log_rates, spikes, observed, variance=5.0, iters=3)
    other = spikes.clone()
    other[0] = 20.0  # a very different neighbour
    beside = poisson_proximal(x0, log_rates, other, observed, variance=5.0, iters=3)
    for row in range(1, 6):
        alone = poisson_proximal(x0[row:row + 1], log_rates, spikes[row:row + 1], observed[row:row + 1],
                                 variance=5.0, iters=3)
        np.testing.assert_allclose(together[row:row + 1].numpy(), alone.numpy(), atol=1e-6)
        np.testing.assert_allclose(beside[row].numpy(), together[row].numpy(), atol=1e-6)
    assert not torch.allclose(beside[0], together[0])


def test_joint_solver_is_the_earlier_coupled_design():
    """`guidance_solver: joint` routes the correction to one L-BFGS over the batch, whose rows move with their
    neighbours' spikes (why the per-sample solver replaced it)."""
    rng = np.random.default_rng(4)
    log_rates, _ = _readout(1)
    x0 = torch.as_tensor(rng.normal(0, 1, (6, 3, 2)), dtype=torch.float32)
    spikes = torch.as_tensor(rng.poisson(1.5, (6, 3, 4)), dtype=torch.float32)
    observed = torch.ones_like(spikes)
    other = spikes.clone()
    other[0] = 20.0
    together = joint_proximal(x0, log_rates, spikes, observed, variance=5.0, iters=3)
    beside = joint_proximal(x0, log_rates, other, observed, variance=5.0, iters=3)
    assert (beside[1:] - together[1:]).abs().max() > 1e-3
    correct = held_in_correction(log_rates, spikes, observed, scale=5.0, iters=3, solver="joint")
    np.testing.assert_array_equal(correct(x0, 0.0).numpy(), together.numpy())
    per_sample = held_in_correction(log_rates, spikes, observed, scale=5.0, iters=3)
    np.testing.assert_array_equal(per_sample(x0, 0.0).numpy(),
                                  poisson_proximal(x0, log_rates, spikes, observed, 5.0, 3).numpy())


@pytest.mark.parametrize("solver", ["per_sample", "joint"])
def test_the_baseline_guides_with_its_configured_solver(solver, monkeypatch):
    """`guidance_solver` reaches the correction that sampling uses."""
    import baselines.gnocchi as gnocchi_module

    seen = []
    monkeypatch.setattr(gnocchi_module, "held_in_correction", lambda *args: seen.append((args[0], args[-1])))
    g = baseline(guidance_solver=solver)
    g.build(N_IN, N_IN + N_OUT)
    g._held_in_correction(trials(2).spikes_heldin, n_samples=2, n_bins=T + FWD, scale=3.0)
    (log_rates, seen_solver), = seen
    assert seen_solver == solver
    # the per-sample solver differentiates by the readout's adjoint; the joint one as it always ran (autograd)
    assert isinstance(log_rates, AffineReadout) == (solver == "per_sample")


def test_the_guidance_readout_is_the_models_held_in_log_rates():
    """The AffineReadout guidance fits is the model's readout of the window's held-in neurons, with the latents'
    standardisation (held-out neurons and forward bins left out)."""
    g = baseline()
    g.build(N_IN, N_IN + N_OUT)
    net = g.model
    gen = torch.Generator().manual_seed(1)
    net.latent_mean.copy_(torch.randn(net.dims.latent_dim, generator=gen))
    net.latent_std.copy_(torch.rand(net.dims.latent_dim, generator=gen) + 0.5)
    z = torch.randn(3, net.autoencoder.latent_length(T + FWD), net.dims.latent_dim, generator=gen)
    readout = g.held_in_log_rates(T + FWD, T, N_IN)
    assert isinstance(readout, AffineReadout)
    with torch.no_grad():
        plain = net.log_rates_of(z, T + FWD)[:, :T, :N_IN]
        np.testing.assert_allclose(readout(z).numpy(), plain.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(g.held_in_log_rates(T + FWD, T, N_IN, adjoint=False)(z).numpy(), plain.numpy())


def test_before_field_names_real_fields_and_valid_values():
    """What runs recorded before a field existed did (BEFORE_FIELD) names a field, with a value it accepts."""
    assert GnocchiConfig.BEFORE_FIELD
    for key, value in GnocchiConfig.BEFORE_FIELD.items():
        assert key in {f.name for f in dataclasses.fields(GnocchiConfig)}
        assert getattr(GnocchiConfig(**{key: value}), key) == value


def test_guidance_is_chosen_on_internal_validation_and_pulls_toward_held_in_spikes(tmp_path):
    """The fit scores every candidate strength on its validation trials and keeps the best (file + attribute);
    predict uses it; strong guidance brings the held-in rates closer to the held-in spikes; load restores it."""
    train = trials()
    g = baseline(run_dir=tmp_path, guidance=[0.0, 30.0])
    g.fit(train)
    valid = g.validation_trials()
    assert len(valid) == 4 and len(set(valid.tolist())) == 4  # round(0.2 * 20) distinct train trials
    record = json.loads((tmp_path / GUIDANCE_FILE).read_text())
    assert record["candidates"] == [0.0, 30.0] and record["n_validation_trials"] == 4
    best = max(zip(record["validation_co_bps"], record["candidates"]), key=lambda p: p[0])[1]
    assert record["chosen"] == best == g.chosen_guidance
    # the recorded score is what predict gives those trials from their held-in spikes, scored by nlb_tools
    from nlb_tools.evaluation import bits_per_spike as nlb_bits_per_spike

    held_out = g.predict(train.held_in_only().rows(valid)).heldout
    assert record["validation_co_bps"][record["candidates"].index(best)] == pytest.approx(
        nlb_bits_per_spike(held_out.astype(np.float64), train.spikes_heldout[valid].astype(np.float64)), abs=1e-9)
    t, n_bins = T, T + FWD
    unguided, _ = g._sample(g.encode(train), 2, 0, n_bins, mean=True)
    guided, _ = g._sample(g.encode(train), 2, 0, n_bins, mean=True, spikes=train.spikes_heldin, scale=30.0)
    err = [np.mean((r[:, :t, :N_IN] - train.spikes_heldin) ** 2) for r in (unguided, guided)]
    assert err[1] < err[0]
    expected = guided if g.chosen_guidance == 30.0 else unguided
    np.testing.assert_allclose(g.predict(train).heldout, expected[:, :t, N_IN:], rtol=1e-5)
    restored = baseline(guidance=[0.0, 30.0])
    restored.load(tmp_path / "gnocchi_best.pt", N_IN, N_IN + N_OUT)
    assert restored.chosen_guidance == g.chosen_guidance
    (tmp_path / GUIDANCE_FILE).unlink()
    with pytest.raises(NLBInputError, match=GUIDANCE_FILE):
        baseline(guidance=[0.0, 30.0]).load(tmp_path / "gnocchi_best.pt", N_IN, N_IN + N_OUT)


@pytest.mark.parametrize("key,value", [("code_dim", 0), ("input_dropout", 1.0), ("ae_cd_rate", -0.1),
                                       ("beta_start", 0.0), ("beta_end", 1.0), ("ddim_steps", 2000),
                                       ("ddim_eta", 1.5), ("mmd_scale", -1.0), ("mmd_bandwidth", -1.0), ("unet_widths", []),
                                       ("valid_frac", 1.0), ("lr_schedule", "step"), ("ae_lr_schedule", "step"), ("n_samples", 0),
                                       ("snr_weighting", "p2"), ("latent_stride", 0),
                                       ("guidance", []), ("guidance", [1.0, -1.0]), ("guidance_iters", 0),
                                       ("guidance_solver", "lbfgs"), ("valid_seed", -1), ("valid_seed", 2**63)])
def test_bad_config_values(key, value):
    """Out-of-range values are one-line NLBInputErrors naming the field."""
    with pytest.raises(NLBInputError, match=key):
        build_config(get_baseline("gnocchi"), {key: value}, source="test")


def test_fit_errors():
    """Train trials without held-out spikes, or a single trial, are one-line errors; predict needs a fit."""
    t = trials()
    no_heldout = TrialSet(split="train", spikes_heldin=t.spikes_heldin, trial_ids=t.trial_ids, bins=t.bins,
                          forward_bins=t.forward_bins)
    with pytest.raises(NLBInputError, match="held-out"):
        baseline().fit(no_heldout)
    with pytest.raises(NLBInputError, match="at least 2"):
        baseline().fit(trials(1))
    with pytest.raises(NLBInputError, match="before fit"):
        baseline().predict(t)


# ----- the command line: run -> compare -> report -> package ---------------------------------------

def test_cli_run_compare_report_package(synthetic, tmp_path, capsys):
    """`nlb-eval run gnocchi` (fast profile, tiny networks) on a synthetic set, then compare, report and package."""
    from nlb_suite.cli import main

    folder = str(synthetic("mc_maze_small"))
    sets = [f"--set={k}={v}" for k, v in {**TINY, "unet_widths": "[8,16]", "max_epochs": 2}.items()]
    run = tmp_path / "gn"
    assert main(["run", "gnocchi", "--dataset", "mc_maze_small", "--data", folder, "--profile", "fast",
                 "--ci", "0", "--out", str(run), *sets]) == 0
    values = next(iter(__import__("json").loads((run / "metrics.json").read_text())[0].values()))
    assert all(np.isfinite(v) for v in values.values()) and any("fp-bps" in k for k in values)
    assert (run / "autoencoder" / "curves.csv").exists()
    capsys.readouterr()
    assert main(["compare", str(run), "--ci", "0"]) == 0
    assert "co-bps" in capsys.readouterr().out
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert "gnocchi" in (tmp_path / "r.html").read_text()
    assert main(["package", str(run), "--out", str(tmp_path / "sub.h5")]) == 0
    assert (tmp_path / "sub.h5").exists() and (tmp_path / "sub.manifest.json").exists()


@pytest.mark.parametrize("dataset,bin_ms", [("mc_maze", 5), ("mc_maze", 20), ("mc_maze_large", 5), ("mc_maze_medium", 5),
                                            ("mc_maze_small", 5), ("mc_rtt", 5), ("area2_bump", 5), ("dmfc_rsg", 5)])
def test_every_dataset_has_gpu_cpu_and_fast_settings(dataset, bin_ms):
    """Each dataset's YAML resolves to valid configs at its top level and in the cpu and fast profiles."""
    from nlb_suite.baseline_api import default_config_file, resolve_config

    cls = get_baseline("gnocchi")
    assert default_config_file(cls, dataset, bin_ms).parent.name == "gnocchi"
    gpu, _ = resolve_config(cls, dataset, bin_ms, profile="none")
    cpu, sources = resolve_config(cls, dataset, bin_ms, device="cpu")
    fast, _ = resolve_config(cls, dataset, bin_ms, profile="fast")
    assert any("profiles.cpu" in s for s in sources)
    assert fast.max_epochs < cpu.max_epochs <= gpu.max_epochs and fast.ddim_steps <= cpu.ddim_steps <= gpu.ddim_steps
    assert 8 <= cpu.code_dim <= 32
