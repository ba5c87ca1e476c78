"""Runs of one configuration at several model seeds compared as arms, in `compare` and the report."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from nlb_suite.cli import main
from nlb_suite.report.arms import (
    arm_difference,
    compare_arms,
    config_key,
    find_arms,
    shared_validation,
    spread_text,
)
from nlb_suite.report.paired import ArmPart, Difference
from nlb_suite.runs import RunSpec, execute

TINY_LFADS = {"ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4, "co_dim": 2, "ic_dim": 4, "gen_dim": 6, "fac_dim": 3,
              "max_epochs": 2, "patience": 2, "valid_seed": 0}


def _boot(seed: int, mean: float, n: int = 50) -> dict[str, np.ndarray]:
    return {"co-bps": np.random.default_rng(seed).normal(mean, 0.01, n)}


def test_one_configuration_is_one_arm_whatever_its_seed_and_ordered_by_seed():
    cfg = {"lr": 0.01, "seed": 5}  # a config field named seed is the model seed: not part of the configuration
    assert config_key("lfads", cfg, 0) == config_key("lfads", {"lr": 0.01, "seed": 9}, 1)
    assert config_key("lfads", cfg, 0) != config_key("ndt", cfg, 0) != config_key("lfads", {"lr": 0.02}, 0)
    assert config_key("lfads", None, 0) != config_key("lfads", None, 1)  # no config recorded: its own arm
    baselines = ["lfads", "lfads", "smoothing", "lfads", "lfads", "lfads", "lfads"]
    configs = [{"lr": 0.01}, {"lr": 0.01}, {"kern": 50}, {"lr": 0.02}, {"lr": 0.01}, {"lr": 0.02}, {"lr": 0.01}]
    seeds = [2, 0, 0, 0, 1, 1, 0]
    metrics = [{"co-bps": v, "vel R2": 0.5} for v in (0.30, 0.31, 0.20, 0.33, 0.32, 0.34, 0.99)]
    metrics[4]["vel R2"] = float("nan")
    paths = [f"run{i}" for i in range(7)]
    arms = find_arms(baselines, configs, seeds, metrics, ["co-bps", "vel R2"], paths=paths)
    assert [(a.label, a.members, a.seeds) for a in arms] == [
        ("lfads (lr=0.01)", (1, 4, 0), (0, 1, 2)), ("smoothing", (2,), (0,)), ("lfads (lr=0.02)", (3, 5), (0, 1))]
    assert arms[0].left_out == ["run6"]  # a second run at seed 0: the same draw, not another fit
    assert arms[0].fits == {"co-bps": (0.31, 0.32, 0.30)}  # vel R2: one fit has none, so the arm has none
    assert arms[0].mean("co-bps") == pytest.approx(0.31) and arms[0].mean("vel R2") is None
    assert arms[0].boot is None  # no paired resamples given


def test_validation_is_one_set_only_when_every_fit_held_back_the_same_trials():
    a, b = {"co-bps": 0.3, "trial_ids": [1, 2]}, {"co-bps": 0.31, "trial_ids": [1, 2]}
    assert shared_validation([a, b]) == (0.3, 0.31)
    assert shared_validation([a, {"co-bps": 0.31, "trial_ids": [1, 3]}]) is None
    assert shared_validation([a, None]) is None and shared_validation([]) is None
    assert spread_text([0.30, 0.31, 0.32]) == "0.0100 (0.3000..0.3200)"
    assert spread_text([0.3]) == "-" and spread_text([0.3, None]) == "-"


def test_arm_differences_are_welch_over_fits_and_trials_and_pair_by_seed():
    names = ["co-bps"]
    fits_a, fits_b = (0.300, 0.306, 0.303), (0.310, 0.317, 0.312)
    boot = [_boot(i, v) for i, v in enumerate(fits_a + fits_b + (0.25,))]
    metrics = [{"co-bps": v} for v in fits_a + fits_b + (0.25,)]
    arms = find_arms(["g"] * 3 + ["h"] * 3 + ["smoothing"], [{}] * 3 + [{}] * 3 + [{}], [0, 1, 2] * 2 + [0],
                     metrics, names, boot)
    a, b, s = arms
    by_hand = ArmPart(np.mean(fits_a) - np.mean(fits_b), fits_a, fits_b, np.mean([x["co-bps"] for x in boot[:3]], 0),
                      np.mean([x["co-bps"] for x in boot[3:6]], 0), paired=True)
    assert arm_difference(a, b, "co-bps") == Difference.between_arms([by_hand])
    shifted = find_arms(["h"] * 3, [{}] * 3, [3, 4, 5], metrics[3:6], names, boot[3:6])[0]
    assert arm_difference(a, shifted, "co-bps") == Difference.between_arms([ArmPart(
        by_hand.value, fits_a, fits_b, by_hand.boot_a, by_hand.boot_b, paired=False)])  # other seeds: unpaired
    one = Difference.between_arms([ArmPart(0.25 - np.mean(fits_b), (0.25,), fits_b, boot[6]["co-bps"],
                                           by_hand.boot_b)])
    assert arm_difference(s, b, "co-bps") == one  # an arm of one fit adds no spread of its own
    comp = compare_arms(arms, names)["co-bps"]
    assert comp.top == 1 and comp.diffs[1] is None
    assert comp.diffs[0] == Difference.between_arms([by_hand])  # g - h, h the top arm
    assert comp.tied == {1} | {i for i in (0, 2) if comp.diffs[i].tie}
    assert 2 not in comp.tied  # smoothing, 0.06 below: resolved
    no_boot = find_arms(["g"] * 2, [{}] * 2, [0, 1], metrics[:2], names, [boot[0], None])[0]
    assert no_boot.boot is None and arm_difference(no_boot, b, "co-bps") is None


@pytest.fixture(scope="module")
def arm_runs(synthetic, tmp_path_factory):
    """On synthetic mc_maze_small: smoothing, a tiny LFADS at model seeds 0-2, the same with gen_dim 8 at seeds 0-1,
    and a copy of the seed-0 fit (the same draw)."""
    root = tmp_path_factory.mktemp("arm_runs")
    data = synthetic("mc_maze_small")
    out = [execute(RunSpec("smoothing", "mc_maze_small", data=data, out=root / "smoothing", ci=20, profile="fast"),
                   progress=False).run_dir]
    for seed in (0, 1, 2):
        out.append(execute(RunSpec("lfads", "mc_maze_small", data=data, out=root / f"lfads_s{seed}", seed=seed, ci=20,
                                   device="cpu", overrides=dict(TINY_LFADS)), progress=False).run_dir)
    for seed in (0, 1):
        out.append(execute(RunSpec("lfads", "mc_maze_small", data=data, out=root / f"wide_s{seed}", seed=seed, ci=20,
                                   device="cpu", overrides=dict(TINY_LFADS, gen_dim=8)), progress=False).run_dir)
    shutil.copytree(root / "lfads_s0", root / "copy_s0")
    return out + [root / "copy_s0"]


def _section(out: str, start: str, end: str) -> list[str]:
    return out.split(start, 1)[1].split(end, 1)[0].strip().splitlines()


def test_compare_groups_runs_of_one_configuration_into_arms(arm_runs, capsys):
    from nlb_suite.report.build import gather

    assert main(["compare", *map(str, arm_runs), "--ci", "100"]) == 0
    out = capsys.readouterr().out
    table = _section(out, "arms (one configuration at several model seeds)", "differences to the top arm")
    rows = {line.split("  ")[0]: line for line in table[3:]}  # caption tail, header, rule
    assert set(rows) == {"smoothing", "lfads (gen_dim=6)", "lfads (gen_dim=8)"}
    (group,) = gather(arm_runs, n_boot=100)
    arms = {a.label: a for a in group.arms}
    three, two = arms["lfads (gen_dim=6)"], arms["lfads (gen_dim=8)"]
    assert three.seeds == (0, 1, 2) and two.seeds == (0, 1) and arms["smoothing"].size == 1
    run_co_bps = {r.record.path.name: r.record.metrics["co-bps"] for r in group.runs}
    fits = [run_co_bps[f"lfads_s{s}"] for s in (0, 1, 2)]
    assert three.fits["co-bps"] == tuple(fits)  # the copy of seed 0 is left out, named in a note
    assert f"{np.mean(fits):.4f} ({np.std(fits, ddof=1):.4f})" in rows["lfads (gen_dim=6)"]
    assert rows["lfads (gen_dim=6)"].split()[2:6] == ["3", "0,", "1,", "2"]
    assert "left out of the arm" in out and "copy_s0" in out
    assert table[3].startswith("smoothing ") and table[3].split()[4] == "*"  # best co-bps mean first, marked
    assert "validation co-bps mean (SD)" in table[1] and "co-bps gap closed" in table[1]
    diffs = _section(out, "differences to the top arm", "note:")
    comp = group.arm_comparison["co-bps"]
    top = group.arms[comp.top]
    for i, arm in enumerate(group.arms):
        line = next(d for d in diffs if d.startswith(arm.label + " "))
        expected = "top" if i == comp.top else arm_difference(arm, top, "co-bps").text()
        assert line.split("  ")[-1].strip() != "" and expected in line
    assert "Welch t interval that adds the fits' spread" in " ".join(out.split())


def test_the_report_shows_the_arms(arm_runs, tmp_path):
    from nlb_suite.report import build_report

    html, md = tmp_path / "r.html", tmp_path / "r.md"
    build_report(arm_runs, html, md)
    text = md.read_text()
    assert "Arms: one configuration at several model seeds" in text
    assert "| lfads (gen_dim=6) | 3 | 0, 1, 2 |" in text and "| lfads (gen_dim=8) | 2 | 0, 1 |" in text
    assert "Differences to the top arm of each metric" in text
    page = html.read_text()
    assert "Arms: runs of one configuration at several model seeds" in page and "lfads (gen_dim=8)" in page


def test_no_arm_section_when_every_configuration_has_one_fit(arm_runs, capsys):
    assert main(["compare", str(arm_runs[0]), str(arm_runs[1]), str(arm_runs[-1]), "--ci", "0"]) == 0
    out = capsys.readouterr().out
    assert "arms (one configuration" not in out  # the copy is the same draw: still one fit
    assert json.loads((arm_runs[-1] / "run.json").read_text())["seed"] == 0
