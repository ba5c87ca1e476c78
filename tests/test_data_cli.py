"""`nlb-eval list/tensors/download`: outputs, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import os
import shutil
import stat
import time

import h5py
import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.datasets import download as dl
from nlb_suite.datasets import load
from nlb_suite.h5io import load_h5


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_datasets(capsys):
    rc, out, _ = run(capsys, "list", "datasets")
    assert rc == 0
    for name in ("mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium",
                 "mc_maze_small"):
        assert name in out
    assert "DANDI:000128/0.220113.0400" in out and "137+45" in out


def test_tensors_command_writes_the_loaded_tensors(synthetic, tmp_path, capsys):
    folder = synthetic("mc_maze_small")
    rc, out, _ = run(capsys, "tensors", "mc_maze_small", "--data", str(folder), "--bin", "20",
                     "--phase", "test", "--out", str(tmp_path))
    assert rc == 0 and "train_spikes_heldin" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_input.h5", "train_input.h5"]
    t = load("mc_maze_small", folder, 20, "test")
    np.testing.assert_array_equal(load_h5(tmp_path / "train_input.h5")["train_spikes_heldin"],
                                  t.train_spikes_heldin)
    assert "eval_spikes_heldout" not in load_h5(tmp_path / "eval_input.h5")  # hidden in phase test


def _assert_clean_error(rc, err, *fragments):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("argv, fragments", [
    (["tensors", "mc_mayze", "--data", "X", "--out", "O"], ["unknown dataset 'mc_mayze'", "mc_maze_small"]),
    (["tensors", "mc_maze", "--data", "X", "--bin", "7", "--out", "O"],
     ["unsupported bin width 7 ms", "expected one of 5, 20"]),
])
def test_bad_arguments(tmp_path, capsys, argv, fragments):
    argv = [a if a not in ("X", "O") else str(tmp_path / a) for a in argv]
    rc, _, err = run(capsys, *argv)
    _assert_clean_error(rc, err, *fragments)
    assert not (tmp_path / "O").exists()


def test_folder_without_nwb(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = run(capsys, "tensors", "mc_maze", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    _assert_clean_error(rc, err, str(tmp_path / "empty"), "no .nwb files found", "nlb-eval synth")


def test_missing_data_path(tmp_path, capsys):
    rc, _, err = run(capsys, "tensors", "mc_maze", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    _assert_clean_error(rc, err, "nope", "no such file or folder")


def _copy(folder, tmp_path):
    dest = tmp_path / "data"
    shutil.copytree(folder, dest)
    return dest, sorted(dest.glob("*train*.nwb"))[0]


def test_truncated_file(synthetic, tmp_path, capsys):
    dest, train = _copy(synthetic("mc_maze_small"), tmp_path)
    train.write_bytes(train.read_bytes()[: train.stat().st_size // 3])
    out = tmp_path / "o"
    rc, _, err = run(capsys, "tensors", "mc_maze_small", "--data", str(dest), "--out", str(out))
    _assert_clean_error(rc, err, train.name)
    assert not out.exists() or not any(out.iterdir())


def test_not_an_nwb_file(tmp_path, capsys):
    bad = tmp_path / "data" / "x.nwb"
    bad.parent.mkdir()
    bad.write_text("hello")
    rc, _, err = run(capsys, "tensors", "mc_maze", "--data", str(bad.parent), "--out", str(tmp_path / "o"))
    _assert_clean_error(rc, err, "x.nwb", "not an HDF5/NWB file")
    with h5py.File(bad, "w") as f:
        f["foo"] = 1
    rc, _, err = run(capsys, "tensors", "mc_maze", "--data", str(bad.parent), "--out", str(tmp_path / "o"))
    _assert_clean_error(rc, err, "x.nwb", "missing 'units' table")


def test_missing_trial_field(synthetic, tmp_path, capsys):
    dest, train = _copy(synthetic("mc_maze_small"), tmp_path)
    with h5py.File(train, "a") as f:
        del f["intervals/trials/move_onset_time"]
    out = tmp_path / "o"
    rc, _, err = run(capsys, "tensors", "mc_maze_small", "--data", str(dest), "--out", str(out))
    _assert_clean_error(rc, err, "trials", "move_onset_time")
    assert not out.exists() or not any(out.iterdir())


def test_missing_units_field(synthetic, tmp_path, capsys):
    dest, train = _copy(synthetic("mc_maze_small"), tmp_path)
    with h5py.File(train, "a") as f:
        del f["units/spike_times"]
    rc, _, err = run(capsys, "tensors", "mc_maze_small", "--data", str(dest), "--out", str(tmp_path / "o"))
    _assert_clean_error(rc, err, train.name, "missing field 'spike_times'")


# ----- download: real code up to the network boundary ---------------------------------------------

def test_download_offline_fails_fast_with_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dl, "DANDI_API", "https://dandi.invalid/api")
    t0 = time.perf_counter()
    rc, _, err = run(capsys, "download", "mc_maze_small", "--out", str(tmp_path))
    assert time.perf_counter() - t0 < 10
    _assert_clean_error(rc, err, "cannot reach DANDI", "DANDI:000140/0.220113.0408", "nlb-eval synth mc_maze_small")


def test_download_calls_dandi_client_with_pinned_version(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_download(urls, output_dir, **kwargs):
        calls.append((urls, output_dir, kwargs))
        folder = output_dir / "000140" / "sub-Jenkins"
        folder.mkdir(parents=True)
        for kind in ("train_behavior+ecephys", "test_ecephys"):
            (folder / f"sub-Jenkins_ses-small_desc-{kind}.nwb").write_bytes(b"")

    import dandi.download

    monkeypatch.setattr(dl, "dandi_reachable", lambda *a, **k: True)
    monkeypatch.setattr(dandi.download, "download", fake_download)
    rc, out, _ = run(capsys, "download", "mc_maze_small", "--out", str(tmp_path))
    assert rc == 0 and str(tmp_path / "000140" / "sub-Jenkins") in out
    (url, out_dir, kwargs), = calls
    assert url == "DANDI:000140/0.220113.0408" and out_dir == tmp_path
    assert kwargs["existing"] == dandi.download.DownloadExisting.OVERWRITE_DIFFERENT  # checksum-based skip


def test_download_reports_missing_files(tmp_path, capsys, monkeypatch):
    import dandi.download

    monkeypatch.setattr(dl, "dandi_reachable", lambda *a, **k: True)
    monkeypatch.setattr(dandi.download, "download", lambda *a, **k: None)
    rc, _, err = run(capsys, "download", "area2_bump", "--out", str(tmp_path))
    _assert_clean_error(rc, err, "DANDI:000127/0.220113.0359", "no train or test NWB file")


def test_download_client_failure_is_one_line(tmp_path, capsys, monkeypatch):
    import dandi.download

    def boom(*a, **k):
        raise RuntimeError("digest mismatch for sub-Han_desc-train_behavior+ecephys.nwb")

    monkeypatch.setattr(dl, "dandi_reachable", lambda *a, **k: True)
    monkeypatch.setattr(dandi.download, "download", boom)
    rc, _, err = run(capsys, "download", "area2_bump", "--out", str(tmp_path))
    _assert_clean_error(rc, err, "download failed", "digest mismatch")


# ----- tensors --out: only a previous tensors folder is replaced, with --overwrite ------------------

def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_tensors_replace_only_their_own_folder_and_drop_a_stale_target(synthetic, tmp_path, capsys):
    folder = synthetic("mc_maze_small")
    out = tmp_path / "t"
    base = ["tensors", "mc_maze_small", "--data", str(folder), "--bin", "20", "--out", str(out)]
    assert run(capsys, *base, "--phase", "val")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["eval_input.h5", "target_data.h5", "train_input.h5"]
    before = _tree(out)
    rc, _, err = run(capsys, *base, "--phase", "test")
    _assert_clean_error(rc, err, f"{out}: --out: holds a previous tensors folder", "--overwrite")
    assert _tree(out) == before
    assert run(capsys, *base, "--phase", "test", "--overwrite")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["eval_input.h5", "train_input.h5"]  # no stale val target
    (out / "notes.txt").write_text("mine")  # now it is not only ours: never touched, even with --overwrite
    before = _tree(out)
    rc, _, err = run(capsys, *base, "--phase", "val", "--overwrite")
    _assert_clean_error(rc, err, f"{out}: --out: not a previous tensors folder; nothing touched")
    assert _tree(out) == before
    before = _tree(folder)  # the data folder itself
    rc, _, err = run(capsys, *base[:-1], str(folder), "--overwrite")
    _assert_clean_error(rc, err, f"{folder}: --out: not a previous tensors folder")
    assert _tree(folder) == before


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_tensors_files_follow_the_umask(synthetic, tmp_path, capsys, umask):
    old = os.umask(umask)
    try:
        assert run(capsys, "tensors", "mc_maze_small", "--data", str(synthetic("mc_maze_small")), "--bin", "20",
                   "--out", str(tmp_path / "a" / "t"), "--no-psth")[0] == 0
    finally:
        os.umask(old)
    for p in [tmp_path / "a", tmp_path / "a" / "t"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o777 & ~umask, p
    for p in (tmp_path / "a" / "t").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p
