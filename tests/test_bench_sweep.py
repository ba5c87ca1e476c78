"""benchmarks/bench_sweep.py: the paired PBT - default rows, per data seed and their mean per dataset."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from support.bench_scripts import BENCHMARKS, load_bench


def seed(diff: float, n: int = 400) -> dict:
    """A data seed where PBT - default co-bps is `diff` on all trials and every resample; no other metric."""
    base = np.random.default_rng(int(abs(diff) * 1000)).normal(0.2, 0.01, n)
    return {"metrics": {"lfads PBT": {"co-bps": 0.2 + diff}, "lfads": {"co-bps": 0.2}},
            "boot": {"lfads PBT": {"co-bps": base + diff}, "lfads": {"co-bps": base}}}


def test_paired_rows_give_each_seed_then_the_mean_per_dataset():
    b = load_bench("bench_sweep")
    pair = "lfads PBT - lfads default"
    rows = b.paired_rows({("mc_maze_small", 0): seed(0.01), ("mc_maze_small", 1): seed(0.03),
                          ("mc_maze_large", 0): seed(-0.02)})
    assert rows == [["mc_maze_small", "0", pair, "+0.0100 [+0.0100, +0.0100]", "-", "-", "-"],
                    ["mc_maze_small", "1", pair, "+0.0300 [+0.0300, +0.0300]", "-", "-", "-"],
                    ["mc_maze_small", "mean", pair, "+0.0200 [+0.0200, +0.0200]", "-", "-", "-"],
                    ["mc_maze_small", "seeds t", pair, "+0.0200 [-0.1071, +0.1471] tie", "-", "-", "-"],
                    ["mc_maze_large", "0", pair, "-0.0200 [-0.0200, -0.0200]", "-", "-", "-"]]
    assert b.paired_cells(seed(0.01)) == rows[0][3:]


def test_winner_values_are_paired_with_the_default_and_the_pbt_model_when_every_seed_has_them():
    b = load_bench("bench_sweep")
    final, kept = (name for name, _ in b.WINNER_VALUES.values())
    one, two = seed(0.01), seed(0.03)
    for res, diff in ((one, 0.02), (two, -0.01)):
        for run, shift in ((final, diff), (kept, 2 * diff)):
            res["metrics"][run] = {"co-bps": 0.2 + shift}
            res["boot"][run] = {"co-bps": res["boot"]["lfads"]["co-bps"] + shift}
    rows = b.paired_rows({("mc_maze_small", 0): one, ("mc_maze_small", 1): two})
    assert [r[2] for r in rows if r[1] == "seeds t"] == [r[2] for r in rows if r[1] == "mean"]  # one of each
    rows = [r for r in rows if r[1] != "seeds t"]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("0", "lfads PBT - lfads default", "+0.0100 [+0.0100, +0.0100]"),
        ("1", "lfads PBT - lfads default", "+0.0300 [+0.0300, +0.0300]"),
        ("mean", "lfads PBT - lfads default", "+0.0200 [+0.0200, +0.0200]"),
        ("0", "PBT final values - lfads default", "+0.0200 [+0.0200, +0.0200]"),
        ("1", "PBT final values - lfads default", "-0.0100 [-0.0100, -0.0100]"),
        ("mean", "PBT final values - lfads default", "+0.0050 [+0.0050, +0.0050]"),
        ("0", "PBT final values - lfads PBT", "+0.0100 [+0.0100, +0.0100]"),
        ("1", "PBT final values - lfads PBT", "-0.0400 [-0.0400, -0.0400]"),
        ("mean", "PBT final values - lfads PBT", "-0.0150 [-0.0150, -0.0150]"),
        ("0", "PBT kept values - lfads default", "+0.0400 [+0.0400, +0.0400]"),
        ("1", "PBT kept values - lfads default", "-0.0200 [-0.0200, -0.0200]"),
        ("mean", "PBT kept values - lfads default", "+0.0100 [+0.0100, +0.0100]"),
        ("0", "PBT kept values - lfads PBT", "+0.0300 [+0.0300, +0.0300]"),
        ("1", "PBT kept values - lfads PBT", "-0.0500 [-0.0500, -0.0500]"),
        ("mean", "PBT kept values - lfads PBT", "-0.0100 [-0.0100, -0.0100]")]
    del two["metrics"][final]  # a seed without the run: no mean over a subset
    assert {r[2] for r in b.paired_rows({("mc_maze_small", 0): one, ("mc_maze_small", 1): two})} == {
        "lfads PBT - lfads default", "PBT kept values - lfads default", "PBT kept values - lfads PBT"}


def test_winner_values_are_those_of_the_stretch_that_trained_the_last_or_the_kept_epoch(tmp_path):
    b = load_bench("bench_sweep")
    (tmp_path / "pbt").mkdir()
    lineage = [{"trial": "t_00003", "from_epoch": 0, "config": {"lr": 0.02}},
               {"trial": "t_00001", "from_epoch": 125, "config": {"lr": 0.025}},
               {"trial": "t_00000", "from_epoch": 275, "config": {"lr": 0.011}}]

    def sweep(best_epoch: int) -> None:  # trials.csv's best_epoch counts from 1, the lineage's epochs from 0
        (tmp_path / "pbt" / "sweep.json").write_text(json.dumps({"best": {"trial": "t_00000", "lineage": lineage}}))
        (tmp_path / "pbt" / "trials.csv").write_text("trial,status,lr,valid_best,best_epoch,epochs,fit_s\n"
                                                     f"t_00000,done,0.011,0.3,{best_epoch},300,10.0\n")
    sweep(158)
    assert b.winner_values(tmp_path, "final") == {"lr": 0.011} and b.winner_values(tmp_path, "kept") == {"lr": 0.025}
    sweep(126)  # epoch 126 counted from 1 is the stretch from epoch 125 counted from 0: its first epoch
    assert b.winner_values(tmp_path, "kept") == {"lr": 0.025}
    sweep(125)
    assert b.winner_values(tmp_path, "kept") == {"lr": 0.02}


def test_winner_values_are_a_subset_of_final_and_kept():
    b = load_bench("bench_sweep")
    assert b.winner_list("kept,final") == ["kept", "final"] and b.winner_list("") == []
    with pytest.raises(argparse.ArgumentTypeError, match="best: expected a comma-separated subset of final,kept"):
        b.winner_list("kept,best")


def test_each_population_and_epoch_budget_has_its_own_folder(tmp_path):
    b = load_bench("bench_sweep")
    space = tmp_path / "sweep_space_lfads_cpu_start_i25_b50.yaml"
    four = b.seed_folder(tmp_path, "mc_maze_small", 100, 0, space, 4, 300)
    assert four == tmp_path / "sweep" / "mc_maze_small_100_s0_p4_e300_sweep_space_lfads_cpu_start_i25_b50"
    others = {b.seed_folder(tmp_path, "mc_maze_small", 100, 0, space, p, e) for p, e in ((20, 300), (4, 150))}
    assert four not in others and len(others) == 2  # --reuse cannot read a population-4 sweep as another size


def test_a_set_variant_has_its_own_folder_and_needs_a_label(tmp_path):
    b = load_bench("bench_sweep")
    space = tmp_path / "s.yaml"
    assert b.variant_text({}, "") == ""
    assert b.variant_text({"valid_frac": 0.4, "sv_rate": 0.0}, "v40") == (
        "; variant v40: valid_frac=0.4, sv_rate=0.0 for the default and every PBT trial")
    plain = b.seed_folder(tmp_path, "mc_maze_small", 100, 1, space, 20, 300)
    assert b.seed_folder(tmp_path, "mc_maze_small", 100, 1, space, 20, 300, "v40") == plain.with_name(plain.name + "_v40")
    for args in (["--set", "valid_frac=0.4"], ["--label", "v40"]):
        done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_sweep.py"), *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 2
        assert done.stderr.splitlines()[-1].endswith("error: --set and --label go together (the label keeps the "
                                                     "variant's folders apart)")
