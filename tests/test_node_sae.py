"""NODE-SAE / GRU-SAE: residual Euler step, unmasking schedule and loss masking, shapes, determinism, configs,
fixed points, and a CLI run on a tiny lorenz set with its ground-truth scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.fixed_points import find_fixed_points  # noqa: E402
from baselines.sae import GRUSAEBaseline, GRUSAEConfig, NodeSAEBaseline, SAEConfig, unmasked_steps  # noqa: E402
from baselines.sae_model import SAE, VectorField, euler_step  # noqa: E402
from nlb_suite.baseline_api import RunContext, TrialSet, get_baseline, resolve_config  # noqa: E402
from nlb_suite.cli import main  # noqa: E402
from nlb_suite.errors import NLBInputError  # noqa: E402
from nlb_suite.seeding import seed_everything  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)

N_IN, N_OUT, T, FWD = 4, 2, 10, 3
TINY = dict(enc_dim=6, vf_hidden=8, batch_size=8, max_epochs=3, patience=3, unmask_start=4, unmask_step=2,
            unmask_every=1)




def trials(n: int = 16, seed: int = 0) -> TrialSet:
    """Random Poisson train trials with held-out neurons and forward bins."""
    return poisson_trials(n, T, N_IN, N_OUT, FWD, seed, rate=0.5, first_id=0)


def context(seed: int = 0) -> RunContext:
    return RunContext(dataset="lorenz", bin_ms=5, n_heldin=N_IN, n_heldout=N_OUT, n_forward_bins=FWD, seed=seed)


def test_residual_euler_step_by_hand():
    """f(h) = W h + b with W = [[0, 1], [-1, 0]], b = [1, 0]: h = [1, 2] -> f = [3, -1]; h + 0.1 f = [1.3, 1.9]."""
    field = VectorField(2, 4, 0)  # no hidden layer: one Linear
    with torch.no_grad():
        field.net[0].weight.copy_(torch.tensor([[0.0, 1.0], [-1.0, 0.0]]))
        field.net[0].bias.copy_(torch.tensor([1.0, 0.0]))
    h = torch.tensor([[1.0, 2.0]])
    torch.testing.assert_close(euler_step(field, h, 0.1), torch.tensor([[1.3, 1.9]]))
    torch.testing.assert_close(euler_step(field, h, 0.1, residual=False), torch.tensor([[3.0, -1.0]]))


def test_trajectory_is_iterated_euler_from_the_encoded_state():
    model = SAE(SAEConfig(**TINY, latent_dim=3).dims(N_IN, N_IN + N_OUT, FWD)).eval()
    x = torch.rand(5, T, N_IN)
    log_rates, lat = model(x)
    assert log_rates.shape == (5, T + FWD, N_IN + N_OUT) and lat.shape == (5, T + FWD, 3)
    h = model.initial_state(x)
    torch.testing.assert_close(lat[:, 0], h)
    for t in range(1, T + FWD):
        h = h + 0.1 * model.dynamics.field(h)
        torch.testing.assert_close(lat[:, t], h)
    torch.testing.assert_close(log_rates, model.readout(lat))


def test_dropout_only_on_encoder_state_and_initial_state():
    """As in the paper: in training the spikes reach the encoder intact, the initial state is dropped out
    (zeroed entries, the rest scaled by 1 / (1 - p)), and trajectory and readout are dropout-free."""
    seed_everything(0)
    model = SAE(SAEConfig(**{**TINY, "dropout": 0.5}, latent_dim=3).dims(N_IN, N_IN + N_OUT, FWD)).train()
    x = torch.rand(200, T, N_IN)
    seen = []
    model.encoder.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    log_rates, lat = model(x)
    torch.testing.assert_close(seen[0], x, rtol=0, atol=0)
    assert 0.3 < float((lat[:, 0] == 0).float().mean()) < 0.7  # the initial state's dropout
    torch.testing.assert_close(log_rates, model.readout(lat), rtol=0, atol=0)
    for t in range(1, T + FWD):
        torch.testing.assert_close(lat[:, t], lat[:, t - 1] + 0.1 * model.dynamics.field(lat[:, t - 1]))


def test_unmasking_schedule():
    """k = 10 + 5 * (epoch // 150), capped at the steps; start 0 scores every step from the first epoch."""
    assert [unmasked_steps(e, 110, 10, 5, 150) for e in (0, 149, 150, 299, 300, 2999, 3000)] == \
        [10, 10, 15, 15, 20, 105, 110]
    assert unmasked_steps(5000, 110, 10, 5, 150) == 110
    assert unmasked_steps(0, 110, 0, 5, 150) == 110


def test_unmasking_in_training_and_gradients_only_from_unmasked_steps():
    b = NodeSAEBaseline(SAEConfig(**TINY, latent_dim=2), context())
    b.fit(trials())
    assert [r["unmasked_steps"] for r in b.curves] == [4.0, 6.0, 8.0]
    # the readout bias of neuron 0 gets no gradient from a target entry beyond the unmasked steps
    from baselines.lfads_model import masked_recon

    model = b.model
    x = torch.rand(3, T, N_IN)
    target = torch.ones(3, T + FWD, N_IN + N_OUT)
    weight = torch.ones_like(target)
    weight[:, 4:] = 0
    grads = []
    for late in (1.0, 50.0):
        target[:, 6, 0] = late
        model.zero_grad()
        masked_recon(model(x)[0], target, weight, torch.ones_like(weight)).backward()
        grads.append(model.readout.bias.grad[0].clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_window_only_loss_scores_no_forward_bin():
    """fit_forward false (the paper's protocol): unmasking stops at the window's T steps, validation scores the
    window only, and the forward bins are still predicted (the dynamics rolled on)."""
    b = NodeSAEBaseline(SAEConfig(**{**TINY, "unmask_step": 4}, latent_dim=2, fit_forward=False), context())
    b.fit(trials())
    assert [r["unmasked_steps"] for r in b.curves] == [4.0, 8.0, 10.0]
    assert all(r["valid_recon"] == r["valid_window_nll"] for r in b.curves)
    both = NodeSAEBaseline(SAEConfig(**TINY, latent_dim=2), context())
    both.fit(trials())
    assert all(r["valid_recon"] != r["valid_window_nll"] for r in both.curves)
    assert b.predict(trials()).heldout_forward.shape == (16, FWD, N_OUT)


@pytest.mark.parametrize("cls, cfg", [(NodeSAEBaseline, SAEConfig), (GRUSAEBaseline, GRUSAEConfig)])
def test_fit_predict_latents_and_determinism(cls, cfg):
    tr = trials()
    a, b = cls(cfg(**TINY, latent_dim=3), context(1)), cls(cfg(**TINY, latent_dim=3), context(1))
    a.fit(tr)
    b.fit(tr)
    ra, rb = a.predict(tr), b.predict(tr)
    assert ra.heldin.shape == (16, T, N_IN) and ra.heldout.shape == (16, T, N_OUT)
    assert ra.heldin_forward.shape == (16, FWD, N_IN) and ra.heldout_forward.shape == (16, FWD, N_OUT)
    assert (ra.heldin > 0).all() and np.isfinite(ra.heldout).all()
    np.testing.assert_array_equal(ra.heldout, rb.heldout)
    assert a.latents(tr).shape == (16, T, 3)


def test_configs_and_registry():
    node, gru = SAEConfig(), GRUSAEConfig()
    assert (node.lr, node.weight_decay, node.dropout, node.batch_size, node.max_epochs) == (5e-3, 1e-5, 0.05, 650, 3000)
    assert (node.unmask_step, node.unmask_every, node.vf_hidden, node.enc_dim) == (5, 150, 128, 64)
    assert (gru.dynamics, gru.lr, gru.weight_decay, gru.unmask_start) == ("gru", 1e-3, 1e-4, 0)
    assert get_baseline("node_sae") is NodeSAEBaseline and get_baseline("gru_sae") is GRUSAEBaseline
    for cls in (NodeSAEBaseline, GRUSAEBaseline):
        paper, sources = resolve_config(cls, "lorenz", 5, profile="none")
        assert paper.max_epochs == 3000 and paper.batch_size == 650 and sources[-1].endswith("default.yaml")
        cpu, _ = resolve_config(cls, "mc_maze_small", 5, device="cpu")
        fast, _ = resolve_config(cls, "lorenz", 5, profile="fast")
        assert fast.max_epochs < cpu.max_epochs < paper.max_epochs
    with pytest.raises(NLBInputError, match="dynamics must be one of node, gru"):
        SAEConfig(dynamics="lstm")
    with pytest.raises(NLBInputError, match=r"latent_dim must be > 0 \(got 0\)"):
        SAEConfig(latent_dim=0)


def test_fixed_points_of_a_known_field():
    """f(h) = h - h^3 per coordinate: fixed points -1, 0, 1 in 1-D, found and merged from 40 starts."""
    fps = find_fixed_points(lambda h: h - h**3, np.linspace(-1.8, 1.8, 40)[:, None], steps=3000, lr=2e-2)
    np.testing.assert_allclose(np.sort(fps.points[:, 0]), [-1.0, 0.0, 1.0], atol=1e-3)
    assert fps.counts.sum() <= 40 and (fps.speeds < 1e-8).all()


def test_cli_run_on_tiny_lorenz_reports_truth(synthetic, tmp_path, capsys):
    folder = synthetic("lorenz", 24)
    out = tmp_path / "run"
    assert main(["run", "node_sae", "--dataset", "lorenz", "--data", str(folder), "--out", str(out), "--ci", "0",
                 "--profile", "fast", "--set", "max_epochs=2", "--set", "batch_size=8", "--set", "enc_dim=8",
                 "--set", "vf_hidden=16"]) == 0
    text = capsys.readouterr().out
    assert "state R2" in text and "(3 inferred vs 3 true dims)" in text
    truth = json.loads((out / "truth_metrics.json").read_text())
    assert truth["latent dims"] == 3 and truth["true latent dims"] == 3
    assert -10 <= truth["state R2"] <= 1 and truth["rate R2"] <= 1
