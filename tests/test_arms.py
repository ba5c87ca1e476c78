"""Runs of one configuration at several model seeds compared as arms, in `compare` and the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.report.arms import (
    ArmRun,
    arm_difference,
    compare_arms,
    config_key,
    find_arms,
    pairs_by_seed,
    shared_validation,
    spread_text,
)
from nlb_suite.report.paired import ArmPart, Difference
from nlb_suite.runs import RunSpec, execute, read_run

TINY_LFADS = {"ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4, "co_dim": 2, "ic_dim": 4, "gen_dim": 6, "fac_dim": 3,
              "max_epochs": 2, "patience": 2, "valid_seed": 0}


def _run(i: int, baseline: str = "lfads", config=None, seed=0, co_bps: float = 0.3, device: str = "cpu",
         uses_seed: bool = True, boot: float | None = None, exact: bool | None = None, validation=None,
         **metrics) -> ArmRun:
    """One run for find_arms; `boot`: its co-bps on 50 shared resamples (its value plus seeded trial noise);
    `exact` defaults to `not uses_seed` (a baseline with no random draw)."""
    resamples = None if boot is None else {"co-bps": np.random.default_rng(i).normal(boot, 0.01, 50)}
    return ArmRun(i, f"run{i}", baseline, {"lr": 0.01} if config is None else config, seed, device, uses_seed,
                  not uses_seed if exact is None else exact, {"co-bps": co_bps, **metrics}, resamples, validation)


def test_one_configuration_is_one_arm_whatever_its_seed_and_ordered_by_seed():
    assert config_key(_run(0, config={"lr": 0.01, "seed": 5})) == config_key(_run(1, config={"lr": 0.01, "seed": 9}))
    keys = {config_key(r) for r in (_run(0), _run(1, baseline="ndt"), _run(2, config={"lr": 0.02}),
                                     _run(3, device="cuda"))}
    assert len(keys) == 4  # baseline, config and device each make another configuration
    alone = [ArmRun(i, f"r{i}", "lfads", c, s, "cpu", True, False, {"co-bps": 0.3}) for i, (c, s) in
             enumerate([(None, 0), (None, 1), ({"lr": 0.01}, None), ({"lr": 0.01}, None)])]
    assert len({config_key(r) for r in alone}) == 4  # no config or no seed recorded: a configuration of its own
    runs = [_run(0, seed=2, co_bps=0.30), _run(1, seed=0, co_bps=0.31),
            _run(2, "smoothing", {"k": 50}, co_bps=0.2, uses_seed=False), _run(3, config={"lr": 0.02}, co_bps=0.33),
            _run(4, seed=1, co_bps=0.32, **{"vel R2": 0.5}), _run(5, config={"lr": 0.02}, seed=1, co_bps=0.34),
            _run(6, seed=0, co_bps=0.99),
            _run(7, "smoothing", {"k": 50}, seed=3, co_bps=0.2, uses_seed=False),
            _run(8, seed=0, co_bps=0.5, device="cuda")]
    arms = find_arms(runs, ["co-bps", "vel R2"])
    assert [(a.label, a.members, a.seeds) for a in arms] == [
        ("lfads (lr=0.01, device cpu)", (1, 4, 0), (0, 1, 2)), ("smoothing", (2,), (0,)),
        ("lfads (lr=0.02, device cpu)", (3, 5), (0, 1)), ("lfads (lr=0.01, device cuda)", (8,), (0,))]
    assert arms[0].left_out == ["run6"]  # a second run at seed 0: the same draw, not another fit
    assert arms[1].left_out == ["run7"]  # smoothing at another seed: the same rates, not another fit
    assert arms[0].fits == {"co-bps": (0.31, 0.32, 0.30)}  # vel R2: two fits have none, so the arm has none
    assert arms[0].mean("co-bps") == pytest.approx(0.31) and arms[0].mean("vel R2") is None
    assert arms[0].boot is None  # no paired resamples given
    assert [a.judged for a in arms] == [True, True, True, False]  # one fit of a trained model: not judged
    unlabelled = find_arms([_run(0), _run(1, seed=1), ArmRun(2, "old_run", "lfads", None, 0, "cpu", True, False,
                                                             {"co-bps": 0.3})], ["co-bps"])
    assert [a.label for a in unlabelled] == ["lfads", "lfads (old_run)"]


def test_validation_is_one_set_only_when_every_fit_held_back_the_same_trials():
    a, b = {"co-bps": 0.3, "trial_ids": [1, 2]}, {"co-bps": 0.31, "trial_ids": [1, 2]}
    assert shared_validation([a, b]) == (0.3, 0.31)
    assert shared_validation([a, {"co-bps": 0.31, "trial_ids": [1, 3]}]) is None
    assert shared_validation([a, None]) is None and shared_validation([]) is None
    assert spread_text([0.30, 0.31, 0.32]) == "0.0100 (0.3000..0.3200)"
    assert spread_text([0.3]) == "-" and spread_text([0.3, None]) == "-"


def test_an_ensemble_is_one_draw_at_every_seed_and_never_exact():
    runs = [_run(0, "ensemble", {"members": ["a", "b"]}, seed=0, uses_seed=False, exact=False, boot=0.35),
            _run(1, "ensemble", {"members": ["a", "b"]}, seed=1, uses_seed=False, exact=False, boot=0.35),
            _run(2, "smoothing", {}, uses_seed=False, boot=0.2), _run(3, "g", seed=0, boot=0.3), _run(4, "g", seed=1,
                                                                                                 boot=0.31)]
    ensemble, smoothing, g = find_arms(runs, ["co-bps"])
    assert ensemble.left_out == ["run1"] and not ensemble.judged and smoothing.judged and g.judged
    comp = compare_arms([ensemble, smoothing, g], ["co-bps"])["co-bps"]
    assert comp.diffs[0] is None and 0 not in comp.tied  # its members' fit noise is not estimated: not judged


def test_one_judged_arm_has_nothing_to_be_compared_with():
    arms = find_arms([_run(0, seed=0, boot=0.3), _run(1, seed=1, boot=0.31), _run(2, "h", boot=0.5)], ["co-bps"])
    comp = compare_arms(arms, ["co-bps"])["co-bps"]
    assert comp.top is None and comp.tied == set()  # h's single fit is higher, but one fit is not judged


def test_arms_pair_by_seed_only_within_one_baseline():
    assert pairs_by_seed("gnocchi", (0, 1, 2), "gnocchi", (0, 1, 2))
    assert not pairs_by_seed("gnocchi", (0, 1, 2), "lfads", (0, 1, 2))  # nothing shared at one seed
    assert not pairs_by_seed("gnocchi", (0, 1, 2), "gnocchi", (3, 4, 5)) and not pairs_by_seed("g", (0,), "g", (0,))


def test_arm_differences_are_welch_over_fits_and_trials_with_hand_made_parts():
    fits_a, fits_b = (0.300, 0.306, 0.303), (0.310, 0.317, 0.312)
    runs = ([_run(i, "g", seed=s, co_bps=v, boot=v) for i, (s, v) in enumerate(zip((0, 1, 2), fits_a))]
            + [_run(3 + i, "g", {"lr": 0.02}, seed=s, co_bps=v, boot=v)
               for i, (s, v) in enumerate(zip((0, 1, 2), fits_b))]
            + [_run(6, "smoothing", {}, co_bps=0.25, boot=0.25, uses_seed=False)]
            + [_run(7, "h", seed=0, co_bps=0.40, boot=0.40)])
    a, b, s, lone = find_arms(runs, ["co-bps"])
    boot_of = {r.id: r.boot["co-bps"] for r in runs}
    mean_boot = [np.mean([boot_of[i] for i in ids], axis=0) for ids in ((0, 1, 2), (3, 4, 5))]
    by_hand = ArmPart(np.mean(fits_a) - np.mean(fits_b), fits_a, fits_b, *mean_boot, paired=True)
    assert arm_difference(a, b, "co-bps") == Difference.between_arms([by_hand])
    shifted = find_arms([_run(10 + i, "h", seed=3 + i, co_bps=v, boot=v) for i, v in enumerate(fits_b)], ["co-bps"])[0]
    shifted.boot = {"co-bps": mean_boot[1]}
    assert arm_difference(a, shifted, "co-bps") == Difference.between_arms([ArmPart(
        by_hand.value, fits_a, fits_b, *mean_boot, paired=False)])  # other seeds and baseline: unpaired
    exact = ArmPart(0.25 - np.mean(fits_b), (0.25,), fits_b, boot_of[6], mean_boot[1])
    assert arm_difference(s, b, "co-bps") == Difference.between_arms([exact])  # smoothing's one fit is exact
    comp = compare_arms([a, b, s, lone], ["co-bps"])["co-bps"]
    assert comp.top == 1  # h's single fit (0.40) is higher, but one fit of a trained model is not judged
    assert comp.diffs[0] == Difference.between_arms([by_hand]) and comp.diffs[3] is None and 3 not in comp.tied
    # g is 0.009 below h, but each run's resamples carry independent noise of SD 0.01 (0.008 on a difference of
    # means of 3): a tie; smoothing, 0.063 below, is resolved
    assert comp.diffs[2].hi < 0 and comp.diffs[0].tie and comp.tied == {0, 1}
    blind = compare_arms(find_arms([_run(i, "g", seed=i, co_bps=v) for i, v in enumerate(fits_a)], ["co-bps"]),
                         ["co-bps"])["co-bps"]
    assert blind.top is None and blind.tied == set()  # no paired resamples: nothing judged, nothing marked


@pytest.fixture(scope="module")
def arm_runs(synthetic, tmp_path_factory):
    """On synthetic mc_maze_small: smoothing, a tiny LFADS at model seeds 0-2, the same with gen_dim 8 at seeds 0-1,
    a copy of the seed-0 fit (the same draw), smoothing again at seed 1 and the true rates at seeds 0 and 1."""
    root = tmp_path_factory.mktemp("arm_runs")
    data = synthetic("mc_maze_small")

    def run(name, out, seed=0, **kw):
        return execute(RunSpec(name, "mc_maze_small", data=data, out=root / out, seed=seed, ci=20, device="cpu",
                               **kw), progress=False).run_dir
    out = [run("smoothing", "smoothing", profile="fast")]
    out += [run("lfads", f"lfads_s{s}", s, overrides=dict(TINY_LFADS)) for s in (0, 1, 2)]
    out += [run("lfads", f"wide_s{s}", s, overrides=dict(TINY_LFADS, gen_dim=8)) for s in (0, 1)]
    shutil.copytree(root / "lfads_s0", root / "copy_s0")
    out += [root / "copy_s0", run("smoothing", "smoothing_s1", 1, profile="fast"), run("oracle", "oracle"),
            run("oracle", "oracle_s1", 1)]
    return out


def _section(out: str, start: str, end: str) -> list[str]:
    return out.split(start, 1)[1].split(end, 1)[0].strip().splitlines()


def test_compare_groups_runs_of_one_configuration_into_arms(arm_runs, capsys):
    assert main(["compare", *map(str, arm_runs), "--ci", "100"]) == 0
    out = capsys.readouterr().out
    table = _section(out, "arms (one configuration at several model seeds)", "differences to the top arm")
    rows = {line.split("  ")[0]: line for line in table[3:]}  # caption tail, header, rule
    assert list(rows) == ["smoothing", "lfads (gen_dim=8)", "lfads (gen_dim=6)"]  # best co-bps mean first; no oracle
    runs = {p.name: read_run(p).metrics for p in arm_runs}
    co_bps = [runs[f"lfads_s{s}"]["co-bps"] for s in (0, 1, 2)]
    assert rows["lfads (gen_dim=6)"].split()[2:6] == ["3", "0,", "1,", "2"]
    assert f"{np.mean(co_bps):.4f} ({np.std(co_bps, ddof=1):.4f})" in rows["lfads (gen_dim=6)"]
    smoothing = runs["smoothing"]["co-bps"]
    assert rows["smoothing"].split()[1:5] == ["1", "0", f"{smoothing:.4f}", "*"]  # top by co-bps, marked; one draw
    assert "validation co-bps mean (SD)" in table[1] and "co-bps gap closed" in table[1]
    notes = " ".join(out.split())
    left_out = {line.split(": left out")[0][6:]: line for line in out.splitlines() if ": left out of the arm" in line}
    assert left_out["lfads (gen_dim=6)"].endswith(": copy_s0") and left_out["smoothing"].endswith(": smoothing_s1")
    diffs = _section(out, "differences to the top arm", "note:")
    assert diffs[3].startswith("smoothing ") and diffs[3].split()[1] == "top"  # after caption tail, header, rule
    for line in diffs[4:]:
        assert line.split()[2].startswith("-") and line.split()[3].startswith("[")  # below smoothing, an interval
    assert "Welch t interval that adds the fits' spread" in notes


def test_without_paired_resamples_no_arm_is_marked(arm_runs, capsys):
    assert main(["compare", *map(str, arm_runs), "--ci", "0"]) == 0
    out = capsys.readouterr().out
    table = _section(out, "arms (one configuration at several model seeds)", "note:")
    assert "*" not in "\n".join(table) and "differences to the top arm" not in out
    assert "not judged for want of the paired resamples" in " ".join(out.split())


def test_one_fit_of_a_trained_model_is_shown_not_judged(arm_runs, capsys):
    assert main(["compare", *map(str, arm_runs[1:5]), "--ci", "50"]) == 0  # LFADS x3 and one wide fit
    out = capsys.readouterr().out
    table = _section(out, "arms (one configuration at several model seeds)", "note:")
    lone = next(line for line in table if line.startswith("lfads (gen_dim=8)"))
    assert "1 (not judged)" in lone
    assert "*" not in "\n".join(table) and "differences to the top arm" not in out  # one judged arm: nothing to rank


def test_the_report_shows_the_arms(arm_runs, tmp_path):
    from nlb_suite.report import build_report

    html, md = tmp_path / "r.html", tmp_path / "r.md"
    build_report(arm_runs, html, md)
    text = md.read_text()
    assert "Arms: one configuration at several model seeds" in text
    assert "| lfads (gen_dim=6) | 3 | 0, 1, 2 |" in text and "| lfads (gen_dim=8) | 2 | 0, 1 |" in text
    smoothing = next(line for line in text.splitlines() if line.startswith("| smoothing | 1 | 0 |"))
    assert smoothing.split(" | ")[3].startswith("**0.")  # the best arm in bold, as in the run table
    assert "Differences to the top arm of each metric" in text
    page = html.read_text()
    arms = page.split("Arms: runs of one configuration")[1]
    assert "lfads (gen_dim=8)" in arms and '<td class="num best">' in arms.split("Differences to the top arm")[0]


def test_no_arm_section_when_every_configuration_has_one_fit(arm_runs, capsys):
    assert main(["compare", str(arm_runs[0]), str(arm_runs[1]), str(arm_runs[6]), "--ci", "0"]) == 0
    assert "arms (one configuration" not in capsys.readouterr().out  # the copy is the same draw: still one fit


def test_a_seed_that_is_not_an_integer_is_refused_in_one_line(arm_runs, tmp_path, capsys):
    run = tmp_path / "bad_seed"
    shutil.copytree(arm_runs[1], run)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "seed": 1.5}))
    assert main(["compare", str(arm_runs[0]), str(run), "--ci", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run.json" in err and "seed: not a int (got float)" in err


@pytest.mark.parametrize("baseline", ["smoothing", "gpfa"])
def test_baselines_that_do_not_use_the_seed_give_the_same_rates_at_every_seed(baseline, synthetic, tmp_path):
    """The `uses_seed = False` that makes compare count their runs at other seeds as one draw."""
    from nlb_suite.baseline_api import get_baseline
    from nlb_suite.h5io import load_h5

    assert get_baseline(baseline).uses_seed is False and get_baseline("lfads").uses_seed is True
    data = synthetic("mc_maze_small")
    rates = []
    for seed in (0, 3):
        run = execute(RunSpec(baseline, "mc_maze_small", data=data, out=tmp_path / f"s{seed}", seed=seed, ci=0,
                              profile="fast"), progress=False).run_dir
        rates.append(load_h5(run / "submission.h5"))
    for key, group in rates[0].items():
        for name, values in group.items():
            np.testing.assert_array_equal(values, rates[1][key][name], err_msg=f"{baseline} {key}/{name}")


def test_the_top_arm_on_tp_corr_is_the_most_negative():
    runs = [ArmRun(i, f"r{i}", b, {}, s, "cpu", True, False, {"tp corr": v},
                   {"tp corr": np.random.default_rng(i).normal(v, 0.01, 50)})
            for i, (b, s, v) in enumerate([("g", 0, -0.5), ("g", 1, -0.52), ("h", 0, -0.2), ("h", 1, -0.22)])]
    comp = compare_arms(find_arms(runs, ["tp corr"]), ["tp corr"])["tp corr"]
    assert comp.top == 0 and comp.diffs[1].value == pytest.approx(0.30) and comp.tied == {0}


def _fake_group(validations):
    """A group of two arms of two LFADS fits each, tied on co-bps, with the given internal validations."""
    from nlb_suite.report.build import GroupData, RunData
    from nlb_suite.runs import RunRecord

    runs = [RunData(RunRecord(Path(f"/runs/r{i}"), {"baseline": "lfads", "seed": i % 2}, {}, {"co-bps": 0.3}, None))
            for i in range(4)]
    group = GroupData("mc_maze_small", 5, "val", True, None, runs)
    arm_runs = [_run(i, "lfads", {"lr": 0.01 * (1 + i // 2)}, seed=i % 2, boot=0.3, validation=v)
                for i, v in enumerate(validations)]
    group.arms = find_arms(arm_runs, ["co-bps"])
    group.arm_comparison = compare_arms(group.arms, ["co-bps"])
    return group


def test_the_validation_column_only_when_every_arm_held_back_the_same_trials():
    from nlb_suite.report.arm_tables import arm_notes, arm_table

    same = [{"co-bps": 0.2 + i / 100, "trial_ids": [1, 2]} for i in range(4)]
    headers, rows = arm_table(_fake_group(same))
    assert headers[-1] == "validation co-bps mean (SD)" and rows[0][-1].text == "0.2050 (0.0071)"
    other = same[:2] + [{"co-bps": 0.22, "trial_ids": [3]}, {"co-bps": 0.23, "trial_ids": [3]}]
    group = _fake_group(other)
    assert "validation co-bps mean (SD)" not in arm_table(group)[0]
    assert any(n.startswith("validation co-bps not shown: the arms held back different trials") for n in
               arm_notes(group))


def test_tied_arms_are_marked_alike_in_every_output():
    from nlb_suite.report.arm_tables import arm_table
    from nlb_suite.report.content import arms_html
    from nlb_suite.report.markdown import arms_markdown

    group = _fake_group([None] * 4)
    _, rows = arm_table(group)
    assert [(r[0].text, r[3].best, r[3].tie) for r in rows] == [("lfads (lr=0.01)", True, True),
                                                               ("lfads (lr=0.02)", True, True)]
    md = "\n".join(arms_markdown(group))
    assert "| lfads (lr=0.01) | 2 | 0, 1 | **0.3000 (0.0000)** (tie) |" in md
    assert md.count('(tie)') == 2
    assert arms_html(group).count('<td class="num best">0.3000 (0.0000) ★ tie</td>') == 2


def test_a_run_records_whether_its_seed_makes_a_draw_and_older_runs_are_looked_up(arm_runs, monkeypatch):
    from nlb_suite.report import build

    assert json.loads((arm_runs[1] / "run.json").read_text())["uses_seed"] is True  # lfads
    assert json.loads((arm_runs[0] / "run.json").read_text())["uses_seed"] is False  # smoothing
    build.baseline_uses_seed.cache_clear()
    assert build.baseline_uses_seed("ensemble") is False and build.baseline_uses_seed("nosuch") is True
    assert build.baseline_uses_seed("gpfa") is False and build.baseline_uses_seed("lfads") is True

    def broken(name):
        raise RuntimeError("a plugin whose import fails")
    monkeypatch.setattr("nlb_suite.baseline_api.get_baseline", broken)
    build.baseline_uses_seed.cache_clear()
    assert build.baseline_uses_seed("gpfa") is True  # cannot be loaded: taken as seeded, never a traceback
    build.baseline_uses_seed.cache_clear()


def test_a_run_without_a_seed_is_an_arm_of_its_own(arm_runs, tmp_path, capsys):
    run = tmp_path / "noseed"
    shutil.copytree(arm_runs[2], run)
    info = json.loads((run / "run.json").read_text())
    del info["seed"], info["uses_seed"]
    (run / "run.json").write_text(json.dumps(info))
    assert main(["compare", str(arm_runs[1]), str(arm_runs[3]), str(run), "--ci", "20"]) == 0
    table = _section(capsys.readouterr().out, "arms (one configuration at several model seeds)", "note:")
    rows = {line.split("  ")[0]: line.split("  ")[1:] for line in table[3:]}
    assert [c.strip() for c in rows["lfads"] if c.strip()][:2] == ["2", "0, 2"]
    assert [c.strip() for c in rows["lfads (noseed)"] if c.strip()][:2] == ["1 (not judged)", "–"]
