"""Synthetic NLB generator: layout, determinism, ground truth, nlb_tools compatibility and quirks."""

from __future__ import annotations

import logging
import warnings

import h5py
import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.datasets.specs import get_dataset
from nlb_suite.datasets.synthetic import write_synthetic
from nlb_suite.datasets.synthetic_dynamics import MAX_RATE_HZ
from nlb_suite.errors import NLBInputError

logging.getLogger("nlb_tools").setLevel(logging.ERROR)

KINDS = ("mc_maze_small", "mc_rtt", "area2_bump", "dmfc_rsg")  # one dataset of each task family
N_TRIALS = 16


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One small synthetic folder per task family (shared by the whole module)."""
    root = tmp_path_factory.mktemp("synth")
    return {name: write_synthetic(name, root / name, seed=3, trials=N_TRIALS) for name in KINDS}


def _nwb(path):
    from pynwb import NWBHDF5IO

    io = NWBHDF5IO(str(path), "r")
    return io, io.read()


def _load_nlb(ds):
    from nlb_tools.nwb_interface import NWBDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NWBDataset(str(ds.nwb_dir))


def test_layout_and_counts(made):
    for name, ds in made.items():
        spec = get_dataset(name)
        assert ds.train_file == ds.path / spec.train_file and ds.train_file.exists()
        assert ds.test_file == ds.path / spec.test_file and ds.test_file.exists()
        assert (ds.n_train + ds.n_val, ds.n_val) == (N_TRIALS, 4)
        assert ds.n_test == max(1, round(N_TRIALS * spec.n_test / spec.n_train_val))
        io, f = _nwb(ds.train_file)
        units, trials = f.units.to_dataframe(), f.trials.to_dataframe()
        assert len(units) == spec.n_heldin + spec.n_heldout
        assert int(units.heldout.sum()) == spec.n_heldout
        assert list(trials.index) == list(range(len(trials)))
        counts = trials.split.value_counts().to_dict()
        assert (counts["train"], counts["val"], counts["none"]) == (ds.n_train, ds.n_val, ds.n_none)
        assert set(spec.trial_fields) <= set(trials.columns)
        series = set(f.processing["behavior"].data_interfaces) if "behavior" in f.processing else set()
        assert series == {s for s, _ in spec.series}
        io.close()
        io, f = _nwb(ds.test_file)
        test_units, test_trials = f.units.to_dataframe(), f.trials.to_dataframe()
        assert len(test_units) == spec.n_heldin and not test_units.heldout.any()
        assert list(test_units.index) == list(units.index[~units.heldout])  # same ids as the train file
        assert (test_trials.split == "test").all() and len(test_trials) == ds.n_test
        assert "behavior" not in f.processing
        if name == "dmfc_rsg":
            assert test_trials.tp.isna().all() and trials[trials.split != "none"].tp.notna().all()
        io.close()


def test_deterministic(tmp_path):
    """One seed gives byte-identical files (object ids, identifier and dates included), so the data checksums a
    run records still match a regenerated dataset; another seed gives other rates."""
    from nlb_suite.h5io import sha256_file

    a = write_synthetic("mc_rtt", tmp_path / "a", seed=7, trials=8)
    b = write_synthetic("mc_rtt", tmp_path / "b", seed=7, trials=8)
    c = write_synthetic("mc_rtt", tmp_path / "c", seed=8, trials=8)
    for key in ("train_file", "test_file", "ground_truth"):
        assert sha256_file(getattr(a, key)) == sha256_file(getattr(b, key)), key
    with h5py.File(a.train_file, "r") as f:
        ids = [obj.attrs["object_id"] for obj in [f, *_all_objects(f)] if "object_id" in obj.attrs]
    assert len(ids) > 10 and len(set(ids)) == len(ids)  # pinned, still one per object
    with h5py.File(a.ground_truth, "r") as f, h5py.File(c.ground_truth, "r") as g:
        assert not np.array_equal(f["train/rates"][()], g["train/rates"][()])


def _all_objects(f: h5py.File) -> list:
    out: list = []
    f.visititems(lambda _, obj: out.append(obj))
    return out


def test_ground_truth_consistent(made):
    for name, ds in made.items():
        with h5py.File(ds.ground_truth, "r") as gt:
            assert gt.attrs["bin_ms"] == 5 and gt.attrs["dataset"] == name and gt.attrs["seed"] == 3
            for kind, path in (("train", ds.train_file), ("test", ds.test_file)):
                rates, heldout = gt[f"{kind}/rates"][()], gt[f"{kind}/heldout"][()]
                io, f = _nwb(path)
                units = f.units.to_dataframe()
                n_ms = int(round(units.obs_intervals.iloc[0][-1][-1] * 1000))
                assert rates.dtype == np.float32 and rates.shape == (-(-n_ms // 5), len(units))
                assert gt[f"{kind}/latents"].shape[0] == rates.shape[0]
                assert np.array_equal(heldout, units.heldout.to_numpy())
                counts = np.zeros_like(rates)
                for j, st in enumerate(units.spike_times):
                    bins = (np.round(np.asarray(st) * 1000, 6).astype(int)) // 5
                    np.add.at(counts[:, j], bins, 1)
                    assert np.all(np.diff(st) >= 0) and st[-1] < units.obs_intervals.iloc[0][-1][-1]
                io.close()
                assert np.all(counts[rates == 0] == 0)  # no spikes where nothing is expected (gaps)
                assert abs(counts.sum() / rates.sum() - 1) < 0.03
                hz = rates[rates > 0] / 0.005
                assert 3 < hz.mean() < 40 and np.mean(hz > 0.75 * MAX_RATE_HZ) < 0.01  # physiological rates
            assert gt["test/heldout_rates"].shape[1] == get_dataset(name).n_heldout


@pytest.mark.parametrize("name", KINDS)
def test_nlb_tools_tensors(made, name):
    from nlb_tools.make_tensors import make_eval_input_tensors, make_train_input_tensors

    ds, spec = made[name], get_dataset(name)
    data = _load_nlb(ds)
    data.resample(5)
    n_bins = spec.n_bins(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = make_train_input_tensors(data, name, "train", save_file=False, include_behavior=True,
                                         include_forward_pred=True)
        val = make_eval_input_tensors(data, name, "val", save_file=False)
        test = make_eval_input_tensors(data, name, "test", save_file=False)
    assert train["train_spikes_heldin"].shape == (ds.n_train, n_bins, spec.n_heldin)
    assert train["train_spikes_heldout"].shape == (ds.n_train, n_bins, spec.n_heldout)
    assert train["train_spikes_heldin_forward"].shape == (ds.n_train, 40, spec.n_heldin)
    for key in ("train_spikes_heldin", "train_spikes_heldout", "train_spikes_heldin_forward"):
        assert not np.isnan(train[key]).any(), key
    if spec.behavior_source == "data":  # NaN behaviour only in the lead of a negatively lagged window
        lead = max(-(spec.lag_ms or 0), 0) // 5
        assert not np.isnan(train["train_behavior"][:, lead:]).any()
        assert np.isnan(train["train_behavior"][:, :lead]).any() == (lead > 0)
    assert val["eval_spikes_heldin"].shape == (ds.n_val, n_bins, spec.n_heldin)
    assert test["eval_spikes_heldin"].shape == (ds.n_test, n_bins, spec.n_heldin)


def test_quirks_present(made):
    for name, ds in made.items():
        spec = get_dataset(name)
        io, f = _nwb(ds.train_file)
        trials, units = f.trials.to_dataframe(), f.units.to_dataframe()
        obs = units.obs_intervals.iloc[0]
        assert all(np.array_equal(o, obs) for o in units.obs_intervals)
        assert len(obs) >= 3  # at least two gaps
        edges_ms = obs.ravel()[1:-1] * 1000
        assert np.any(np.abs(edges_ms / 5 - np.round(edges_ms / 5)) > 1e-6)  # gap edges off the bin grid
        align = trials[spec.train_window.align_field].dropna().to_numpy() * 1000
        assert np.any(np.abs(align - np.round(align)) > 1e-3)  # off the millisecond grid
        assert np.any(np.abs(align / 5 - np.round(align / 5)) < 1e-9)  # and some exactly on 5 ms edges
        spikes = np.concatenate(list(units.spike_times)) * 1000
        on_edge = np.abs(spikes - np.round(spikes / 5) * 5) == 0
        assert on_edge.any() and np.any(on_edge & (np.round(spikes) % 20 == 0))
        same_ms = [np.any(np.diff(np.round(np.asarray(st) * 1000, 6).astype(int)) == 0) for st in units.spike_times]
        assert any(same_ms)
        assert (trials.split == "none").any()
        if spec.train_window.align_field != "start_time":
            assert trials.loc[trials.split == "none", spec.train_window.align_field].isna().any()
        if spec.series:
            vel = f.processing["behavior"][spec.series[0][0]].data[()]
            assert np.isnan(vel).any()
        io.close()


def _windows_and_gaps(ds, kind):
    """(trials, window lo incl. negative lag, window hi incl. forward/lag/jitter, gaps) of one file."""
    spec = ds.spec
    io, f = _nwb(getattr(ds, f"{kind}_file"))
    trials, obs = f.trials.to_dataframe(), f.units.to_dataframe().obs_intervals.iloc[0]
    io.close()
    a, b = spec.train_window.offsets
    use = trials[trials.split != "none"]
    align = use[spec.train_window.align_field].to_numpy()
    lo = align + a / 1000 - max(-(spec.lag_ms or 0), 0) / 1000
    hi = align + (b + 200 + max(spec.lag_ms or 0, 0) + (300 if spec.jitter else 0)) / 1000
    assert np.all((lo >= obs[0, 0]) & (hi <= obs[-1, 1]))
    return use, lo, hi, np.stack([obs[:-1, 1], obs[1:, 0]], axis=1)


def test_gaps_near_but_outside_train_file_windows(made):
    """nlb_tools cannot stack train/val windows with NaN bins: train-file gaps stay outside, near edges."""
    for name, ds in made.items():
        _, lo, hi, gaps = _windows_and_gaps(ds, "train")
        for g0, g1 in gaps:
            assert not np.any((lo < g1) & (hi > g0)), (name, g0, g1)
            assert np.min(np.abs(np.concatenate([g0 - hi, lo - g1]))) < 0.3
        # the first gap ends within 100 ms of the next window: inside the PSTH kernel's reach
        assert np.min(np.abs(lo - gaps[0, 1])) < 0.1, name


def test_test_file_gaps_inside_windows(made):
    """Test windows hold short gaps (eval input keeps NaN bins), edges off the 5 ms grid; others outside."""
    for name, ds in made.items():
        _, lo, hi, gaps = _windows_and_gaps(ds, "test")
        inside = [(g0, g1) for g0, g1 in gaps if np.any((lo < g1) & (hi > g0))]
        assert inside and len(inside) < len(gaps), name
        for g0, g1 in inside:
            assert 0.003 <= g1 - g0 <= 0.1 + 0.002 and np.any((lo <= g0) & (g1 <= hi)), (name, g0, g1)
            assert np.floor(g0 * 1000) % 5 and np.ceil(g1 * 1000) % 5, (name, g0, g1)


def test_behaviour_nan_in_lagged_lead_only(made):
    """area2_bump (lag -20 ms): behaviour NaN of one series or all inside [window - 20 ms, window) of
    some train and val trials; never in a window nlb_tools cuts without NaN (train, forward)."""
    ds = made["area2_bump"]
    spec = ds.spec
    io, f = _nwb(ds.train_file)
    trials = f.trials.to_dataframe()
    beh = {name: np.isnan(f.processing["behavior"][name].data[()]).any(axis=1) for name, _ in spec.series}
    io.close()
    a, b = spec.train_window.offsets
    hit: dict[str, set] = {"train": set(), "val": set()}
    for _, tr in trials[trials.split.isin(["train", "val"])].iterrows():
        start = tr.move_onset_time * 1000 + a
        window = np.arange(int(np.ceil(start)), int(np.ceil(tr.move_onset_time * 1000 + b + 200)))
        lead = np.arange(int(np.ceil(start + spec.lag_ms)), int(np.ceil(start)))
        for name, nan in beh.items():
            assert not nan[window].any(), (name, tr.name)
            if nan[lead].any():
                hit[tr.split].add(name)
    assert hit["train"] and hit["val"]
    assert len(hit["train"] | hit["val"]) == len(beh)  # some stretches NaN every series


def test_no_quirks(tmp_path):
    ds = write_synthetic("mc_maze_small", tmp_path, trials=8, quirks=False)
    io, f = _nwb(ds.train_file)
    trials, units = f.trials.to_dataframe(), f.units.to_dataframe()
    assert len(units.obs_intervals.iloc[0]) == 1
    align = trials.move_onset_time.to_numpy() * 1000
    assert np.allclose(align, np.round(align), atol=1e-6) and trials.move_onset_time.notna().all()
    assert not np.isnan(f.processing["behavior"]["hand_vel"].data[()]).any()
    io.close()


def test_behaviour_is_consistent(made):
    ds = made["mc_maze_small"]
    io, f = _nwb(ds.train_file)
    beh = f.processing["behavior"]
    pos, vel = beh["hand_pos"].data[()], beh["hand_vel"].data[()]
    ok = ~np.isnan(pos).any(axis=1) & ~np.isnan(vel).any(axis=1)
    start = np.flatnonzero(ok)[0]
    run = start + np.flatnonzero(~ok[start:])[0] if (~ok[start:]).any() else len(ok)
    integral = pos[start] + np.cumsum(vel[start:run], axis=0) / 1000
    assert np.max(np.abs(integral - pos[start:run])) < 2.0  # mm: position is the integral of velocity
    assert np.percentile(np.hypot(*vel[ok].T), 99) > 200  # real reaches, hundreds of mm/s
    io.close()


def test_bad_input(tmp_path, capsys):
    with pytest.raises(NLBInputError):
        write_synthetic("not_a_dataset", tmp_path)
    for bad in (0, 3, -5, 2.5, True):
        with pytest.raises(NLBInputError):
            write_synthetic("mc_rtt", tmp_path, trials=bad)
    assert main(["synth", "not_a_dataset", "--out", str(tmp_path)]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["synth", "mc_rtt", "--out", str(tmp_path), "--trials", "2"]) == 2
    assert not any(tmp_path.rglob("*.nwb"))


def test_cli_summary(tmp_path, capsys):
    assert main(["synth", "mc_rtt", "--out", str(tmp_path), "--trials", "8", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "mean rate Hz" in out and "6/2/0/2" in out
    assert (tmp_path / "ground_truth.h5").exists()
    # again on the same folder: replaced only with --overwrite, never once something else is in it
    truth = (tmp_path / "ground_truth.h5").read_bytes()
    assert main(["synth", "mc_rtt", "--out", str(tmp_path), "--trials", "8", "--seed", "2"]) == 2
    assert "holds a previous synthetic dataset folder" in capsys.readouterr().err
    assert (tmp_path / "ground_truth.h5").read_bytes() == truth
    assert main(["synth", "mc_rtt", "--out", str(tmp_path), "--trials", "8", "--seed", "2", "--overwrite"]) == 0
    assert (tmp_path / "ground_truth.h5").read_bytes() != truth
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["synth", "mc_rtt", "--out", str(tmp_path), "--trials", "8", "--overwrite"]) == 2
    assert "not a previous synthetic dataset folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.")]  # no temp folders


def test_off_grid_alignments_keep_every_window_whole():
    """An off-grid alignment within 1 us after a millisecond would make nlb_tools' window one bin short."""
    from nlb_suite.datasets.synthetic_tasks import _snap_alignment

    class OffGrid:  # the quirk's draws: every trial off the grid
        def random(self, n):
            return np.ones(n)

    starts = np.array([1.0000009, 2.0000015, 3.0004, 4.000002])
    snapped = _snap_alignment(starts, np.zeros(4), True, OffGrid())
    np.testing.assert_allclose(snapped, [1.0000059, 2.0000065, 3.0004, 4.000002], rtol=0, atol=1e-12)
    start_ns = np.round(snapped * 1e9).astype(np.int64) - 250_000_000  # mc_maze window: onset - 250 ms ...
    end_ns = start_ns + 700_000_000 - 1000  # ... to onset + 450 ms, less nlb_tools' 1 us
    lengths = end_ns // 5_000_000 + 1 - -(-start_ns // 5_000_000)
    assert lengths.tolist() == [140, 140, 140, 140]


def test_sigterm_mid_write_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    """SIGTERM (a scheduler, `timeout`) ends a command like Ctrl-C: its temporary output is removed, exit 143."""
    import os
    import signal
    import time
    from pathlib import Path

    import nlb_suite.datasets.synthetic as synthetic

    def half_written(name, out, **kwargs):
        (Path(out) / "sub-Jenkins").mkdir()
        (Path(out) / "sub-Jenkins" / "part.nwb").write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM was not turned into an exception")

    monkeypatch.setattr(synthetic, "write_synthetic", half_written)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["synth", "mc_maze_small", "--out", str(tmp_path / "new")]) == 143
    assert "terminated" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary folder
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is main's only while it runs
