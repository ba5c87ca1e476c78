"""bench_gnocchi_solver's arms: each reaches the correction with its own solver and gradient."""

import pytest

torch = pytest.importorskip("torch")

from baselines.gnocchi import GnocchiBaseline, GnocchiConfig  # noqa: E402
from baselines.gnocchi_guidance import AffineReadout  # noqa: E402
from nlb_suite.baseline_api import RunContext  # noqa: E402
from support.bench_scripts import load_bench  # noqa: E402

TINY = dict(code_dim=3, enc_width=8, enc_pool=2, latent_dim=4, latent_stride=2, ae_width=8, ae_kernel=3,
            unet_widths=[8, 16], emb_dim=8, n_steps=50, ddim_steps=5, n_samples=2)


@pytest.mark.parametrize("arm", ["per_sample", "joint", "per_sample_autograd"])
def test_each_arm_guides_with_its_solver_and_gradient(arm, monkeypatch):
    import baselines.gnocchi as gnocchi_module

    bench = load_bench("bench_gnocchi_solver")
    solver, adjoint = bench.ARMS[arm]
    model = GnocchiBaseline(GnocchiConfig(**TINY, guidance_solver=solver),
                            RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=5, n_heldout=3, n_forward_bins=4))
    model.build(5, 8)
    model = bench.with_gradient(model, adjoint)
    seen = []
    monkeypatch.setattr(gnocchi_module, "held_in_correction", lambda *args: seen.append((args[0], args[-1])))
    model._held_in_correction(torch.ones(2, 12, 5).numpy(), n_samples=2, n_bins=16, scale=3.0)
    (log_rates, seen_solver), = seen
    assert seen_solver == solver and isinstance(log_rates, AffineReadout) == adjoint
