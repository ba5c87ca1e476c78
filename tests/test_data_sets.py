"""Each configuration's mean over the data sets of one synthetic generator, in `compare` and the report."""

from __future__ import annotations

import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.report.data_sets import Pooled, compare_pooled, find_families, pooling_config
from nlb_suite.report.paired import Difference, gap_share
from nlb_suite.runs import RunSpec, execute, read_run

TINY_LFADS = {"ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4, "co_dim": 2, "ic_dim": 4, "gen_dim": 6, "fac_dim": 3,
              "max_epochs": 2, "patience": 2, "valid_seed": 0}


@pytest.fixture(scope="module")
def data_set_runs(synthetic, tmp_path_factory):
    """mc_maze_small at data seeds 2, 0 and 1 (given out of order): at each smoothing, the true rates and a tiny
    LFADS at model seed 0; at data seed 0 the LFADS also at model seed 1 (an arm of two fits there), and a wider
    LFADS at data seeds 0 and 1 only. {data seed: {name: run folder}}."""
    root = tmp_path_factory.mktemp("data_set_runs")
    out: dict[int, dict] = {}

    def run(data_seed, baseline, name, seed=0, **kw):
        out.setdefault(data_seed, {})[name] = execute(RunSpec(
            baseline, "mc_maze_small", data=synthetic("mc_maze_small", seed=data_seed),
            out=root / f"d{data_seed}" / name, seed=seed, ci=0, device="cpu", **kw), progress=False).run_dir
    for data_seed in (2, 0, 1):
        run(data_seed, "smoothing", "smoothing", profile="fast")
        run(data_seed, "oracle", "oracle")
        run(data_seed, "lfads", "lfads_s0", overrides=dict(TINY_LFADS))
        if data_seed == 0:
            run(data_seed, "lfads", "lfads_s1", 1, overrides=dict(TINY_LFADS))
        if data_seed in (0, 1):
            run(data_seed, "lfads", "wide_s0", overrides=dict(TINY_LFADS, gen_dim=8))
    return out


def _folders(runs: dict) -> list[str]:
    return [str(p) for d in (2, 0, 1) for p in runs[d].values()]


def _co_bps(runs: dict, data_seed: int, *names: str) -> float:
    return float(np.mean([read_run(runs[data_seed][n]).metrics["co-bps"] for n in names]))


def test_compare_gives_each_configuration_its_mean_over_the_data_sets(data_set_runs, capsys):
    assert main(["compare", *_folders(data_set_runs), "--ci", "0"]) == 0
    out = capsys.readouterr().out
    title = ("mc_maze_small (40 train+eval trials), 5 ms bins, phase val (synthetic): mean over 3 data sets "
             "(data seeds 0, 1, 2)")
    section = out.split("\nmeans over data sets\n", 1)[1].split(title, 1)[1]
    table = section.split("\n\n", 1)[0].strip().splitlines()
    rows = {line.split("  ")[0]: [c.strip() for c in line.split("  ") if c.strip()] for line in table[2:]}
    lfads = [_co_bps(data_set_runs, 0, "lfads_s0", "lfads_s1"), _co_bps(data_set_runs, 1, "lfads_s0"),
             _co_bps(data_set_runs, 2, "lfads_s0")]  # data seed 0: the mean of its two fits
    smoothing = [_co_bps(data_set_runs, d, "smoothing") for d in (0, 1, 2)]
    truth = [_co_bps(data_set_runs, d, "oracle") for d in (0, 1, 2)]
    mean_sd = f"{np.mean(lfads):.4f} ({np.std(lfads, ddof=1):.4f})"
    assert rows["lfads (gen_dim=6)"][1:4] == ["3 of 3", "2, 1, 1", mean_sd]
    assert rows["lfads (gen_dim=6)"][-1] == " / ".join(f"{v:.4f}" for v in lfads)  # in data seed order
    share = gap_share(np.mean(lfads), np.mean(smoothing), np.mean(truth))
    assert f"{100 * share:.1f}%" in rows["lfads (gen_dim=6)"]
    assert rows["lfads (gen_dim=8)"][1:3] == ["2 of 3", "1, 1, 0"] and "*" not in " ".join(rows["lfads (gen_dim=8)"])
    assert rows["true rates (reference)"][1:3] == ["3 of 3", "–"]
    diffs = section.split("differences to the top configuration", 1)[1].split("note:", 1)[0].strip().splitlines()
    cells = {line.split("  ")[0]: [c.strip() for c in line.split("  ") if c.strip()] for line in diffs[3:]}
    (top, top_values), (other, other_values) = sorted(
        [("smoothing", smoothing), ("lfads (gen_dim=6)", lfads)], key=lambda p: -np.mean(p[1]))
    assert cells[top][1] == "top"  # co-bps, the first metric
    expected = Difference.across_sets([x - y for x, y in zip(other_values, top_values)])
    assert cells[other][1] == expected.text()  # the t interval with the data sets as the units
    assert "lfads (gen_dim=8)" in cells and cells["lfads (gen_dim=8)"][1] == "–"
    notes = " ".join(section.split())
    assert "not judged, as not run on every data set: lfads (gen_dim=8) (2 of 3)" in notes
    assert "sets - 1 degrees of freedom" in notes
    assert "taken on trust" not in notes  # these data sets record their generator


