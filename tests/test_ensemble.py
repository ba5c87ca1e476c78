"""`nlb-eval ensemble`: exact averaging, selection on internal validation only, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nlb_suite import __version__
from nlb_suite.cli import main
from nlb_suite.datasets.session import find_nwb_files
from nlb_suite.datasets.tensors import load
from nlb_suite.ensemble import MIN_SHARED, build_ensemble
from nlb_suite.h5io import sha256_file
from nlb_suite.metrics import bits_per_spike
from nlb_suite.runs import provenance_changes, trial_sets
from nlb_suite.submission import read_submission, write_submission


@pytest.fixture(scope="module")
def data(synthetic):
    folder = synthetic("mc_maze_small")
    tensors = load("mc_maze_small", folder, bin_ms=5, phase="val")
    train, evals = trial_sets(tensors)
    return folder, tensors, train, evals


def make_run(root, name, data, scale, noise_seed, score, valid_rows, **info_overrides):
    """A run folder by hand: rates = scale x (train-average PSTH) x log-normal noise; a recorded validation score."""
    folder, tensors, train, evals = data
    rng = np.random.default_rng(noise_seed)
    psth_in = train.spikes_heldin.mean(axis=0) + 0.01
    psth_out = train.spikes_heldout.mean(axis=0) + 0.01

    def noisy(base, n):
        return (scale * base * rng.lognormal(0, 0.4, size=(n, *base.shape))).astype(np.float32)
    fwd = tensors.train_input["train_spikes_heldin_forward"].shape[1]
    group = {"train_rates_heldin": noisy(psth_in, train.n_trials), "train_rates_heldout": noisy(psth_out, train.n_trials),
             "eval_rates_heldin": noisy(psth_in, evals.n_trials), "eval_rates_heldout": noisy(psth_out, evals.n_trials),
             "eval_rates_heldin_forward": np.full((evals.n_trials, fwd, psth_in.shape[1]), 0.1, np.float32),
             "eval_rates_heldout_forward": np.full((evals.n_trials, fwd, psth_out.shape[1]), 0.1, np.float32)}
    run = root / name
    run.mkdir()
    write_submission({tensors.result_key: group}, run / "submission.h5")
    info = {"dataset": "mc_maze_small", "result_key": tensors.result_key, "bin_ms": 5, "phase": "val",
            "baseline": "ndt", "seed": noise_seed, "device": "cpu", "synthetic": True, "data_dir": str(folder),
            "data_sha256": {p.name: sha256_file(p) for p in find_nwb_files(folder)},
            "n_train_trials": train.n_trials, "n_eval_trials": evals.n_trials, "timings": {}, "has_forward": True,
            "internal_validation": {"co-bps": score, "fp-bps": None, "n_trials": len(valid_rows),
                                    "trial_ids": [int(t) for t in train.trial_ids[valid_rows]]}}
    info.update(info_overrides)
    (run / "run.json").write_text(json.dumps(info))
    return run


@pytest.fixture()
def three(data, tmp_path):
    """Runs a (score 0.3), b (0.1, rates 4x too high) and c (0.2), sharing their first 12 validation trials."""
    rows = np.arange(12)
    return [make_run(tmp_path, "a", data, 1.0, 1, 0.3, rows), make_run(tmp_path, "b", data, 4.0, 2, 0.1, rows),
            make_run(tmp_path, "c", data, 1.0, 3, 0.2, np.arange(16))]


def test_average_exact_ranking_and_size_on_shared_validation_trials(data, three, tmp_path):
    _, _, train, _ = data
    out, sel, metrics = build_ensemble(three, tmp_path / "ens", ci=0, progress=False, tensors=data[1])
    assert [m.path.name for m in sel.ranked] == ["a", "c", "b"]  # by each run's own recorded score
    assert sel.shared_ids == [int(t) for t in train.trial_ids[:12]]
    subs = {r.name: next(iter(read_submission(r / "submission.h5").values())) for r in three}
    order = ["a", "c", "b"]
    want = []
    for k in (1, 2, 3):  # co-bps of the top-k average on the 12 shared validation trials, computed here
        avg = np.mean([subs[n]["train_rates_heldout"].astype(np.float64) for n in order[:k]], axis=0)
        want.append(bits_per_spike(avg.astype(np.float32)[:12], train.spikes_heldout[:12]))
    np.testing.assert_allclose([r["co-bps"] for r in sel.table], want, rtol=1e-6)
    assert sel.size == int(np.argmax(want)) + 1 == 2  # two noisy copies beat one; the 4x-too-high run hurts
    got = next(iter(read_submission(out / "submission.h5").values()))
    for arr, value in got.items():
        expect = np.mean([subs[n][arr].astype(np.float64) for n in ("a", "c")], axis=0).astype(np.float32)
        np.testing.assert_array_equal(value, expect)
    info = json.loads((out / "run.json").read_text())
    assert info["baseline"] == "ensemble" and info["ensemble"]["size"] == 2
    assert [r["chosen"] for r in info["ensemble"]["ranking"]] == [True, True, False]
    assert info["ensemble"]["members"] == [str(three[0]), str(three[2])]
    assert info["internal_validation"]["n_trials"] == 12
    assert info["submission_sha256"] == sha256_file(out / "submission.h5")  # compare/report check it
    assert np.isfinite(metrics["co-bps"]) and (out / "metrics.json").exists()


def test_eval_rates_never_move_the_choice(data, three, tmp_path):
    """Making run b's eval rates perfect (the eval spikes themselves) changes nothing in the selection."""
    _, tensors, _, _ = data
    sub = read_submission(three[1] / "submission.h5")
    group = sub[tensors.result_key]
    group["eval_rates_heldout"] = tensors.target_dict()["mc_maze_small"]["eval_spikes_heldout"].astype(np.float32) + 1e-3
    write_submission(sub, three[1] / "submission.h5")
    _, sel, _ = build_ensemble(three, tmp_path / "ens", ci=0, progress=False, tensors=data[1])
    assert [m.path.name for m in sel.members] == ["a", "c"]


