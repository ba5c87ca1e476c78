"""`nlb-eval report`: content, grouping, ceiling/published rows, Markdown, and clear errors on bad input."""

from __future__ import annotations

import json
import re
import shutil
from html import escape as html_escape

import pytest

from nlb_suite.cli import main
from nlb_suite.errors import NLBInputError
from nlb_suite.report import build_report
from nlb_suite.report.build import read_curves
from nlb_suite.runs import RunSpec, execute


@pytest.fixture(scope="module")
def runs(synthetic, tmp_path_factory):
    """oracle + smoothing (phase val), smoothing (phase test) on mc_maze_small; smoothing on dmfc_rsg."""
    root = tmp_path_factory.mktemp("report_runs")
    maze, dmfc = synthetic("mc_maze_small"), synthetic("dmfc_rsg")
    out = {
        "oracle": execute(RunSpec("oracle", "mc_maze_small", data=maze, out=root / "oracle", ci=20), progress=False),
        "smoothing": execute(RunSpec("smoothing", "mc_maze_small", data=maze, out=root / "smoothing", ci=20,
                                     profile="fast"), progress=False),
        "test": execute(RunSpec("smoothing", "mc_maze_small", data=maze, phase="test", out=root / "smooth_test",
                                profile="fast"), progress=False),
        "dmfc": execute(RunSpec("smoothing", "dmfc_rsg", data=dmfc, out=root / "dmfc_smoothing", ci=20,
                                profile="fast"), progress=False),
    }
    return {k: v.run_dir for k, v in out.items()}


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    md = out.with_suffix(".md")
    build_report([runs["smoothing"], runs["oracle"], runs["test"], runs["dmfc"]], out, md)
    return out.read_text(), md.read_text()


def test_self_contained(report):
    html, _ = report
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r'(src|href)="(?!#)', html), "no external references"
    assert "http" not in re.sub(r'xmlns(:\w+)?="[^"]*"', "", html)  # namespaces are names, not fetches
    assert len(html) < 2_500_000


def test_groups_sections_and_plots(report):
    html, _ = report
    for title in ("mc_maze_small, 5 ms bins, phase val (synthetic)", "mc_maze_small, 5 ms bins, phase test (synthetic)",
                  "dmfc_rsg, 5 ms bins, phase val (synthetic)"):
        assert html.count(f'data-section="{title}"') == 1, title
    assert html.count('class="how"') >= 1 + 3 * 7
    plots = re.findall(r'data-plot="([^"]+)"', html)
    for name in ("metrics", "per-neuron", "psth", "single-trial", "trajectories", "decoding"):
        assert f"mc_maze_small-5ms-val-{name}" in plots
    assert "dmfc_rsg-5ms-val-speed-tp" in plots  # dmfc: neural speed vs tp instead of velocity
    assert "mc_maze_small-5ms-test-psth" in plots and "mc_maze_small-5ms-test-metrics" not in plots
    assert "no training curve" in html
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        assert "<text" in svg  # titles, labels and legends are real text


def test_summary_marks_best_references_and_shares(report, runs):
    html, md = report
    assert "true rates: the ceiling for co-bps and fp-bps only" in html
    assert 'class="num best"' in html and not re.search(r'class="num best">[^<]*★ tie', html)  # one model: no tie
    smooth = json.loads((runs["smoothing"] / "metrics.json").read_text())
    co_bps = next(iter(smooth[0].values()))["[100] co-bps"]
    assert f"{co_bps:.4f}" in html and f"**{co_bps:.4f}**" in md  # only non-reference run: best in its group
    assert "phase test: no local target" in html and "phase test: no local target" in md
    assert "| run | co-bps |" in md
    # % of ceiling and gap closed only for co-bps and fp-bps; the smoothing run is the gap's floor
    for header in ("co-bps % of ceiling", "co-bps gap closed"):
        assert header in html and header in md
    assert "vel R2 % of ceiling" not in html and "psth R2 % of ceiling" not in html
    assert "true rates (not a ceiling)" in html and "true rates (ceiling)" in html  # plot legends
    # paired differences to the top run (smoothing): the oracle's difference with its interval
    assert "co-bps - top" in html and "co-bps - top" in md and "paired 95% bootstrap interval" in html


def test_identical_runs_tie_and_share_the_best_mark(runs, tmp_path):
    """Two runs with the same rates: every difference is 0, so neither is singled out as best."""
    twin = tmp_path / "smoothing_twin"
    shutil.copytree(runs["smoothing"], twin)
    md = tmp_path / "t.md"
    html = build_report([runs["smoothing"], twin], tmp_path / "t.html", md).read_text()
    n_metrics = len(next(iter(json.loads((twin / "metrics.json").read_text())[0].values())))
    assert len(re.findall(r'class="num best">[^<]*★ tie', html)) == 2 * n_metrics and html.count("+0.0000 [+0.0000, +0.0000] tie") == n_metrics
    assert md.read_text().count("** (tie)") == 2 * n_metrics