def test_one_data_set_alone_or_other_trial_counts_are_not_pooled(data_set_runs, synthetic, tmp_path, capsys):
    other = execute(RunSpec("smoothing", "mc_maze_small", data=synthetic("mc_maze_small", trials=48, seed=1),
                            out=tmp_path / "smoothing_48", ci=0, profile="fast"), progress=False).run_dir
    assert main(["compare", str(data_set_runs[0]["smoothing"]), str(other), "--ci", "0"]) == 0
    out = capsys.readouterr().out
    assert "data sets (data seeds" not in out and "not pooled" not in out


def test_data_sets_at_one_data_seed_or_an_unknown_one_are_not_pooled(data_set_runs, monkeypatch):
    from nlb_suite.report import data_sets
    from nlb_suite.report.build import gather

    groups = gather(_folders(data_set_runs), n_boot=0)
    generator = data_sets.data_origin(groups[0])[1]
    assert len(generator) == 64 and {data_sets.data_origin(g) for g in groups} == {(d, generator) for d in (0, 1, 2)}
    monkeypatch.setattr(data_sets, "data_origin", lambda group: (0, generator))
    families, notes = find_families(groups)
    assert families == [] and notes == ["mc_maze_small (40 train+eval trials) at 5 ms, phase val: data sets not "
                                        "pooled: several hold data seed 0 with other data (the same generator on "
                                        "another kind of CPU)"]
    monkeypatch.setattr(data_sets, "data_origin", lambda group: None if group is groups[0] else (7, generator))
    families, notes = find_families(groups)
    assert families == [] and notes[0] == (f"{groups[0].title}: not pooled with other data sets: its data seed could "
                                           "not be read (the data folder, its checksums or its ground_truth.h5)")
    origins = {id(g): (i, "a" * 64 if i else None) for i, g in enumerate(groups)}  # set 0: an older generator
    monkeypatch.setattr(data_sets, "data_origin", lambda group: origins[id(group)])
    families, notes = find_families(groups)
    assert [f.seeds for f in families] == [[1, 2]] and "aaaaaaaa" in families[0].title
    assert "come from 2 generators (some made before ground_truth.h5 recorded its generator)" in notes[0]
    monkeypatch.setattr(data_sets, "data_origin", lambda group: (groups.index(group), None))
    (family,), _ = find_families(groups)
    assert "these data sets were made before ground_truth.h5 recorded its generator" in " ".join(family.notes)
    monkeypatch.undo()
    for g in groups:
        g.synthetic = False  # real recordings: one set each, never pooled
    assert find_families(groups) == ([], [])


def test_the_report_shows_the_mean_over_data_sets(data_set_runs, tmp_path, monkeypatch):
    from nlb_suite.report import build_report, content
    from nlb_suite.report.html import Section

    monkeypatch.setattr(content, "group_section", lambda g: Section(g.title, g.anchor, "", ""))  # no plots: faster
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    build_report([data_set_runs[d][n] for d in (0, 1) for n in ("smoothing", "oracle")], html, md)
    title = ("mc_maze_small (40 train+eval trials), 5 ms bins, phase val (synthetic): mean over 2 data sets "
             "(data seeds 0, 1)")
    text = md.read_text()
    assert "## Means over data sets" in text and f"### {title}" in text and "| smoothing | 2 of 2 | 1, 1 |" in text
    page = html.read_text()
    assert 'data-section="Means over data sets"' in page
    assert f'<h3 id="data-sets-mc_maze_small-40-5ms-val">{title}</h3>' in page


