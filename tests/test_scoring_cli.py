"""`nlb-eval evaluate | validate | package` through nlb_suite.cli.main: return codes, output, files."""

from __future__ import annotations

import hashlib
import json
import logging

import h5py
import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.h5io import save_h5
from nlb_suite.submission import write_submission
from support.eval_targets import make_submission, make_target
from support.nlb_reference import assert_results_equal, nlb_tools_evaluate

logging.getLogger("nlb_tools").setLevel(logging.ERROR)


@pytest.fixture()
def files(tmp_path):
    """target.h5 (mc_maze + dmfc_rsg_20), good.h5 (mc_maze) and run/submission.h5 (dmfc_rsg_20)."""
    t1, tr1 = make_target("mc_maze", 5, seed=1)
    t2, tr2 = make_target("dmfc_rsg", 20, seed=2)
    s1, s2 = make_submission(t1, tr1, "realistic"), make_submission(t2, tr2, "realistic")
    save_h5({**t1, **t2}, tmp_path / "target.h5")
    write_submission(s1, tmp_path / "good.h5")
    (tmp_path / "run").mkdir()
    write_submission(s2, tmp_path / "run" / "submission.h5")
    return tmp_path, s1


def _bad(tmp_path, sub, edit):
    sub = {k: {n: np.array(a, dtype=np.float64) for n, a in g.items()} for k, g in sub.items()}
    edit(sub["mc_maze"])
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        for k, g in sub.items():
            for n, a in g.items():
                f.create_dataset(f"{k}/{n}", data=a)
    return path


