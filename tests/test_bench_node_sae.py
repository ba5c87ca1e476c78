"""benchmarks/bench_node_sae.py: tags and overrides of the other baselines' runs (LFADS / NDT epoch caps)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench():
    spec = importlib.util.spec_from_file_location("bench_node_sae", ROOT / "benchmarks" / "bench_node_sae.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_others_tags_keep_the_legacy_lfads_tag_and_mark_other_caps():
    b = bench()
    assert b.others_tag("lorenz", "lfads", 0, 30) == "lorenz_lfads_s0"
    assert b.others_tag("lorenz", "lfads", 1, 200) == "lorenz_lfads_s1_e200"
    assert b.others_tag("lorenz", "ndt", 2, 60) == "lorenz_ndt_s2_e60"
    assert b.others_tag("lorenz", "gpfa", 0) == "lorenz_gpfa_s0"


def test_capped_runs_scale_the_schedule_with_the_cap():
    b = bench()
    legacy = b.others_job("lorenz", "lfads", 0, 30)
    assert legacy["overrides"] == {"max_epochs": 30, "patience": 30}
    full = b.others_job("lorenz", "lfads", 0, 200)["overrides"]  # the cpu profile itself: factor 1
    assert full == {"max_epochs": 200, "patience": 200, "warmup_epochs": 3, "kl_increase_epoch": 40,
                    "l2_increase_epoch": 40}
    ndt = b.others_job("lorenz", "ndt", 0, 60)
    assert ndt["overrides"] == {"max_epochs": 60, "patience": 60, "warmup_epochs": 3, "span_ramp_start": 12,
                                "span_ramp_end": 30}
    assert ndt["config_file"].endswith("ndt/mc_maze_small.yaml")
    assert b.others_job("lorenz", "gpfa", 0)["overrides"] == {}