def test_given_size_takes_the_top_runs(data, three, tmp_path):
    """--size K: the top K by recorded score, no size table; K = 1 copies the best run's rates exactly."""
    out, sel, _ = build_ensemble(three, tmp_path / "ens", size=1, ci=0, progress=False, tensors=data[1])
    assert [m.path.name for m in sel.members] == ["a"] and sel.table == []
    a = read_submission(three[0] / "submission.h5")
    got = read_submission(out / "submission.h5")
    for key, group in a.items():
        for arr, value in group.items():
            np.testing.assert_array_equal(got[key][arr], value)
    assert "given size" in json.loads((out / "run.json").read_text())["ensemble"]["rule"]


def test_size_range_bounds_the_validation_choice(data, three, tmp_path):
    """--min-size/--max-size: the size is still chosen on validation, only among those sizes; the table and
    the rule show the range (here validation alone picks 2: a floor of 3 forces the 4x-too-high run in)."""
    _, sel, _ = build_ensemble(three, tmp_path / "ens", ci=0, progress=False, tensors=data[1], min_size=3)
    assert [r["k"] for r in sel.table] == [3] and sel.size == 3 and "(k from 3 to 3)" in sel.rule
    full = build_ensemble(three, tmp_path / "all", ci=0, progress=False, tensors=data[1])[1]
    assert sel.table == full.table[2:]
    _, capped, _ = build_ensemble(three, tmp_path / "cap", ci=0, progress=False, tensors=data[1], max_size=1)
    assert capped.table == full.table[:1] and capped.size == 1 and "(k from 1 to 1)" in capped.rule
    info = json.loads((tmp_path / "ens" / "run.json").read_text())
    assert info["ensemble"]["size"] == 3 and [r["k"] for r in info["ensemble"]["sizes"]] == [3]


def _edit(run, **changes):
    info = json.loads((run / "run.json").read_text())
    for k, v in changes.items():
        if v is None:
            info.pop(k)
        else:
            info[k] = v
    (run / "run.json").write_text(json.dumps(info))