def test_provenance_says_how_a_sweep_chose_the_model(runs, tmp_path):
    """A sweep's best_run: its card names the search, the chosen trial and, for PBT, the lineage table."""
    tuned = tmp_path / "best_run"
    shutil.copytree(runs["smoothing"], tuned)
    info = json.loads((tuned / "run.json").read_text())
    lineage = [{"trial": "a_00001", "from_epoch": 0, "config": {"lr": 0.004, "cd_rate": 0.5}},
               {"trial": "a_00000", "from_epoch": 25, "config": {"lr": 0.0031234, "cd_rate": 0.61}}]
    info["sweep"] = {"sweepdir": "/s/pbt", "search": "pbt", "trials": 4, "trial": "a_00000", "valid_best": 0.3101,
                     "best_epoch": 48, "epochs": 50, "lineage": lineage}
    (tuned / "run.json").write_text(json.dumps(info))
    html = build_report([tuned], tmp_path / "t.html").read_text()
    assert ("<tr><td>tuned by</td><td>nlb-eval sweep: pbt search, 4 trials; trial a_00000 chosen on internal "
            "validation (0.3101, epoch 48 of 50); sweep folder <code>/s/pbt</code><br>PBT lineage") in html
    assert ("<tr><th>epochs</th><th>trial</th><th>lr</th><th>cd_rate</th></tr>"
            '<tr><td>1-25</td><td>a_00001</td><td class="num">0.004</td><td class="num">0.5</td></tr>'
            '<tr><td>26-50</td><td>a_00000</td><td class="num">0.003123</td><td class="num">0.61</td></tr>') in html
    info["sweep"].update(search="random", lineage=lineage[:1])
    (tuned / "run.json").write_text(json.dumps(info))
    html = build_report([tuned], tmp_path / "t.html").read_text()
    assert "nlb-eval sweep: random search, 4 trials" in html and "PBT lineage" not in html
    assert "tuned by" not in build_report([runs["smoothing"]], tmp_path / "u.html").read_text()


def test_provenance_names_the_machine_and_its_kernels(runs, tmp_path):
    """The CPU and the kernels the libraries took decide a fit's last bits, so each card names them."""
    machine = json.loads((runs["smoothing"] / "run.json").read_text())["machine"]
    html = build_report([runs["smoothing"]], tmp_path / "t.html").read_text()
    cell = html_escape(", ".join(f"{k} {v}" for k, v in machine.items()))
    assert f"<tr><td>machine</td><td>{cell}</td></tr>" in html and "numpy_simd" in cell


def test_real_data_published_rows_and_missing_data(runs, tmp_path):
    """A run on (what claims to be) real mc_maze whose data folder is gone: published rows, no broken plots."""
    fake = tmp_path / "mc_maze_run"
    shutil.copytree(runs["smoothing"], fake)
    info = json.loads((fake / "run.json").read_text())
    info.update(dataset="mc_maze", synthetic=False, data_dir=str(tmp_path / "gone"))
    (fake / "run.json").write_text(json.dumps(info))
    out = build_report([fake], tmp_path / "r.html", tmp_path / "r.md")
    html = out.read_text()
    assert "STNDT ensemble" in html and "published, test phase" in html and "leaderboard" in html
    assert "0.3364" in html and "0.3510" in html and "0.3435" not in html  # sourced values, no midpoint
    assert "not a like-for-like comparison" in html  # val-phase runs beside test-phase scores
    assert "not found on this machine" in html
    plots = re.findall(r'data-plot="([^"]+)"', html)
    assert plots == ["mc_maze-5ms-val-metrics", "mc_maze-5ms-val-per-neuron"]  # the rest need the data
    assert html.count('data-empty="1"') >= 5
    assert "STNDT ensemble" in (tmp_path / "r.md").read_text()


def test_cli_and_bad_input(runs, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(runs["dmfc"]), "--out", str(out)]) == 0
    assert out.exists() and "report:" in capsys.readouterr().out

    not_run = tmp_path / "not_a_run"
    not_run.mkdir()
    bad = tmp_path / "bad.html"
    assert main(["report", str(runs["dmfc"]), str(not_run), "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not_a_run: not a run folder" in err and "\n" not in err.strip()
    assert not bad.exists(), "no page is written when an input is bad"
    assert main(["report", str(tmp_path / "missing"), "--out", str(bad)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(runs["dmfc"]), "--out", str(tmp_path / "x.pdf")]) == 2

    broken = tmp_path / "broken"
    shutil.copytree(runs["dmfc"], broken)
    (broken / "metrics.json").write_text("{not json")
    with pytest.raises(NLBInputError, match=r"broken.*(unreadable run file|not valid JSON)"):
        build_report([broken], tmp_path / "b.html")


def test_read_curves(tmp_path):
    path = tmp_path / "curves.csv"
    assert "no curves.csv" in read_curves(path)[1]
    path.write_text("epoch,train_loss,val_loss\n0,2.0,2.5\n1,1.0,\n2,0.5,1.5\n")
    curves, note = read_curves(path)
    assert note == "" and list(curves) == ["epoch", "train_loss", "val_loss"]
    assert curves["val_loss"][1] != curves["val_loss"][1]  # missing value -> NaN
    path.write_text("epoch,train_loss,lr,train_s,grad_norm_max,clipped_steps,unmasked_steps\n0,2.0,1e-3,1.5,250.0,3,5\n")
    assert list(read_curves(path)[0]) == ["epoch", "train_loss"]  # schedule and optimiser columns are not losses
    path.write_text("time,loss\n0,1\n")
    assert "no 'epoch' or 'step' column" in read_curves(path)[1]