def test_evaluate_prints_table_and_writes_nlb_tools_json(files, capsys):
    d, _ = files
    out = d / "res.json"
    assert main(["evaluate", "--target", str(d / "target.h5"), "--submission", str(d / "good.h5"),
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mc_maze_split" in text and "vel R2" in text and "psth R2" in text
    ref = nlb_tools_evaluate(str(d / "target.h5"), str(d / "good.h5"))
    assert_results_equal(json.loads(out.read_text()), ref)
    argv = ["evaluate", "--target", str(d / "target.h5"), "--submission", str(d / "good.h5"), "--json", str(out)]
    assert main(argv) == 2  # an earlier result is replaced only with --overwrite, and nothing else ever is
    assert "holds a previous evaluate --json result" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    assert_results_equal(json.loads(out.read_text()), ref)
    capsys.readouterr()
    assert main(argv[:-1] + ["-"]) == 0  # --json -: the JSON alone on stdout, the table on stderr
    printed = capsys.readouterr()
    assert json.loads(printed.out) == json.loads(out.read_text()) and "vel R2" in printed.err


def test_evaluate_with_bootstrap_is_seeded(files, capsys):
    d, _ = files
    args = ["evaluate", "--target", str(d / "target.h5"), "--submission", str(d / "good.h5"), "--ci", "50",
            "--per-neuron"]
    assert main(args + ["--json", str(d / "a.json")]) == 0
    assert main(args + ["--json", str(d / "b.json")]) == 0
    assert main(args + ["--json", str(d / "b.json"), "--overwrite"]) == 0  # the dict form is recognised too
    a, b = json.loads((d / "a.json").read_text()), json.loads((d / "b.json").read_text())
    assert a == b
    assert a["bootstrap"] == {"resamples": 50, "seed": 0, "level": 0.95}
    lo, hi = a["intervals"][0]["mc_maze_split"]["co-bps"]
    assert lo < a["results"][0]["mc_maze_split"]["co-bps"] < hi
    assert len(a["per_neuron_co_bps"]["mc_maze"]) == 5
    assert "95% lo" in capsys.readouterr().out


def _run_err(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("edit,message", [
    (lambda g: g.pop("eval_rates_heldin"), "mc_maze/eval_rates_heldin: array missing"),
    (lambda g: g.update(eval_rates_heldout=g["eval_rates_heldout"][1:]),
     "mc_maze/eval_rates_heldout: shape (29, 48, 5) (expected (30, 48, 5))"),
    (lambda g: g.update(train_rates_heldout=g["train_rates_heldout"][..., :4]),
     "mc_maze/train_rates_heldout: shape (60, 48, 4) (expected (60, 48, 5))"),
    (lambda g: g["eval_rates_heldout"].__setitem__((2, 3, 1), np.nan),
     "mc_maze/eval_rates_heldout: 1 NaN value(s) (first at [2, 3, 1]; expected finite rates >= 0)"),
    (lambda g: g["eval_rates_heldout"].__setitem__((2, 3, 1), -1.0),
     "mc_maze/eval_rates_heldout: 1 negative value(s) (first at [2, 3, 1]; expected finite rates >= 0)"),
    (lambda g: g["eval_rates_heldin"].__setitem__((0, 1, 2), -0.5),  # scored silently before
     "mc_maze/eval_rates_heldin: 1 negative value(s) (first at [0, 1, 2]; expected finite rates >= 0)"),
    (lambda g: g["train_rates_heldout"].__setitem__((4, 0, 3), np.inf),  # NaN vel R2 before
     "mc_maze/train_rates_heldout: 1 infinite value(s) (first at [4, 0, 3]; expected finite rates >= 0)"),
    (lambda g: g["eval_rates_heldout"].__setitem__((0, -1, 0), np.nan),  # where the target's spikes are NaN
     "mc_maze/eval_rates_heldout: 1 NaN value(s) (first at [0, 47, 0]; expected finite rates >= 0)"),
    (lambda g: g["eval_rates_heldin_forward"].__setitem__((1, 1, 1), -2.0),
     "mc_maze/eval_rates_heldin_forward: 1 negative value(s) (first at [1, 1, 1]; expected finite rates >= 0)"),
    (lambda g: g.update(eval_rates_heldout=np.round(g["eval_rates_heldout"]).astype(np.int32)),  # scored before
     "mc_maze/eval_rates_heldout: dtype int32 (expected float32)"),
])
def test_evaluate_bad_submission_is_one_line_exit_2(files, capsys, edit, message):
    d, sub = files
    bad = _bad(d, sub, edit)
    out = d / "never.json"
    rc, err = _run_err(["evaluate", "--target", str(d / "target.h5"), "--submission", str(bad),
                        "--json", str(out)], capsys)
    assert rc == 2
    assert err == f"nlb-eval evaluate: error: {bad}: {message}\n"
    assert not out.exists()
    if "value(s)" in message or "dtype" in message:  # what evaluate refuses, validate flags in the same words
        assert main(["validate", str(bad), "--target", str(d / "target.h5")]) == 1
        assert f"{bad}: {message}" in capsys.readouterr().out.splitlines()


def _cond_999(g):
    idx = g["eval_cond_idx"].copy()
    idx[0] = np.array([999], dtype=idx[0].dtype)
    g["eval_cond_idx"] = idx


@pytest.mark.parametrize("kind,edit,message", [
    ("mc_maze", lambda g: g.update(eval_spikes_heldin_forward=g["eval_spikes_heldin_forward"][..., 0]),
     "mc_maze/eval_spikes_heldin_forward: 2-d array of shape (30, 8) "
     "(expected eval trials x forward bins x held-in neurons (30, ?, ?))"),  # IndexError before
    ("mc_maze", lambda g: g.update(eval_spikes_heldout_forward=g["eval_spikes_heldout_forward"][:, :4]),
     "mc_maze/eval_spikes_heldout_forward: 3-d array of shape (30, 4, 5) "
     "(expected eval trials x forward bins x held-out neurons (30, 8, 5))"),
    ("mc_maze", lambda g: g.update(train_behavior=g["train_behavior"][:, 0, 0]),  # ValueError before
     "mc_maze/train_behavior: 1-d array of shape (60,) (expected train trials x bins x behaviour dims (?, ?, ?))"),
    ("mc_maze", lambda g: g.update(eval_behavior=np.concatenate([g["eval_behavior"]] * 2, -1)[..., :3]),
     "mc_maze/eval_behavior: 3-d array of shape (30, 48, 3) "
     "(expected eval trials x bins x behaviour dims, as in train_behavior (30, 48, 2))"),  # broadcast error before
    ("mc_maze", lambda g: g.update(eval_behavior=g["eval_behavior"][..., :1]),  # a wrong vel R2, exit 0 before
     "mc_maze/eval_behavior: 3-d array of shape (30, 48, 1) "
     "(expected eval trials x bins x behaviour dims, as in train_behavior (30, 48, 2))"),
    ("mc_maze", lambda g: g.update(train_behavior=np.full_like(g["train_behavior"], np.nan)),  # NaN vel R2 before
     "mc_maze/train_behavior: no finite value in the first behaviour dim "
     "(expected behaviour samples to fit and score the velocity decoder on)"),
    ("mc_maze", lambda g: g.update(psth=g["psth"][:2]),  # IndexError before
     "mc_maze/psth: 2 conditions but eval_cond_idx lists 6 (expected one PSTH per eval_cond_idx condition)"),
    ("mc_maze", lambda g: g.update(psth=g["psth"][..., 0]),  # blamed the submission before
     "mc_maze/psth: 2-d array of shape (6, 48) (expected conditions x bins x held-in + held-out neurons (?, 48, 17))"),
    ("mc_maze", lambda g: g.update(eval_jitter=np.where(np.arange(30) == 3, np.nan, 0.0)),  # blamed the sub before
     "mc_maze/eval_jitter: not all whole numbers (expected one whole-bin shift per eval trial)"),
    ("mc_maze", _cond_999,  # IndexError before
     "mc_maze/eval_cond_idx: condition 0 lists trial(s) [999] (expected per psth condition, a list of eval trial "
     "indices 0..29)"),
    ("dmfc_rsg", lambda g: g.update(eval_behavior=g["eval_behavior"][:, :4]),  # tp read from the ts column before
     "dmfc_rsg_20/eval_behavior: 2-d array of shape (30, 4) "
     "(expected eval trials x (is_eye, theta, is_short, ts, tp) (30, 5))"),
])
def test_evaluate_bad_target_is_one_line_exit_2(files, capsys, kind, edit, message):
    d, _ = files
    target, _ = make_target(kind, 5, seed=1) if kind == "mc_maze" else make_target(kind, 20, seed=2)
    (key, group), = target.items()
    group = dict(group)
    edit(group)
    bad = d / "bad_target.h5"
    save_h5({key: group}, bad)
    sub = d / ("good.h5" if kind == "mc_maze" else "run/submission.h5")
    out = d / "never.json"
    rc, err = _run_err(["evaluate", "--target", str(bad), "--submission", str(sub), "--json", str(out)], capsys)
    assert (rc, err) == (2, f"nlb-eval evaluate: error: {bad}: {message}\n")
    assert not out.exists()


def test_evaluate_target_group_that_is_an_array(files, capsys):
    d, _ = files
    bad = d / "flat.h5"
    with h5py.File(bad, "w") as f:
        f["mc_maze"] = np.zeros(3)  # AttributeError before
    rc, err = _run_err(["evaluate", "--target", str(bad), "--submission", str(d / "good.h5")], capsys)
    assert (rc, err) == (2, f"nlb-eval evaluate: error: {bad}: mc_maze: not a group "
                            "(expected a group of eval target arrays)\n")


def _corrupt_chunk(src, dst, name):
    """A copy of `src` with garbage in the first compressed chunk of dataset `name`."""
    import shutil

    shutil.copy(src, dst)
    with h5py.File(src, "r") as f:
        offset = f[name].id.get_chunk_info(0).byte_offset
    with open(dst, "r+b") as fh:
        fh.seek(offset + 10)
        fh.write(b"\xff" * 64)
    return dst


@pytest.mark.parametrize("role,name", [("--target", "mc_maze/eval_spikes_heldout"),
                                       ("--submission", "mc_maze/eval_rates_heldout")])
def test_evaluate_corrupt_chunk_names_file_and_array(files, capsys, role, name):
    d, _ = files
    good = {"--target": d / "target.h5", "--submission": d / "good.h5"}
    bad = _corrupt_chunk(good[role], d / "corrupt.h5", name)
    paths = {**good, role: bad}
    rc, err = _run_err(["evaluate", "--target", str(paths["--target"]), "--submission", str(paths["--submission"])],
                       capsys)
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"nlb-eval evaluate: error: {bad}: {name}: unreadable data (")
    assert err.endswith(" (expected an intact HDF5 file: write or download it again)\n")


def test_evaluate_dangling_links_name_file_and_field(files, capsys):
    import shutil

    d, _ = files
    sub = d / "sub_link.h5"
    shutil.copy(d / "good.h5", sub)
    with h5py.File(sub, "a") as f:
        del f["mc_maze/eval_rates_heldin_forward"]
        f["mc_maze/eval_rates_heldin_forward"] = h5py.SoftLink("/nowhere")  # KeyError traceback before
    tgt = d / "target_link.h5"
    with h5py.File(tgt, "w") as f:
        f["mc_maze"] = h5py.SoftLink("/nowhere")
    for target, bad, field in ((d / "target.h5", sub, "mc_maze/eval_rates_heldin_forward"), (tgt, tgt, "mc_maze")):
        rc, err = _run_err(["evaluate", "--target", str(target), "--submission", str(sub)], capsys)
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"nlb-eval evaluate: error: {bad}: {field}: broken link (")
        assert err.endswith(" (expected an array or group stored in the file)\n")


def test_evaluate_missing_and_non_hdf5_files(files, capsys):
    d, _ = files
    (d / "notes.txt").write_text("hello")
    rc, err = _run_err(["evaluate", "--target", str(d / "nope.h5"), "--submission", str(d / "good.h5")], capsys)
    assert (rc, err) == (2, f"nlb-eval evaluate: error: {d / 'nope.h5'}: file not found\n")
    rc, err = _run_err(["evaluate", "--target", str(d / "target.h5"), "--submission", str(d / "notes.txt")],
                       capsys)
    assert (rc, err) == (2, f"nlb-eval evaluate: error: {d / 'notes.txt'}: not an HDF5 file\n")


def test_evaluate_no_common_dataset(files, capsys):
    d, _ = files
    t, tr = make_target("mc_rtt", 5)
    write_submission(make_submission(t, tr), d / "rtt.h5")
    rc, err = _run_err(["evaluate", "--target", str(d / "target.h5"), "--submission", str(d / "rtt.h5")], capsys)
    assert rc == 2
    assert err == (f"nlb-eval evaluate: error: {d / 'rtt.h5'}: no dataset group in common with {d / 'target.h5'} "
                   "(expected one of dmfc_rsg_20, mc_maze; found mc_rtt)\n")


def test_validate_valid_file(files, capsys):
    d, _ = files
    assert main(["validate", str(d / "good.h5"), "--target", str(d / "target.h5")]) == 0
    assert capsys.readouterr().out == f"{d / 'good.h5'}: valid\n"


def test_validate_lists_every_problem(files, capsys):
    d, sub = files

    def edit(g):
        g["eval_rates_heldout"][0, 0, 0] = np.nan
        g["eval_rates_heldout"][1, 0, 0] = np.inf
        g["train_rates_heldin"][0, 1, 2] = -0.5
        g["eval_rates_heldin"] = g["eval_rates_heldin"][..., :11]
        g.pop("eval_rates_heldout_forward")
        g["train_rates_heldout"] = g["train_rates_heldout"].astype(np.int64)
        g["eval_rates_heldout_fwd"] = g["eval_rates_heldin_forward"]

    bad = _bad(d, sub, edit)
    with h5py.File(bad, "a") as f:
        f.create_dataset("mc_maze_5/eval_rates_heldout", data=np.ones((2, 2, 2)))
    assert main(["validate", str(bad), "--target", str(d / "target.h5")]) == 1
    out = capsys.readouterr().out.splitlines()
    b = str(bad)
    expected = [
        f"{b}: mc_maze/eval_rates_heldout_forward: array missing (needed with eval_rates_heldin_forward for fp-bps)",
        f"{b}: mc_maze: held-in neuron counts differ: train_rates_heldin 12, eval_rates_heldin 11, "
        "eval_rates_heldin_forward 12 (expected one count)",
        f"{b}: mc_maze/eval_rates_heldin: shape (30, 48, 11) (expected (30, 48, 12))",
        f"{b}: mc_maze/eval_rates_heldout: 1 NaN value(s) (first at [0, 0, 0]; expected finite rates >= 0)",
        f"{b}: mc_maze/eval_rates_heldout: 1 infinite value(s) (first at [1, 0, 0]; expected finite rates >= 0)",
        f"{b}: mc_maze/eval_rates_heldout_fwd: unknown array; did you mean 'eval_rates_heldout_forward'? "
        "(expected train_rates_heldin, train_rates_heldout, eval_rates_heldin, eval_rates_heldout, "
        "eval_rates_heldin_forward, eval_rates_heldout_forward)",
        f"{b}: mc_maze/train_rates_heldin: 1 negative value(s) (first at [0, 1, 2]; expected finite rates >= 0)",
        f"{b}: mc_maze/train_rates_heldout: dtype int64 (expected float32)",
    ]
    for line in expected:
        assert line in out
    assert any(line.startswith(f"{b}: mc_maze_5: unknown dataset group; did you mean 'mc_maze'?")
               for line in out)
    assert out[-1] == f"{b}: INVALID ({len(out) - 1} problems)"


def test_validate_unreadable_file_exits_2(files, capsys):
    d, _ = files
    rc, err = _run_err(["validate", str(d / "missing.h5")], capsys)
    assert (rc, err) == (2, f"nlb-eval validate: error: {d / 'missing.h5'}: file not found\n")


def test_package_merges_validates_and_writes_manifest(files, capsys):
    d, _ = files
    out = d / "submissions" / "mine.h5"
    assert main(["package", str(d / "good.h5"), str(d / "run"), "--out", str(out),
                 "--target", str(d / "target.h5"), "--phase", "test"]) == 0
    text = capsys.readouterr().out
    assert f"evalai challenge 1256 phase 2540 submit --file {out}" in text
    assert "--large" not in text
    with h5py.File(out, "r") as f:
        assert sorted(f) == ["dmfc_rsg_20", "mc_maze"]
        ds = f["mc_maze/eval_rates_heldout"]
        assert ds.dtype == np.float32 and ds.compression == "gzip"
    manifest = json.loads((d / "submissions" / "mine.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["datasets"]["dmfc_rsg_20"]["eval_rates_heldout"]["shape"] == [30, 12, 5]
    assert manifest["tool"]["name"] == "nlb_suite"
    assert (manifest["phase"], manifest["evalai"]["phase"], manifest["synthetic_runs"]) == ("test", 2540, [])
    assert main(["validate", str(out), "--target", str(d / "target.h5")]) == 0
    ref = nlb_tools_evaluate(str(d / "target.h5"), str(out))
    assert_results_equal(__import__("nlb_suite").evaluate(d / "target.h5", out), ref)


def test_package_refuses_invalid_duplicate_and_existing(files, capsys):
    d, sub = files
    bad = _bad(d, sub, lambda g: g["eval_rates_heldout"].__setitem__((0, 0, 0), np.nan))
    out = d / "s.h5"
    assert main(["package", str(bad), "--out", str(out), "--phase", "val"]) == 2
    captured = capsys.readouterr()
    assert "1 NaN value(s)" in captured.out and not out.exists()  # the validation report, then one error line
    errors = [line for line in captured.err.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("nlb-eval package: error: ") and "1 NaN value(s)" in errors[0]
    assert errors[0].endswith(f"; nothing written to {out}")
    assert list(d.glob(".s.h5*")) == []
    rc, err = _run_err(["package", str(d / "good.h5"), str(d / "good.h5"), "--out", str(out), "--phase", "val"],
                       capsys)
    assert (rc, err) == (2, f"nlb-eval package: error: {d / 'good.h5'}: mc_maze: group also present in "
                            f"{d / 'good.h5'} (expected each dataset group in exactly one input)\n")
    (d / "empty_run").mkdir()
    rc, err = _run_err(["package", str(d / "empty_run"), "--out", str(out)], capsys)
    assert rc == 2 and "run folder without submission.h5" in err and not out.exists()
    out.write_text("x")
    for extra in ([], ["--overwrite"]):  # a file package did not write is never replaced
        rc, err = _run_err(["package", str(d / "good.h5"), "--out", str(out), "--phase", "val"] + extra, capsys)
        assert (rc, err) == (2, f"nlb-eval package: error: {out}: --out: not a previous packaged submission; "
                                "nothing touched (expected a new file, or a previous packaged submission with "
                                "--overwrite)\n")
        assert out.read_text() == "x"


def _run_folder(d, name, phase, synthetic=False):
    """A run folder as `nlb-eval run` leaves it (submission.h5 + run.json) around good.h5's submission."""
    import shutil

    (d / name).mkdir()
    shutil.copy(d / "good.h5", d / name / "submission.h5")
    (d / name / "run.json").write_text(json.dumps({"dataset": "mc_maze", "bin_ms": 5, "phase": phase,
                                                   "baseline": "smoothing", "synthetic": synthetic}))
    return d / name


def test_package_takes_the_phase_from_run_json(files, capsys):
    d, _ = files
    val, test = _run_folder(d, "val_run", "val"), _run_folder(d, "test_run", "test")
    out = d / "p.h5"
    assert main(["package", str(val), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "phase val; upload with:" in text and "phase 2539 submit" in text and "2540" not in text
    assert json.loads((d / "p.manifest.json").read_text())["evalai"]["phase"] == 2539
    # run.json also counts when the run's submission.h5 is given as a file
    rc, err = _run_err(["package", str(test / "submission.h5"), "--out", str(d / "q.h5"), "--phase", "val"],
                       capsys)
    assert (rc, err) == (2, f"nlb-eval package: error: --phase val: {test} is a phase test run (run.json) "
                            "(expected --phase test or no --phase)\n")
    (test / "submission.h5").unlink()
    _bad(d, files[1], lambda g: None).rename(test / "submission.h5")
    with h5py.File(test / "submission.h5", "a") as f:
        f.move("mc_maze", "mc_rtt")
    rc, err = _run_err(["package", str(val), str(test), "--out", str(d / "q.h5")], capsys)
    assert (rc, err) == (2, f"nlb-eval package: error: package: runs of different phases (val: {val}; test: "
                            f"{test}) (expected runs of one phase)\n")
    rc, err = _run_err(["package", str(d / "good.h5"), "--out", str(d / "q.h5")], capsys)
    assert (rc, err) == (2, f"nlb-eval package: error: --phase: {d / 'good.h5'} has no run.json saying which "
                            "phase it was made for (expected --phase val or --phase test)\n")
    assert not (d / "q.h5").exists() and not (d / "q.manifest.json").exists()


def test_package_of_synthetic_runs_is_for_local_scoring(files, capsys):
    d, _ = files
    run = _run_folder(d, "synth_run", "val", synthetic=True)
    out = d / "s.h5"
    assert main(["package", str(run), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "evalai" not in text and f"note: built from synthetic data ({run}): for local scoring only" in text
    manifest = json.loads((d / "s.manifest.json").read_text())
    assert manifest["evalai"] is None and manifest["synthetic_runs"] == [str(run)]


def test_package_overwrite_replaces_only_its_own_file(files, capsys):
    d, _ = files
    run = _run_folder(d, "r", "val")
    out = d / "p.h5"
    assert main(["package", str(run), "--out", str(out)]) == 0
    capsys.readouterr()
    first = out.read_bytes()
    rc, err = _run_err(["package", str(run), "--out", str(out)], capsys)
    assert (rc, err) == (2, f"nlb-eval package: error: {out}: --out: holds a previous packaged submission "
                            "(expected --overwrite to replace it, or a new path)\n")
    assert out.read_bytes() == first
    assert main(["package", str(run), "--out", str(out), "--overwrite"]) == 0
    capsys.readouterr()
    (d / "x.manifest.json").write_text("{}")  # someone else's file where the manifest would go
    rc, err = _run_err(["package", str(run), "--out", str(d / "x.h5"), "--overwrite"], capsys)
    assert rc == 2 and "x.manifest.json: --out: not a previous package manifest; nothing touched" in err
    assert not (d / "x.h5").exists() and (d / "x.manifest.json").read_text() == "{}"


def test_upload_command_large_files(tmp_path):
    from nlb_suite.commands.scoring import upload_command

    p = tmp_path / "x.h5"
    assert upload_command(p, "test", 301 * 1024 * 1024).endswith(f"--file {p} --large")
    assert upload_command(p, "val", 10) == f"evalai challenge 1256 phase 2539 submit --file {p}"


def test_evaluate_compare_is_paired(files, capsys):
    d, _ = files
    base = ["evaluate", "--target", str(d / "target.h5"), "--submission", str(d / "good.h5")]
    rc, err = _run_err(base + ["--compare", str(d / "good.h5")], capsys)
    assert (rc, err) == (2, "nlb-eval evaluate: error: --compare: needs --ci N (the paired bootstrap's "
                            "resample count)\n")
    assert main(base + ["--compare", str(d / "good.h5"), "--ci", "30", "--json", str(d / "c.json")]) == 0
    rows = json.loads((d / "c.json").read_text())["compare"]["rows"]
    assert [r["metric"] for r in rows] == ["co-bps", "vel R2", "psth R2", "fp-bps"]
    assert all(r["a_minus_b"] == 0 and r["lo"] == 0 and r["hi"] == 0 and r["p_a_gt_b"] == 0 for r in rows)


def test_evaluate_and_compare_name_scaling_splits_like_nlb_tools(tmp_path):
    """A scaling set is 'mc_maze_scaling_split' with '[N] metric' names in results and in --compare rows."""
    t, tr = make_target("mc_maze", 20, seed=3)
    t = {"mc_maze_small_20": t.pop("mc_maze_20")}
    s = {"mc_maze_small_20": make_submission({"mc_maze_20": None}, tr, "realistic")["mc_maze_20"]}
    save_h5(t, tmp_path / "t.h5")
    write_submission(s, tmp_path / "s.h5")
    out = tmp_path / "c.json"
    assert main(["evaluate", "--target", str(tmp_path / "t.h5"), "--submission", str(tmp_path / "s.h5"),
                 "--compare", str(tmp_path / "s.h5"), "--ci", "10", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    ref = nlb_tools_evaluate(str(tmp_path / "t.h5"), str(tmp_path / "s.h5"))
    assert [list(d) for d in res["results"]] == [list(d) for d in ref] == [["mc_maze_scaling_20_split"]]
    names = list(res["results"][0]["mc_maze_scaling_20_split"])
    rows = res["compare"]["rows"]
    assert {r["split"] for r in rows} == {"mc_maze_scaling_20_split"}
    assert [r["metric"] for r in rows] == names == ["[100] co-bps", "[100] vel R2", "[100] psth R2", "[100] fp-bps"]