@pytest.mark.parametrize("change,expect", [
    ({"bin_ms": 20}, "run.json: bin_ms 20 differs from"),
    ({"phase": "test"}, "run.json: phase 'test' differs from"),
    ({"dataset": "mc_maze_medium"}, "run.json: dataset 'mc_maze_medium' differs from"),
    ({"n_train_trials": 7}, "run.json: n_train_trials 7 differs from"),
    ({"data_sha256": {"x.nwb": "0"}}, "run.json: data checksums differ from"),
    ({"internal_validation": None}, "run.json: internal_validation: missing or malformed"),
    ({"n_train_trials": None, "data_sha256": None}, "run.json: n_train_trials, data_sha256: missing (expected the "
                                                    "run.json of a current `nlb-eval run`"),
])
def test_mismatched_or_unscored_runs_fail_in_one_line(three, tmp_path, capsys, change, expect):
    _edit(three[2], **change)
    out = tmp_path / "ens"
    assert main(["ensemble", *map(str, three), "--out", str(out), "--ci", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nlb-eval ensemble: error: ") and "\n" not in err and "Traceback" not in err
    assert expect in err
    assert not out.exists() and not list(tmp_path.glob(".ens*"))


@pytest.mark.parametrize("args,expect", [
    (lambda r: [r[0]], "at least 2 runs"),
    (lambda r: [r[0], r[0]], "given twice"),
    (lambda r: [*r, "--size", "4"], "--size: 4 is not between 1 and the 3 runs"),
    (lambda r: [*r, "--min-size", "4"], "--min-size: 4 is not between 1 and the 3 runs"),
    (lambda r: [*r, "--max-size", "0"], "--max-size: 0 is not between 1 and the 3 runs"),
    (lambda r: [*r, "--min-size", "3", "--max-size", "2"], "--min-size: 3 is above --max-size 2"),
    (lambda r: [*r, "--size", "2", "--min-size", "1"], "give either --size or --min-size/--max-size"),
    (lambda r: [r[0], "missing_run"], "not a run folder"),
])
def test_bad_arguments(three, tmp_path, capsys, args, expect):
    out = tmp_path / "ens"
    assert main(["ensemble", *map(str, args(three)), "--out", str(out), "--ci", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and "\n" not in err
    assert not out.exists()


def test_too_few_shared_validation_trials_needs_size(data, three, tmp_path, capsys):
    """Runs whose validation splits barely overlap cannot be sized on them: one line asking for --size."""
    _, _, train, _ = data
    _edit(three[1], internal_validation={"co-bps": 0.1, "trial_ids": [int(t) for t in train.trial_ids[20:30]]})
    out = tmp_path / "ens"
    assert main(["ensemble", *map(str, three), "--out", str(out), "--ci", "0"]) == 2
    err = capsys.readouterr().err
    assert f"share 0 internal validation trials (need at least {MIN_SHARED}" in err and "--size K" in err
    assert main(["ensemble", *map(str, three), "--out", str(out), "--ci", "0", "--size", "2"]) == 0
    assert (out / "submission.h5").exists()


def test_out_rules(three, tmp_path, capsys):
    """A foreign folder is refused untouched; a previous run folder is replaced only with --overwrite."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert main(["ensemble", *map(str, three), "--out", str(foreign), "--ci", "0"]) == 2
    assert (foreign / "keep.txt").read_text() == "mine"
    old = tmp_path / "old"
    shutil.copytree(three[0], old)
    assert main(["ensemble", *map(str, three), "--out", str(old), "--ci", "0"]) == 2
    assert main(["ensemble", *map(str, three), "--out", str(old), "--ci", "0", "--overwrite"]) == 0
    assert json.loads((old / "run.json").read_text())["baseline"] == "ensemble"
    member = json.loads((three[0] / "run.json").read_text())
    assert main(["ensemble", *map(str, three), "--out", str(three[0]), "--ci", "0", "--overwrite"]) == 2  # an input
    assert "is one of the ensemble's member runs" in capsys.readouterr().err
    assert json.loads((three[0] / "run.json").read_text()) == member


def test_cli_prints_the_ranking_and_the_size_table(three, tmp_path, capsys):
    """The command's tables: the runs by their validation co-bps (which are in), then the co-bps of every
    candidate k with the chosen one marked."""
    out = tmp_path / "ens"
    assert main(["ensemble", *map(str, three), "--out", str(out), "--ci", "0", "--min-size", "2"]) == 0
    text = capsys.readouterr().out
    ranking = [line.split() for line in text.split("co-bps of the average")[0].splitlines()
               if line.lstrip()[:1].isdigit()]
    assert [(row[0], row[1].rsplit("/", 1)[-1], row[-1]) for row in ranking] == [
        ("1", "a", "yes"), ("2", "c", "yes"), ("3", "b", "no")]
    sizes = text.split("co-bps of the average")[1].split("ensemble of")[0].splitlines()
    assert sizes[1].split() == ["k", "validation", "co-bps", "chosen"]
    rows = [line.split() for line in sizes[3:] if line.strip()]
    assert [r[0] for r in rows] == ["2", "3"] and rows[0][-1] == "yes" and len(rows[1]) == 2
    assert "ensemble of 2 runs" in text and "(k from 2 to 3)" in text
    # its run.json says how it came about, the command and versions, but names no machine: its numbers are its
    # members' rates averaged (a report compares a run's machine with the others', which would then be noise)
    info = json.loads((out / "run.json").read_text())
    assert isinstance(info["command"], str) and info["nlb_suite"] == __version__ and "machine" not in info
    assert provenance_changes(info, "cpu") == ["machine not recorded"]
