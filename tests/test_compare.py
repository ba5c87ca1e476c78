"""`nlb-eval compare`: paired differences to the top run, ties shared, references and the gap closed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.runs import RunSpec, execute


@pytest.fixture(scope="module")
def runs(synthetic, tmp_path_factory):
    """smoothing, an identical copy of it, the true rates and the true PSTH on synthetic mc_maze_small."""
    root = tmp_path_factory.mktemp("compare_runs")
    data = synthetic("mc_maze_small")
    for name, profile in (("smoothing", "fast"), ("oracle", None), ("true_psth", None)):
        execute(RunSpec(name, "mc_maze_small", data=data, out=root / name, ci=20, profile=profile), progress=False)
    shutil.copytree(root / "smoothing", root / "twin")
    return [root / n for n in ("smoothing", "twin", "oracle", "true_psth")]


def _row(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(name + " "))


def test_compare_pairs_ties_and_references(runs, capsys):
    assert main(["compare", *map(str, runs), "--ci", "200"]) == 0
    out = capsys.readouterr().out
    table = out.split("paired differences")[0]
    header = table.splitlines()[2]  # blank line, group title, header
    for col in ("co-bps % of ceiling", "co-bps gap closed", "fp-bps % of ceiling"):
        assert col in header, col
    assert "vel R2 % of ceiling" not in header and "psth R2 % of ceiling" not in header
    assert table.index("oracle") < table.index("smoothing")  # best co-bps first
    # identical runs: every difference is exactly 0, a tie, and both carry the best mark
    for name in ("smoothing (smoothing)", "smoothing (twin)"):  # same baseline twice: labelled by folder
        row = _row(table, name)
        assert row.count("* tie") == 3, row  # co-bps, vel R2, psth R2 (smoothing makes no forward prediction)
        assert "0.0%" in row  # smoothing is the floor of the gap: it closes none of it
    for name in ("oracle", "true_psth"):
        row = _row(table, name)
        assert "reference" in row and "*" not in row, row  # references are never marked best
    assert "100.0%" in _row(table, "oracle")
    diffs = out.split("paired differences")[1]
    assert "co-bps - top" in diffs and "+0.0000 [+0.0000, +0.0000] tie" in _row(diffs, "smoothing (twin)")
    assert "200 resamples of the same eval trials" in out
    assert "it holds each fitted model fixed" in " ".join(out.split())  # a fit's own noise is not in it


def test_compare_without_paired_intervals_and_bad_ci(runs, capsys):
    assert main(["compare", str(runs[0]), str(runs[2]), "--ci", "0"]) == 0
    out = capsys.readouterr().out
    assert "paired differences" not in out and "no paired intervals (--ci 0)" in out
    assert main(["compare", str(runs[0]), "--ci", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--ci: -1 resamples" in err


def test_a_submission_changed_after_its_run_is_refused_in_one_line(runs, tmp_path, capsys):
    """run.json records submission.h5's SHA-256; compare and report refuse a run whose file was replaced since
    (its metrics.json would describe other rates), naming the file; the untouched runs still compare."""
    import json

    import numpy as np

    from nlb_suite.h5io import sha256_file
    from nlb_suite.submission import read_submission, write_submission

    run = tmp_path / "edited"
    shutil.copytree(runs[0], run)
    info = json.loads((run / "run.json").read_text())
    assert info["submission_sha256"] == sha256_file(run / "submission.h5")
    sub = read_submission(run / "submission.h5")
    for group in sub.values():
        group["eval_rates_heldout"] = np.asarray(group["eval_rates_heldout"]) * 2
    write_submission(sub, run / "submission.h5")
    for command in (["compare", str(runs[2]), str(run), "--ci", "0"],
                    ["report", str(runs[2]), str(run), "--out", str(tmp_path / "report.html")]):
        assert main(command) == 2, command
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert f"{run / 'submission.h5'}: changed since the run wrote it" in err and "nlb-eval evaluate" in err
    assert not (tmp_path / "report.html").exists()
    assert main(["compare", str(runs[2]), str(runs[0]), "--ci", "0"]) == 0


def test_runs_made_under_other_kernels_are_noted(runs, tmp_path, capsys):
    import json

    assert main(["compare", *map(str, runs[:3]), "--ci", "20"]) == 0
    assert "different machines or kernels" not in capsys.readouterr().out  # one machine, one kernel set
    other = tmp_path / "twin_avx2"
    shutil.copytree(runs[1], other)
    info = json.loads((other / "run.json").read_text())
    kernel = "Haswell" if info["machine"].get("openblas_kernel") != "Haswell" else "SkylakeX"  # another CPU's,
    simd = "X86_V3" if info["machine"].get("numpy_simd") != "X86_V3" else "X86_V3,X86_V4"  # whatever this one's are
    info["machine"] = {**info["machine"], "numpy_simd": simd, "openblas_kernel": kernel}
    (other / "run.json").write_text(json.dumps(info))
    assert main(["compare", str(runs[0]), str(other), str(runs[2]), "--ci", "20"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "different machines or kernels" in line]
    assert len(notes) == 1 and "--portable-kernels" in notes[0]
    assert "openblas_kernel: smoothing (smoothing) " in notes[0] and f"(twin_avx2) {kernel};" in notes[0]
    assert "numpy_simd: smoothing (smoothing) " in notes[0] and f"(twin_avx2) {simd}):" in notes[0]
    assert "oracle" not in notes[0]  # references compute nothing


def test_the_kernel_note_tells_same_named_runs_apart_and_counts_a_gpu(runs, tmp_path):
    import json

    from nlb_suite.report.build import kernel_note, read_runs

    copies = []
    for machine_name, extra in (("a", {}), ("b", {"gpu": "NVIDIA H200"})):
        copy = tmp_path / machine_name / "smoothing"  # the same folder name on two machines
        shutil.copytree(runs[0], copy)
        info = json.loads((copy / "run.json").read_text())
        info["machine"] = {**info["machine"], **extra}
        (copy / "run.json").write_text(json.dumps(info))
        copies.append(copy)
    note = kernel_note(read_runs(copies))
    assert note is not None and f"gpu: {copies[0]} none, {copies[1]} NVIDIA H200" in note
    assert kernel_note(read_runs([runs[0], runs[1]])) is None  # one machine


def test_tp_corr_marks_the_most_negative_run_and_says_so(synthetic, tmp_path, capsys):
    """dmfc_rsg: two smoothing widths; the top tp corr is the more negative one, and a note says why."""
    from nlb_suite.runs import read_run

    data = synthetic("dmfc_rsg", trials=160)  # the 60-trial default leaves too few eval trials per condition
    runs = [execute(RunSpec("smoothing", "dmfc_rsg", data=data, out=tmp_path / f"k{k}", ci=0, profile="fast",
                            overrides={"kern_sd_ms": k}), progress=False).run_dir for k in (20, 80)]
    tp = [read_run(r).metrics["tp corr"] for r in runs]
    assert all(np.isfinite(tp)) and abs(tp[0] - tp[1]) > 0.05
    assert main(["compare", *map(str, runs), "--ci", "100"]) == 0
    out = capsys.readouterr().out
    best = runs[tp.index(min(tp))].name
    row = _row(out.split("paired differences")[0], f"smoothing ({best})")
    assert f"{min(tp):.4f} *" in row  # the mark on the more negative tp corr
    diffs = out.split("paired differences")[1]
    other = runs[1 - tp.index(min(tp))].name
    assert "tp corr - top" in diffs and "top" in _row(diffs, f"smoothing ({best})")
    assert f"{max(tp) - min(tp):+.4f}" in _row(diffs, f"smoothing ({other})")  # a worse run: positive
    assert "tp corr: more negative is better" in out
