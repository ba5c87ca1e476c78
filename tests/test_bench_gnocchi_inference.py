"""bench_gnocchi_inference: it scores the fit's own validation trials through the fit's own readout."""

import json
import re
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.torch_core import internal_split, split_seed  # noqa: E402
from nlb_suite.errors import NLBInputError  # noqa: E402
from support.bench_scripts import fit_only_command, load_bench  # noqa: E402
from support.tiny_gnocchi import FWD, N_IN, N_OUT, TINY, T, baseline  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)


def test_the_split_drawn_again_is_the_fits_validation_split():
    """load_fit draws the split as internal_split(n, valid_frac, default_rng(split_seed(valid_seed, seed))); a fit
    must have held out the same trials (a new draw before the split in GnocchiBaseline._fit would break the
    diagnostic; this fails)."""
    trials = poisson_trials(20, T, N_IN, N_OUT, FWD, seed=4)
    for seed, valid_seed in ((0, None), (5, None), (5, 2)):
        model = baseline(seed=seed, valid_seed=valid_seed)
        model.fit(trials)
        rng = np.random.default_rng(split_seed(valid_seed, seed))
        np.testing.assert_array_equal(internal_split(trials.n_trials, model.config.valid_frac, rng)[1],
                                      model.validation_trials())


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


def test_a_fit_only_folder_loads_with_its_recorded_split_and_a_changed_record_is_refused(tmp_path):
    """fit_only.py records the validation trials' ids; load_fit draws the split again and checks it against them
    (a fit whose split no longer matches would be scored on trials it trained on). One line when they differ."""
    out = tmp_path / "fit"
    sets = {**TINY, "guidance": "[0.0, 1.0]", "valid_seed": 7}  # the split from its own seed, not the model seed
    done = subprocess.run(fit_only_command("gnocchi", 1, out, tmp_path / "work", sets),
                          capture_output=True, text=True, timeout=600)  # a tiny fit: seconds
    assert done.returncode == 0, done.stderr
    bench = load_bench("bench_gnocchi_inference")
    record = bench.fit_record(out)
    model, train, valid = bench.load_fit(out, record)
    assert list(train.trial_ids[valid]) == record["validation_trial_ids"] and len(valid) > 0
    frac = model.config.valid_frac
    np.testing.assert_array_equal(valid, internal_split(train.n_trials, frac, np.random.default_rng(7))[1])
    assert not np.array_equal(valid, internal_split(train.n_trials, frac, np.random.default_rng(1))[1])
    fit_json = json.loads((out / "fit.json").read_text())
    recorded = fit_json["validation_trial_ids"]
    trained_on = next(int(t) for t in train.trial_ids if int(t) not in recorded)
    for changed in (recorded[::-1], [trained_on, *recorded[1:]]):  # another order; a trial the fit trained on
        (out / "fit.json").write_text(json.dumps({**fit_json, "validation_trial_ids": changed}))
        with pytest.raises(NLBInputError, match="^" + re.escape(f"{out}: its validation trials are not those the "
                                                                "split gives now ")):
            bench.load_fit(out, bench.fit_record(out))
