"""bench_gnocchi_inference: it scores the fit's own validation trials through the fit's own readout."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.torch_core import internal_split  # noqa: E402
from support.bench_scripts import load_bench  # noqa: E402
from support.tiny_gnocchi import FWD, N_IN, N_OUT, T, baseline  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)


def test_the_split_drawn_again_is_the_fits_validation_split():
    """load_fit draws the split as internal_split(n, valid_frac, default_rng(seed)); a fit must have held out the
    same trials (a new draw before the split in GnocchiBaseline._fit would break the diagnostic; this fails)."""
    trials = poisson_trials(20, T, N_IN, N_OUT, FWD, seed=4)
    for seed in (0, 5):
        model = baseline(seed=seed)
        model.fit(trials)
        drawn = internal_split(trials.n_trials, model.config.valid_frac, np.random.default_rng(seed))[1]
        np.testing.assert_array_equal(drawn, model.validation_trials())


def test_the_window_readout_is_every_neurons_log_rates_in_the_window():
    bench = load_bench("bench_gnocchi_inference")
    model = baseline(seed=1)
    model.build(N_IN, N_IN + N_OUT)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.model.latent_std.uniform_(0.5, 2.0, generator=generator)
        model.model.latent_mean.normal_(generator=generator)
        z = torch.randn(3, model.model.autoencoder.latent_length(T + FWD), model.model.dims.latent_dim,
                        generator=generator)
        expected = model.model.log_rates_of(z, T + FWD)[:, :T]
        got = bench.window_readout(model, T + FWD, T)(z)
    assert got.shape == (3, T, N_IN + N_OUT)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
