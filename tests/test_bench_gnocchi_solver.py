"""bench_gnocchi_solver's arms: each reaches the correction with its own solver and gradient."""

import pytest

torch = pytest.importorskip("torch")

from baselines.gnocchi_guidance import AffineReadout  # noqa: E402
from support.bench_scripts import load_bench  # noqa: E402
from support.tiny_gnocchi import FWD, N_IN, N_OUT, T, baseline  # noqa: E402


@pytest.mark.parametrize("arm", ["per_sample", "joint", "per_sample_autograd"])
def test_each_arm_guides_with_its_solver_and_gradient(arm, monkeypatch):
    import baselines.gnocchi as gnocchi_module

    bench = load_bench("bench_gnocchi_solver")
    solver, adjoint = bench.ARMS[arm]
    model = baseline(guidance_solver=solver)
    model.build(N_IN, N_IN + N_OUT)
    model = bench.with_gradient(model, adjoint)
    seen = []
    monkeypatch.setattr(gnocchi_module, "held_in_correction", lambda *args: seen.append((args[0], args[-1])))
    model._held_in_correction(torch.ones(2, T, N_IN).numpy(), n_samples=2, n_bins=T + FWD, scale=3.0)
    (log_rates, seen_solver), = seen
    assert seen_solver == solver and isinstance(log_rates, AffineReadout) == adjoint