def test_marks_references_and_partial_configurations_in_html_and_markdown(data_set_runs):
    from nlb_suite.report.build import gather
    from nlb_suite.report.content import families_section
    from nlb_suite.report.markdown import families_markdown

    groups = gather(_folders(data_set_runs), n_boot=0)
    families, notes = find_families(groups)
    (family,) = families
    top = family.rows[family.comparison["co-bps"].top]
    md = "\n".join(families_markdown(families, notes))
    assert "| lfads (gen_dim=8) | 2 of 3 | 1, 1, 0 |" in md
    top_line = next(line for line in md.splitlines() if line.startswith(f"| {top.label} | 3 of 3 |"))
    assert top_line.split(" | ")[3].startswith("**")  # its co-bps mean in bold
    assert "Differences to the top configuration of each metric" in md
    page = families_section(families, notes).body
    row = page.split(f"<td>{top.label}</td>", 1)[1].split("</tr>", 1)[0]
    assert row.count('<td class="num best">') >= 1 and "★" in row
    assert '<tr class="reference"><td>true rates (reference)</td>' in page


def test_an_ensemble_is_matched_across_data_sets_by_its_recipe(tmp_path):
    import yaml

    def candidate(name, gen_dim, seed):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump({"config": {"gen_dim": gen_dim, "seed": seed}}))
        return str(tmp_path / name)

    def info(*runs):
        return {"ensemble": {"ranking": [{"run": r, "baseline": "lfads"} for r in runs]}}
    config = {"members": ["/d0/a", "/d0/b"], "size": 2, "size_given": False, "min_size": 1, "max_size": 6,
              "rule": "size with the best co-bps ... on the 8 internal validation trials"}
    other_set = {**config, "members": ["/d1/a"], "size": 1, "rule": "... on the 9 internal validation trials"}
    six = [candidate(f"s{i}", 6, i) for i in range(3)]  # one config at three model seeds
    recipe = pooling_config("ensemble", config, info(*six))
    assert recipe["candidates"].endswith(" x3") and {k: recipe[k] for k in ("size_given", "min_size", "max_size")} \
        == {"size_given": False, "min_size": 1, "max_size": 6} and "size" not in recipe and "members" not in recipe
    assert pooling_config("ensemble", other_set, info(*six[::-1])) == recipe  # what each set's runs decide differs
    eight = [candidate(f"w{i}", 8, i) for i in range(3)]
    assert pooling_config("ensemble", config, info(*eight)) != recipe  # candidates of another config
    given = {**config, "size_given": True}
    assert pooling_config("ensemble", given, info(*six))["size"] == 2
    assert pooling_config("ensemble", given, info(*six)) != pooling_config("ensemble", {**given, "size": 3}, info(*six))
    assert pooling_config("ensemble", config, info(str(tmp_path / "gone"))) is None  # unreadable: its own
    assert pooling_config("lfads", config, info()) is config  # any other baseline: its resolved config


def test_data_origin_needs_verified_data_and_an_integer_seed(data_set_runs, tmp_path):
    import h5py

    from nlb_suite.report.build import gather
    from nlb_suite.report.data_sets import data_origin

    (group,) = gather([data_set_runs[1]["smoothing"]], n_boot=0)
    assert group.data_verified and data_origin(group)[0] == 1
    group.data_verified = False  # NWB files that differ from the runs' checksums
    assert data_origin(group) is None
    group.data_verified, group.data_dir = True, tmp_path
    with h5py.File(tmp_path / "ground_truth.h5", "w") as f:
        f.attrs["seed"] = "one"
    assert data_origin(group) is None  # a seed that is not an integer: no traceback


