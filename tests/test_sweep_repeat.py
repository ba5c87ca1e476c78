"""benchmarks/sweep_repeat.py: two sweep folders compared on what the seed fixes, not on times or Ray's ids."""

import json
import subprocess
import sys

from support.bench_scripts import BENCHMARKS

HEADER = "trial,status,lr,valid_best,best_epoch,epochs,fit_s\n"


def sweep(folder, prefix, rows, fit_s="10.0", lr_last="0.02", submission=b"model"):
    """A minimal sweep folder: trials.csv, sweep.json with the choice and lineage, best_run/submission.h5."""
    (folder / "best_run").mkdir(parents=True)
    (folder / "trials.csv").write_text(HEADER + "".join(
        f"{prefix}_{i:05d},done,{lr},{valid},160,300,{fit_s}\n" for i, (lr, valid) in enumerate(rows)))
    lineage = [{"trial": f"{prefix}_00001", "from_epoch": 0, "config": {"lr": 0.01}},
               {"trial": f"{prefix}_00000", "from_epoch": 100, "config": {"lr": float(lr_last)}}]
    (folder / "sweep.json").write_text(json.dumps(
        {"best": {"trial": f"{prefix}_00000", "valid_best": 0.3, "lineage": lineage}}))
    (folder / "best_run" / "submission.h5").write_bytes(submission)
    return folder


def compare(a, b):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "sweep_repeat.py"), str(a), str(b)],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, {line.split("  ")[0]: line.rsplit("  ", 1)[-1].strip() for line in done.stdout.splitlines()
                             if line.startswith(("trials", "chosen", "best_run"))}


def test_two_runs_that_differ_only_in_times_and_ray_ids_are_identical(tmp_path):
    rows = [("0.02", "0.30"), ("0.01", "0.31")]
    a = sweep(tmp_path / "a", "fe875", rows)
    b = sweep(tmp_path / "b", "0a1b2", rows, fit_s="99.5")
    code, results = compare(a, b)
    assert code == 0
    assert set(results.values()) == {"identical"} and len(results) == 4


def test_a_differing_score_lineage_or_submission_is_named_and_fails(tmp_path):
    a = sweep(tmp_path / "a", "fe875", [("0.02", "0.30"), ("0.01", "0.31")])
    b = sweep(tmp_path / "b", "0a1b2", [("0.02", "0.30"), ("0.01", "0.32")], lr_last="0.03", submission=b"other")
    code, results = compare(a, b)
    assert code == 1
    assert results["trials (values, valid_best, best_epoch, epochs, status)"] == (
        "1 differ; first trial 1: valid_best: '0.31' vs '0.32'")
    assert results["chosen lineage (trial, from_epoch, values per stretch)"] == (
        "stretch 1: config: {'lr': 0.02} vs {'lr': 0.03}")
    assert results["best_run/submission.h5 sha256"] == "differ"
    assert results["chosen trial and its validation score"] == "identical"
