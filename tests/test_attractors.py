"""Known-dynamics datasets (lorenz, rossler, arneodo, chaotic_rnn): NLB layout, contiguous trials, truth round trip."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.datasets import load
from nlb_suite.datasets.session import load_session
from nlb_suite.datasets.specs import KNOWN_DYNAMICS, get_dataset
from nlb_suite.datasets.truth import truth_rates
from nlb_suite.datasets.truth_latents import truth_latents
from nlb_suite.errors import NLBInputError
from nlb_suite.runs import trial_sets

TRIALS = 40  # train + val; 10 test trials


@pytest.mark.parametrize("name", ["lorenz", "rossler", "arneodo"])
def test_attractor_layout_and_truth(synthetic, name):
    """70-bin trials, 40 forward bins, 10 + 3 units; log true rates are exactly affine in the true latents."""
    folder = synthetic(name, TRIALS)
    t = load(name, folder, bin_ms=5, phase="test")
    train, evals = trial_sets(t)
    assert train.spikes_heldin.shape == (TRIALS, 70, 10) and train.spikes_heldout.shape == (TRIALS, 70, 3)
    assert train.spikes_heldin_forward.shape == (TRIALS, 40, 10) and evals.spikes_heldin.shape == (10, 70, 10)
    # one contiguous trajectory: each trial's forward window is the start of the next trial
    np.testing.assert_array_equal(train.spikes_heldin_forward[:-1], train.spikes_heldin[1:, :40])
    np.testing.assert_array_equal(train.spikes_heldout_forward[:-1], train.spikes_heldout[1:, :40])
    session = load_session(folder)
    rates, lat = truth_rates(session, 5), truth_latents(session, 5)
    assert lat.shape[1] == 3
    rows = np.concatenate([train.bins.ravel(), evals.bins.ravel()])
    log_rates = np.log(np.concatenate([rates["spikes"], rates["heldout_spikes"]], axis=1)[rows])
    design = np.hstack([lat[rows], np.ones((len(rows), 1))])
    resid = log_rates - design @ np.linalg.lstsq(design, log_rates, rcond=None)[0]
    assert np.abs(resid).max() < 1e-4  # float32 latents
    # z-scored log-rates over the whole trajectory: mean exp(z) ~ exp(1/2); counts match the rates
    assert 1.2 < rates["spikes"][rows].mean() < 2.2
    assert abs(train.spikes_heldin.mean() / rates["spikes"][train.bins].mean() - 1) < 0.05
    # the behaviour series is the true state
    beh = t.train_input["train_behavior"].reshape(-1, 3)
    true = lat[train.bins.ravel()]
    assert min(np.corrcoef(beh[:, i], true[:, i])[0, 1] for i in range(3)) > 0.99


def test_lorenz_latents_are_the_lorenz_flow(synthetic):
    """The true latents follow dx/dt = sigma (y - x) on the z > 0 wing system (finite differences)."""
    session = load_session(synthetic("lorenz", TRIALS))
    k = next(i for i, f in enumerate(session.files) if "desc-train" in f.path.name)
    start = session.offsets_ms[k] // 5
    lat = truth_latents(session, 5)[start : start + session.lengths_ms[k] // 5]  # the train file's stretch
    assert lat.shape == (TRIALS * 70 + 40, 3) and np.isfinite(lat).all()
    x, y, z = lat[:-1].T
    dx = np.diff(lat[:, 0])
    ratio = dx / (10.0 * (y - x))  # = dt per step wherever the flow is not tiny
    ok = np.abs(y - x) > 5
    assert np.std(ratio[ok]) / np.mean(ratio[ok]) < 0.2 and np.mean(ratio[ok]) > 0
    assert 20 < z.mean() < 27  # the wings sit around z = rho - 1 = 27, the mean near 23.5


def test_splits_seeds_and_ground_truth_file(synthetic, tmp_path):
    folder = synthetic("lorenz", TRIALS)
    with h5py.File(folder.parent / "ground_truth.h5", "r") as f:
        assert f.attrs["dataset"] == "lorenz"
        assert f["train/rates"].shape == (TRIALS * 70 + 40, 13) and f["test/rates"].shape == (10 * 70 + 40, 10)
        assert f["test/heldout_rates"].shape == (740, 3) and f["train/latents"].shape == (TRIALS * 70 + 40, 3)
        first = f["train/latents"][()]
    t = load("lorenz", folder, bin_ms=5, phase="val")
    assert t.train_spikes_heldin.shape[0] == 32 and t.eval_spikes_heldin.shape[0] == 8  # 80/20 as 1280/320
    from nlb_suite.datasets.synthetic import write_synthetic

    again = write_synthetic("lorenz", tmp_path / "s1", seed=1, trials=TRIALS)
    with h5py.File(again.ground_truth, "r") as f:
        assert not np.allclose(f["train/latents"][()], first)  # another seed: another stretch of the attractor


def test_chaotic_rnn_conditions_and_rates(synthetic):
    folder = synthetic("chaotic_rnn", TRIALS)
    t = load("chaotic_rnn", folder, bin_ms=20, phase="val")
    assert t.train_spikes_heldin.shape[1:] == (50, 38) and t.train_input["train_spikes_heldout"].shape[2] == 12
    assert t.target["psth"].shape[1:] == (50, 50)
    session = load_session(folder)
    rates = truth_rates(session, 5)["spikes"]
    assert np.nanmax(rates) <= 30 * 0.005 + 1e-12 and np.nanmin(rates) >= 0  # 30 Hz (tanh + 1) / 2 per 5 ms
    by_id = dict(zip(session.trials["trial_id"].tolist(), session.trials["condition"].astype(int).tolist()))
    train, _ = trial_sets(load("chaotic_rnn", folder, bin_ms=5, phase="test"))
    cond = np.array([by_id[i] for i in train.trial_ids.tolist()])
    same = np.flatnonzero(cond == np.bincount(cond).argmax())
    assert len(same) >= 2  # replicates of one condition share their true rates exactly
    np.testing.assert_array_equal(rates[train.bins[same[0]]], rates[train.bins[same[1]]])
    assert truth_latents(session, 5).shape[1] == 50


def test_bad_requests_are_one_line_errors(synthetic, capsys):
    with pytest.raises(NLBInputError, match=r"350 ms trials are not a whole number of 20 ms bins"):
        load("lorenz", synthetic("lorenz", TRIALS), bin_ms=20)
    assert main(["download", "lorenz", "--out", "x"]) == 2
    assert "not on DANDI" in capsys.readouterr().err
    assert get_dataset("lorenz").synthetic_only and not get_dataset("mc_maze").synthetic_only
    assert set(KNOWN_DYNAMICS) == {"lorenz", "rossler", "arneodo", "chaotic_rnn"}


def test_oracle_run_scores_perfect_rate_r2(synthetic, tmp_path, capsys):
    folder = synthetic("lorenz", TRIALS)
    assert main(["run", "oracle", "--dataset", "lorenz", "--data", str(folder), "--out", str(tmp_path / "o"),
                 "--ci", "0"]) == 0
    out = capsys.readouterr().out
    assert "rate R2 (all units)         1.0000" in out
    import json

    truth = json.loads((tmp_path / "o" / "truth_metrics.json").read_text())
    assert truth["rate R2"] == pytest.approx(1.0, abs=1e-6) and truth["state R2"] is None
    assert truth["true latent dims"] == 3
    # compare shows the ground-truth columns; evaluate --truth scores a submission's rates
    assert main(["compare", str(tmp_path / "o"), "--ci", "0"]) == 0
    out = capsys.readouterr().out
    assert "rate R2 (truth)" in out and "state R2 (truth)" in out
    assert main(["tensors", "lorenz", "--data", str(folder), "--out", str(tmp_path / "t")]) == 0
    args = ["evaluate", "--target", str(tmp_path / "t" / "target_data.h5"),
            "--submission", str(tmp_path / "o" / "submission.h5")]
    assert main(args + ["--truth", str(folder), "--json", str(tmp_path / "e.json")]) == 0
    scored = json.loads((tmp_path / "e.json").read_text())["truth"]["lorenz"]
    assert scored["rate R2"] == pytest.approx(truth["rate R2"]) == pytest.approx(1.0, abs=1e-6)
    capsys.readouterr()
    assert main(args + ["--truth", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--truth" in err[0] and "no ground_truth.h5" in err[0]