def test_the_generator_identity_follows_quirks_and_realism(monkeypatch):
    import dataclasses

    from nlb_suite.datasets import synthetic_dynamics
    from nlb_suite.datasets.synthetic_cache import generator_identity

    base = generator_identity("mc_maze_small")
    assert base == generator_identity("mc_maze_small") and base != generator_identity("mc_maze_small", quirks=False)
    knobs = synthetic_dynamics.REALISM["maze"]
    monkeypatch.setitem(synthetic_dynamics.REALISM, "maze", dataclasses.replace(knobs, rnn_gain=knobs.rnn_gain + 0.1))
    assert generator_identity("mc_maze_small") != base


def test_the_top_on_tp_corr_is_the_most_negative_and_ties_share_the_mark():
    rows = [Pooled("a", "a", {"tp corr": [-0.50, -0.40, -0.60]}, [1, 1, 1]),
            Pooled("b", "b", {"tp corr": [-0.20, -0.12, -0.28]}, [1, 1, 1]),
            Pooled("c", "c", {"tp corr": [-0.52, -0.38, -0.58]}, [1, 1, 1]),
            Pooled("d", "d", {"tp corr": [-0.90, None, -0.90]}, [1, 0, 1]),
            Pooled("truth", "oracle", {"tp corr": [-0.95, -0.95, -0.95]}, [1, 1, 1], reference=True)]
    comp = compare_pooled(rows, ["tp corr"])["tp corr"]
    assert comp.top == 0  # neither the reference nor the configuration missing a set
    assert comp.diffs[1].text() == Difference.across_sets([0.30, 0.28, 0.32]).text() == "+0.3000 [+0.2503, +0.3497]"
    assert comp.tied == {0, 2} and comp.diffs[3] is None and comp.diffs[4] is None


def test_a_second_run_of_one_draw_is_left_out_and_named(data_set_runs, tmp_path):
    import shutil

    from nlb_suite.report.build import gather

    copy = tmp_path / "copy_of_lfads"
    shutil.copytree(data_set_runs[1]["lfads_s0"], copy)
    (family,), _ = find_families(gather([*_folders(data_set_runs), str(copy)], n_boot=0))
    assert next(r for r in family.rows if r.label == "lfads (gen_dim=6)").fits == [2, 1, 1]  # the copy is no fit
    assert any(n.startswith("left out as the same draw") and n.endswith("copy_of_lfads (data seed 1)")
               for n in family.notes)


def test_groups_on_several_data_sets_are_titled_by_their_data_seed(data_set_runs, synthetic, tmp_path, monkeypatch):
    """Sets of one dataset are named by the seed the ground truth records (by trial count and seed where the
    counts differ), not by the order they came in, which read like a seed ("data set 2" for data seed 0 here)."""
    from nlb_suite.report import build

    base = "mc_maze_small, 5 ms bins, phase val (synthetic)"
    groups = build.gather(_folders(data_set_runs), n_boot=0)
    assert [(g.title, g.anchor) for g in groups] == [
        (f"{base}, data seed {d}", f"mc_maze_small-5ms-val-seed{d}") for d in (2, 0, 1)]
    other = execute(RunSpec("smoothing", "mc_maze_small", data=synthetic("mc_maze_small", trials=48, seed=1),
                            out=tmp_path / "smoothing_48", ci=0, profile="fast"), progress=False).run_dir
    groups = build.gather([data_set_runs[0]["smoothing"], other], n_boot=0)
    assert [g.title for g in groups] == [f"{base}, 40 train+eval trials, data seed 0",
                                         f"{base}, 48 train+eval trials, data seed 1"]
    for origin in (lambda g: (0, "a" * 64), lambda g: None):  # one seed twice (other generators), or unreadable
        monkeypatch.setattr(build, "data_origin", origin)
        groups = build.gather([data_set_runs[d]["smoothing"] for d in (0, 1)], n_boot=0)
        assert [(g.title, g.anchor) for g in groups] == [
            (f"{base}, data set {i}", f"mc_maze_small-5ms-val-{i}") for i in (1, 2)]
    monkeypatch.setattr(build, "data_origin",
                        lambda g: None if g.runs[0].record.path.parent.name == "d0" else (1, "a" * 64))
    groups = build.gather([data_set_runs[d]["smoothing"] for d in (0, 1)], n_boot=0)  # the first set unreadable
    assert [(g.title, g.anchor) for g in groups] == [(f"{base}, data set 1", "mc_maze_small-5ms-val-1"),
                                                     (f"{base}, data seed 1", "mc_maze_small-5ms-val-seed1")]
