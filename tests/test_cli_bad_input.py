"""Every subcommand turns bad paths and values into one line on stderr naming the culprit, exit code 2,
no traceback, and leaves every file and folder exactly as it was (one table, one test)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.h5io import save_h5
from nlb_suite.report.html import GENERATOR_META
from nlb_suite.submission import write_submission
from support.eval_targets import make_submission, make_target

UNWRITABLE = "/proc/nlb_suite_no_such_dir"  # not writable even for root


def _run_folder(root: Path, name: str, **files: str) -> None:
    """A run folder (submission.h5, valid run.json and metrics.json) with some files replaced by `files`."""
    run = root / name
    run.mkdir()
    shutil.copy(root / "sub.h5", run / "submission.h5")
    (run / "run.json").write_text(json.dumps({"dataset": "mc_maze", "bin_ms": 5, "phase": "val",
                                              "baseline": "smoothing", "synthetic": False}))
    (run / "metrics.json").write_text(json.dumps([{"mc_maze_split": {"co-bps": 0.3}}]))
    for fname, text in files.items():
        (run / fname.replace("_", ".")).write_text(text)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace of good and bad inputs (also the working directory of every case)."""
    root = tmp_path_factory.mktemp("bad_input")
    target, truth = make_target("mc_maze", 5, seed=1)
    save_h5(target, root / "target.h5")
    write_submission(make_submission(target, truth, "realistic"), root / "sub.h5")
    area, area_truth = make_target("area2_bump", 5, seed=2)
    area["area2_bump"]["train_decode_mask"] = np.full((60, 2, 2), 0.5)  # 3-d, not 0/1
    save_h5(area, root / "bad_mask.h5")
    write_submission(make_submission(area, area_truth, "realistic"), root / "sub_area.h5")
    flat = {"mc_maze": dict(target["mc_maze"], eval_spikes_heldout=np.ones((30, 48)))}
    save_h5(flat, root / "flat_target.h5")
    (root / "text.h5").write_text("not HDF5")
    (root / "trunc.h5").write_bytes((root / "target.h5").read_bytes()[:2000])
    (root / "afile").write_text("a file, not a folder")
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("someone's notes")
    (root / "page.html").write_text("<html>someone's page</html>")
    (root / "old_report.html").write_text(f"<!DOCTYPE html>\n<html>\n<head>\n{GENERATOR_META}\n</head></html>")
    (root / "mine.h5").write_bytes((root / "sub.h5").read_bytes())
    (root / "sub_ext.h5").write_bytes((root / "sub.h5").read_bytes())
    with h5py.File(root / "sub_ext.h5", "a") as f:
        f["extra"] = h5py.ExternalLink("missing.h5", "/x")  # a link to a file that is not there
    _run_folder(root, "run_ok")
    _run_folder(root, "run_empty", run_json="")
    _run_folder(root, "run_list", run_json="[]")
    _run_folder(root, "run_nophase", run_json=json.dumps({"dataset": "mc_maze", "bin_ms": 5, "baseline": "x"}))
    _run_folder(root, "run_badjson", metrics_json="{oops")
    _run_folder(root, "run_shape", metrics_json=json.dumps({"co-bps": 1}))
    _run_folder(root, "run_yaml", config_yaml="a: [unclosed")
    _run_folder(root, "run_notes", NOTES_txt="my notes")  # a previous run someone added a file to
    base = {"dataset": "mc_maze", "bin_ms": 5, "phase": "val", "baseline": "smoothing"}
    _run_folder(root, "run_timings", run_json=json.dumps(dict(base, timings={"fit_s": "12 s"})))
    _run_folder(root, "run_sha_list", run_json=json.dumps(dict(base, data_sha256=["abc"])))
    _run_folder(root, "run_versions", run_json=json.dumps(dict(base, versions=["numpy 2"])))
    (root / "typo.yaml").write_text("alpah: 0.1\n")
    (root / "empty.yaml").write_text("")
    (root / "typo_profile.yaml").write_text("kern_sd_ms: 40\nprofiles:\n  fast:\n    kern_sd: 30\n")
    (root / "neg_alpha.yaml").write_text("alpha: -1\n")
    (root / "bad_tol_profile.yaml").write_text("kern_sd_ms: 40\nprofiles:\n  fast:\n    tol: 0\n")
    (root / "old_result.json").write_text(json.dumps([{"mc_maze": {"co-bps": 0.3}}]))  # an earlier evaluate --json
    (root / "download" / "sub-Jenkins").mkdir(parents=True)  # a real download: NWB files, no ground truth
    (root / "download" / "sub-Jenkins" / "sub-Jenkins_ses-small_desc-train_behavior+ecephys.nwb").write_text("real")
    return root


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (p.is_dir(), st.st_size, st.st_mtime_ns, st.st_mode)
    return out


EVAL = ["evaluate", "--target", "target.h5", "--submission", "sub.h5"]
RUN = ["run", "smoothing", "--dataset", "mc_maze_small", "--data", "no_data_here"]
TENSORS = ["tensors", "mc_maze_small", "--data", "no_data_here"]

# (id, argv, fragments the one error line must contain)
CASES = [
    # evaluate
    ("eval-target-text", ["evaluate", "--target", "text.h5", "--submission", "sub.h5"], ["text.h5: not an HDF5 file"]),
    ("eval-target-trunc", ["evaluate", "--target", "trunc.h5", "--submission", "sub.h5"],
     ["trunc.h5: unreadable HDF5 file"]),
    ("eval-sub-missing", ["evaluate", "--target", "target.h5", "--submission", "nope.h5"], ["nope.h5: file not found"]),
    ("eval-mask", ["evaluate", "--target", "bad_mask.h5", "--submission", "sub_area.h5"],
     ["bad_mask.h5: area2_bump/train_decode_mask: float32 array of shape (60, 2, 2)", "0/1 or booleans"]),
    ("eval-flat-target", ["evaluate", "--target", "flat_target.h5", "--submission", "sub.h5"],
     ["flat_target.h5: mc_maze/eval_spikes_heldout: 2-d array"]),
    ("eval-json-parent-file", EVAL + ["--json", "afile/out.json"], ["afile/out.json: --json:", "is a file, not a folder"]),
    ("eval-json-unwritable", EVAL + ["--json", f"{UNWRITABLE}/out.json"], [f"{UNWRITABLE}/out.json"]),
    ("eval-json-folder", EVAL + ["--json", "foreign"], ["foreign: --json: is a folder"]),
    ("eval-sub-run-folder", ["evaluate", "--target", "target.h5", "--submission", "run_ok"],
     ["run_ok: is a folder (expected an HDF5 file, e.g. run_ok/submission.h5)"]),
    ("eval-sub-folder", ["evaluate", "--target", "target.h5", "--submission", "foreign"],
     ["foreign: is a folder (expected an HDF5 file)"]),
    ("eval-ci-negative", EVAL + ["--ci", "-5"], ["--ci: -5 resamples"]),
    ("eval-ci-huge", EVAL + ["--ci", "1000000000"], ["--ci: 1000000000 resamples", "up to 100,000"]),
    ("eval-compare-ci-zero", EVAL + ["--compare", "sub.h5", "--ci", "0"], ["--compare: needs --ci N"]),
    ("eval-seed-negative", EVAL + ["--ci", "10", "--seed", "-1"], ["--seed: -1"]),
    ("eval-level", EVAL + ["--level", "1.5"], ["--level: 1.5"]),
    ("eval-ci-not-int", EVAL + ["--ci", "many"], ["--ci: invalid int value: 'many'"]),
    # validate
    ("validate-target-text", ["validate", "sub.h5", "--target", "text.h5"], ["text.h5: not an HDF5 file"]),
    ("validate-target-trunc", ["validate", "sub.h5", "--target", "trunc.h5"], ["trunc.h5: unreadable HDF5 file"]),
    ("validate-target-flat", ["validate", "sub.h5", "--target", "flat_target.h5"],
     ["flat_target.h5: mc_maze/eval_spikes_heldout: 2-d array of shape (30, 48)", "3-d array"]),
    ("validate-sub-text", ["validate", "text.h5"], ["text.h5: not an HDF5 file"]),
    ("validate-both", ["validate", "sub.h5", "--target", "target.h5", "--data", "foreign"], ["--target and --data"]),
    # package
    ("package-target-text", ["package", "sub.h5", "--out", "new.h5", "--phase", "val", "--target", "text.h5"],
     ["text.h5: not an HDF5 file"]),
    ("package-target-trunc", ["package", "sub.h5", "--out", "new.h5", "--phase", "val", "--target", "trunc.h5"],
     ["trunc.h5: unreadable HDF5 file"]),
    ("package-out-parent-file", ["package", "sub.h5", "--out", "afile/x.h5", "--phase", "val"],
     ["afile/x.h5: --out:", "is a file, not a folder"]),
    ("package-out-unwritable", ["package", "sub.h5", "--out", f"{UNWRITABLE}/x.h5", "--phase", "val"],
     [f"{UNWRITABLE}/x.h5"]),
    ("package-out-foreign", ["package", "sub.h5", "--out", "mine.h5", "--phase", "val", "--overwrite"],
     ["mine.h5: --out: not a previous packaged submission; nothing touched"]),
    ("package-out-suffix", ["package", "sub.h5", "--out", "page.html", "--phase", "val"],
     ["page.html: --out: not an .h5 path"]),
    ("package-no-phase", ["package", "sub.h5", "--out", "new.h5"], ["--phase: sub.h5 has no run.json"]),
    ("package-run-json-empty", ["package", "run_empty", "--out", "new.h5"], ["run_empty/run.json: empty file"]),
    ("package-run-json-list", ["package", "run_list", "--out", "new.h5"], ["run_list/run.json: not a JSON object"]),
    # compare
    ("compare-run-json-empty", ["compare", "run_ok", "run_empty"], ["run_empty/run.json: empty file"]),
    ("compare-run-json-list", ["compare", "run_list"], ["run_list/run.json: not a JSON object"]),
    ("compare-run-json-field", ["compare", "run_nophase"], ["run_nophase/run.json: phase: missing or not a str"]),
    ("compare-metrics-corrupt", ["compare", "run_badjson"], ["run_badjson/metrics.json: not valid JSON"]),
    ("compare-metrics-shape", ["compare", "run_shape"], ["run_shape/metrics.json: not a result list"]),
    ("compare-config-corrupt", ["compare", "run_yaml"], ["run_yaml/config.yaml: not valid YAML"]),
    ("compare-not-a-run", ["compare", "foreign"], ["foreign: not a run folder"]),
    ("compare-timings-text", ["compare", "run_timings"],
     ["run_timings/run.json: timings.fit_s: '12 s' (expected seconds as numbers)"]),
    ("report-sha-list", ["report", "run_sha_list", "--out", "new.html"],
     ["run_sha_list/run.json: data_sha256: not a dict (got list)"]),
    ("report-versions-list", ["report", "run_versions", "--out", "new.html"],
     ["run_versions/run.json: versions: not a dict (got list)"]),
    ("compare-ci-negative", ["compare", "run_ok", "--ci", "-1"], ["--ci: -1 resamples"]),
    ("compare-ci-huge", ["compare", "run_ok", "--ci", "999999999"], ["--ci: 999999999 resamples"]),
    # run
    ("run-out-cwd", RUN + ["--out", "."], [".: --out: not a previous run folder; nothing touched"]),
    ("run-out-cwd-overwrite", RUN + ["--out", ".", "--overwrite"], [".: --out: not a previous run folder"]),
    ("run-out-foreign", RUN + ["--out", "foreign", "--overwrite"], ["foreign: --out: not a previous run folder"]),
    ("run-out-previous", RUN + ["--out", "run_ok"], ["run_ok: --out: holds a previous run folder", "--overwrite"]),
    ("run-out-file", RUN + ["--out", "afile"], ["afile: --out: is a file"]),
    ("run-config-unknown-key", RUN + ["--out", "new_run", "--config", "typo.yaml"],
     ["typo.yaml: --config: unknown key(s) alpah for baseline smoothing"]),
    ("run-config-profile-unknown-key", RUN + ["--out", "new_run", "--config", "typo_profile.yaml"],
     ["typo_profile.yaml: --config: profiles.fast: unknown key(s) kern_sd"]),
    ("run-set-huge-kernel", RUN + ["--out", "new_run", "--set", "kern_sd_ms=1e9"],
     ["--set: baseline smoothing: kern_sd_ms must be > 0 and <= 10000 ms"]),
    ("run-set-unknown-key", RUN + ["--out", "new_run", "--set", "alpah=0.1"],
     ["--set: unknown key(s) alpah for baseline smoothing"]),
    ("run-config-bad-value", RUN + ["--out", "new_run", "--config", "neg_alpha.yaml"],
     ["neg_alpha.yaml: baseline smoothing: alpha must be >= 0 (got -1.0)"]),
    ("run-config-profile-bad-value", RUN + ["--out", "new_run", "--config", "bad_tol_profile.yaml", "--profile", "fast"],
     ["bad_tol_profile.yaml: profiles.fast: baseline smoothing: tol must be > 0 (got 0.0)"]),
    ("run-config-folder", RUN + ["--out", "new_run", "--config", "foreign"],
     ["foreign: --config: a folder without config.yaml"]),
    ("run-config-empty", RUN + ["--out", "new_run", "--config", "empty.yaml"], ["empty.yaml: --config: empty file"]),
    ("run-out-added-file", RUN + ["--out", "run_notes", "--overwrite"],
     ["run_notes: --out: a run folder holding files its run did not write (NOTES.txt); nothing touched"]),
    ("ensemble-out-member", ["ensemble", "run_ok", "run_notes", "--out", "run_ok", "--overwrite"],
     ["run_ok: --out: is one of the ensemble's member runs"]),
    ("eval-json-onto-submission", EVAL + ["--json", "sub.h5", "--overwrite"],
     ["sub.h5: --json: not a previous evaluate --json result; nothing touched"]),
    ("eval-json-onto-foreign", EVAL + ["--json", "afile"], ["afile: --json: not a previous evaluate --json result"]),
    ("eval-json-previous", EVAL + ["--json", "old_result.json"],
     ["old_result.json: --json: holds a previous evaluate --json result", "--overwrite"]),
    ("eval-swapped", ["evaluate", "--target", "sub.h5", "--submission", "target.h5"],
     ["target.h5: nothing scored: target.h5: mc_maze: no eval_rates_heldout", "swapped"]),
    ("package-missing-input", ["package", "nope", "--out", "new.h5"], ["nope: no such file or folder"]),
    ("validate-dangling-link", ["validate", "sub_ext.h5"],
     ["sub_ext.h5: extra: broken link (it points to nothing) (expected arrays stored in the file)"]),
    ("package-dangling-link", ["package", "sub_ext.h5", "--out", "new.h5", "--phase", "val"],
     ["sub_ext.h5: extra: broken link (it points to nothing)"]),
    ("synth-out-foreign", ["synth", "mc_maze_small", "--out", "foreign", "--overwrite"],
     ["foreign: --out: not a previous synthetic dataset folder; nothing touched"]),
    ("synth-out-download", ["synth", "mc_maze_small", "--out", "download", "--overwrite"],
     ["download: --out: not a previous synthetic dataset folder"]),
    ("download-jobs-zero", ["download", "mc_maze_small", "--out", "dl", "--jobs", "0"], ["--jobs: 0 (expected an integer >= 1"]),
    ("synth-seed-negative", ["synth", "mc_maze_small", "--out", "new_synth", "--seed", "-1"], ["--seed: -1"]),
    ("tensors-seed-negative", TENSORS + ["--out", "new_t", "--seed", "-1"], ["--seed: -1"]),
    ("run-out-parent-file", RUN + ["--out", "afile/r"], ["afile/r: --out:", "is a file, not a folder"]),
    ("run-no-nwb-new-parents", ["run", "smoothing", "--dataset", "mc_maze_small", "--data", "foreign", "--out",
                                "new_parent/deep/r"], ["foreign: no .nwb files found"]),  # and neither new_parent nor deep is left
    ("run-out-unwritable", RUN + ["--out", f"{UNWRITABLE}/r"], [f"{UNWRITABLE}/r"]),
    ("run-ci-negative", RUN + ["--out", "new_run", "--ci", "-3"], ["--ci: -3 resamples"]),
    ("run-ci-huge", RUN + ["--out", "new_run", "--ci", "10000000"], ["--ci: 10000000 resamples"]),
    ("run-seed-negative", RUN + ["--out", "new_run", "--seed", "-2"], ["--seed: -2"]),
    ("run-seed-too-big", RUN + ["--out", "new_run", "--seed", str(2**64)],
     [f"--seed: {2**64} (expected an integer from 0 to {2**63 - 1})"]),
    ("synth-seed-too-big", ["synth", "mc_maze_small", "--out", "new_synth", "--seed", str(2**63)],
     [f"--seed: {2**63} (expected an integer from 0 to {2**63 - 1})"]),
    # tensors
    ("tensors-out-file", TENSORS + ["--out", "afile"], ["afile: --out: is a file"]),
    ("tensors-out-parent-file", TENSORS + ["--out", "afile/t"], ["afile/t: --out:", "is a file, not a folder"]),
    ("tensors-out-foreign", TENSORS + ["--out", "foreign", "--overwrite"],
     ["foreign: --out: not a previous tensors folder; nothing touched"]),
    ("tensors-out-cwd", TENSORS + ["--out", "."], [".: --out: not a previous tensors folder"]),
    ("tensors-out-run", TENSORS + ["--out", "run_ok", "--overwrite"], ["run_ok: --out: not a previous tensors folder"]),
    # report
    ("report-out-parent-file", ["report", "run_ok", "--out", "afile/r.html"], ["afile/r.html: --out:", "is a file"]),
    ("report-out-foreign", ["report", "run_ok", "--out", "page.html", "--overwrite"],
     ["page.html: --out: not a previous report; nothing touched"]),
    ("report-out-previous", ["report", "run_ok", "--out", "old_report.html"],
     ["old_report.html: --out: holds a previous report", "--overwrite"]),
    ("report-out-folder", ["report", "run_ok", "--out", "foreign"], ["foreign: --out: is a folder"]),
    ("report-markdown-parent-file", ["report", "run_ok", "--out", "new.html", "--markdown", "afile/r.md"],
     ["afile/r.md: --markdown:", "is a file"]),
    ("report-metrics-corrupt", ["report", "run_badjson", "--out", "new.html"], ["run_badjson/metrics.json"]),
    ("report-markdown-unwritable", ["report", "run_ok", "--out", "new.html", "--markdown", f"{UNWRITABLE}/r.md"],
     [f"{UNWRITABLE}/r.md"]),  # and no new.html: both files are written or neither
    # demo (all checked before any run starts)
    ("demo-out-cwd", ["demo", "--out", "."], [".: --out: not a previous demo folder; nothing touched"]),
    ("demo-out-foreign", ["demo", "--out", "foreign", "--overwrite"], ["foreign: --out: not a previous demo folder"]),
    ("demo-out-file", ["demo", "--out", "afile"], ["afile: --out: is a file"]),
    ("demo-package-parent-file", ["demo", "--out", "new_demo", "--package", "afile/x.h5"],
     ["afile/x.h5: --package:", "is a file, not a folder"]),
    ("demo-package-foreign", ["demo", "--out", "new_demo", "--package", "mine.h5", "--overwrite"],
     ["mine.h5: --package: not a previous packaged submission"]),
    # data commands
    ("download-out-file", ["download", "mc_maze_small", "--out", "afile"], ["afile: --out: is a file"]),
    ("synth-out-file", ["synth", "mc_maze_small", "--out", "afile"], ["afile: --out: is a file"]),
    ("list-bad-choice", ["list", "models"], ["argument what: invalid choice: 'models'"]),
]


@pytest.mark.parametrize("argv, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(ws, monkeypatch, capsys, argv, fragments):
    monkeypatch.chdir(ws)
    before = _snapshot(ws)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert rc == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert _snapshot(ws) == before


@pytest.mark.parametrize("command", ["tensors", "synth"])
def test_a_full_disk_is_one_line_and_leaves_nothing(command, synthetic, tmp_path):
    """A write that fails (here a file-size limit, as a full disk fails) is one line naming the file, exit 2:
    no HDF5 tracebacks at exit, no segfault, no output or temporary folder left behind."""
    import subprocess
    import sys

    args = (["tensors", "mc_maze_small", "--data", str(synthetic("mc_maze_small")), "--out", "out"]
            if command == "tensors" else ["synth", "mc_maze_small", "--trials", "40", "--out", "out"])
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000)); "
            f"from nlb_suite.cli import main; sys.exit(main({args!r}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr)
    assert lines[0].startswith(f"nlb-eval {command}: error: ") and lines[0].endswith(": File too large")
    assert (".h5: " if command == "tensors" else ".nwb: ") in lines[0]
    assert list(tmp_path.iterdir()) == []
