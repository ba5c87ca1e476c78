"""benchmarks/bench_node_sae.py: tags and overrides of the other baselines' runs (LFADS / NDT epoch caps), the latent-size table."""

from support.bench_scripts import load_bench


def bench():
    return load_bench("bench_node_sae")


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
                                "span_ramp_end": 30, "refit": False}  # as the lorenz rows were fitted
    assert ndt["config_file"].endswith("ndt/mc_maze_small.yaml")
    assert b.others_job("lorenz", "gpfa", 0)["overrides"] == {}


def test_sizes_table_means_each_model_and_size_over_the_claim_profile_runs(capsys):
    b = bench()

    def row(model, size, seed, rate, state, sfx, dataset="lorenz"):
        return {"tag": f"{dataset}_{model}_l{size}_s{seed}{sfx}", "baseline": model, "seed": seed,
                "overrides": {"latent_dim": size}, "truth": {"rate R2": rate, "state R2": state}}

    sfx = {"node_sae": "_long_win_u28", "gru_sae": "_long_win"}
    rows = [row("node_sae", 3, 0, 0.8, 0.9, sfx["node_sae"]), row("node_sae", 3, 1, 0.6, 0.7, sfx["node_sae"]),
            row("node_sae", 10, 0, 0.9, 0.5, sfx["node_sae"]), row("node_sae", 3, 0, 0.1, 0.1, "_long"),
            row("gru_sae", 100, 1, 0.97, 0.65, sfx["gru_sae"])]
    b.sizes_table({r["tag"]: r for r in rows}, "lorenz", [0, 1], sfx, "long")
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    table = {(c[0], c[1]): c for c in lines if c and c[0] in ("node_sae", "gru_sae")}
    assert set(table) == {("node_sae", "3"), ("node_sae", "10"), ("gru_sae", "100")}  # not the `_long` run
    assert table["node_sae", "3"][2:] == ["0", "1", "0.800", "0.600", "0.700", "0.900", "0.700", "0.800",
                                           "0.836", "/", "0.895"]
    assert table["node_sae", "10"][2:5] == ["0", "0.900", "0.900"]
    assert table["gru_sae", "100"][2:] == ["1", "0.970", "0.970", "0.650", "0.650", "~0.98", "/", "0.63-0.73"]
    other = row("gru_sae", 100, 1, 0.97, 0.65, sfx["gru_sae"], dataset="rossler")  # the paper's sizes are lorenz's
    b.sizes_table({other["tag"]: other}, "rossler", [0, 1], sfx, "long")
    gru = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("gru_sae")]
    assert gru == [["gru_sae", "100", "1", "0.970", "0.970", "0.650", "0.650", "-"]]


def test_node_minus_gru_pairs_each_latent_size_where_both_saes_ran_with_the_claim_schedule():
    b = bench()
    sfx = {"node_sae": "_long_win_u28", "gru_sae": "_long_win"}

    def row(model, size, seed, rate, state, rate_boot, state_boot, suffix=None):
        return {"tag": f"lorenz_{model}_l{size}_s{seed}{suffix or sfx[model]}", "baseline": model, "seed": seed,
                "overrides": {"latent_dim": size}, "truth": {"rate R2": rate, "state R2": state},
                "rate_boot": rate_boot, "state_boot": state_boot}

    up = [0.90 + 0.001 * i for i in range(200)]  # NODE's resampled values, GRU's = NODE's minus a fixed shift
    rows = [row("node_sae", 10, 0, 0.95, 0.50, up, up), row("gru_sae", 10, 0, 0.85, 0.55,
                                                             [v - 0.1 for v in up], [v + 0.05 for v in up]),
            row("node_sae", 25, 0, 0.97, 0.45, up, up),  # no GRU at 25: no row
            row("node_sae", 10, 1, 0.9, 0.5, up, up), row("gru_sae", 10, 1, 0.8, 0.4, up, up, "_cpu")]  # other profile
    rows = b.node_minus_gru({r["tag"]: r for r in rows}, "lorenz", [0, 1], sfx, [3, 10, 25])
    assert rows == [[10, 0, "+0.100 [+0.100, +0.100]", "-0.050 [-0.050, -0.050]"]]


def test_model_seed_runs_are_tagged_apart_and_tabled_per_data_seed(capsys):
    b = bench()
    assert b.model_seed_suffix(0, 0) == "" and b.model_seed_suffix(0, 3) == "_m3"
    assert b.model_seed_of("lorenz_node_sae_l3_s0_long_win_u28_m3", 0) == 3
    assert b.model_seed_of("lorenz_node_sae_l3_s2_long_win_u28", 2) == 2
    assert b.schedule({"tag": "lorenz_node_sae_l3_s0_long_win_u28_m3", "seed": 0,
                       "overrides": {"latent_dim": 3}}) == "long win u28"
    sfx = {"node_sae": "_long_win_u28", "gru_sae": "_long_win"}

    def row(model, seed, k, rate, state, suffix=None):
        tag = f"lorenz_{model}_l3_s{seed}{suffix or sfx[model]}{b.model_seed_suffix(seed, k)}"
        return {"tag": tag, "baseline": model, "seed": seed, "overrides": {"latent_dim": 3},
                "truth": {"rate R2": rate, "state R2": state}}

    rows = [row("node_sae", 0, 2, 0.70, 0.90), row("node_sae", 0, 0, 0.90, 0.90), row("node_sae", 0, 1, 0.85, 0.80),
            row("node_sae", 0, 4, 0.1, 0.1, "_long_win"),  # another schedule: not in the table
            row("gru_sae", 0, 0, 0.40, 0.30),  # one model seed only: no row
            row("node_sae", 1, 1, 0.9, 0.9)]  # data seed 1's own run, alone: no row
    b.model_seeds_table({r["tag"]: r for r in rows}, "lorenz", [0, 1], sfx, "long")
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    table = [c for c in lines if c and c[0] in ("node_sae", "gru_sae")]
    assert table == [["node_sae", "0", "0", "1", "2", "0.900", "0.850", "0.700", "0.817", "0.836",
                      "0.900", "0.800", "0.900", "0.867", "0.895", "1", "of", "3"]]  # only m0 meets both


def test_model_seeds_add_latent_3_sae_jobs_after_the_claim_runs():
    import argparse

    b = bench()
    args = argparse.Namespace(dataset="lorenz", epochs=0, window_loss=True, profile="long", node_set={"unmask_every": 28},
                              label="u28", data_seeds=[0], others_seeds=[], others=[], sizes=[], size_seeds=[],
                              model_seeds=[0, 2], lfads_epochs=30, ndt_epochs=60)
    got = [(j["tag"], j["model_seed"], j["overrides"].get("unmask_every")) for j in b.jobs(args)]
    assert got == [("lorenz_node_sae_l3_s0_long_win_u28", 0, 28), ("lorenz_gru_sae_l3_s0_long_win", 0, None),
                   ("lorenz_node_sae_l3_s0_long_win_u28_m2", 2, 28), ("lorenz_gru_sae_l3_s0_long_win_m2", 2, None)]


def test_schedule_minus_pairs_each_run_with_the_other_schedules_run_of_the_same_data_and_model_seed():
    b = bench()

    def row(seed, k, label, rate, state, shift=0.0):
        tag = f"lorenz_node_sae_l3_s{seed}_long_win_{label}{b.model_seed_suffix(seed, k)}"
        draws = [0.80 + 0.001 * i + shift for i in range(200)]
        return {"tag": tag, "baseline": "node_sae", "seed": seed, "overrides": {"latent_dim": 3},
                "truth": {"rate R2": rate, "state R2": state}, "rate_boot": draws, "state_boot": draws}

    rows = [row(0, 3, "u28c20", 0.82, 0.91, 0.04), row(0, 3, "u28", 0.78, 0.87),
            row(0, 0, "u28c20", 0.85, 0.91), row(0, 0, "u28", 0.86, 0.92, 0.01),
            row(1, 1, "u28c20", 0.80, 0.80),  # no u28 run of data seed 1: no row
            row(0, 1, "u28", 0.86, 0.91)]  # no u28c20 run of model seed 1: no row
    got = b.schedule_minus({r["tag"]: r for r in rows}, "lorenz", "_long_win", "u28c20", "u28")
    assert got == [[0, 0, "-0.010 [-0.010, -0.010]", "-0.010 [-0.010, -0.010]"],
                   [0, 3, "+0.040 [+0.040, +0.040]", "+0.040 [+0.040, +0.040]"],
                   ["mean", "2 runs, 1 data seed", "+0.015 [+0.015, +0.015]", "+0.015 [+0.015, +0.015]"]]


def test_schedule_minus_means_model_seeds_in_step_then_data_seeds_stratified():
    import numpy as np

    from nlb_suite.report.paired import Difference

    b = bench()
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.8, 0.02, 500), rng.normal(0.8, 0.02, 500)

    def row(seed, k, label, rate, draws):
        tag = f"lorenz_node_sae_l3_s{seed}_none_win{'_' + label if label else ''}{b.model_seed_suffix(seed, k)}"
        return {"tag": tag, "baseline": "node_sae", "seed": seed, "overrides": {"latent_dim": 3},
                "truth": {"rate R2": rate, "state R2": rate}, "rate_boot": list(draws), "state_boot": list(draws)}

    flat = np.full(500, 0.8)
    rows = [row(0, 0, "cos", 0.83, x), row(0, 0, "", 0.80, flat),  # data seed 0: two model seeds whose
            row(0, 2, "cos", 0.81, 1.6 + 0.02 - x), row(0, 2, "", 0.80, flat),  # draws cancel when averaged in step
            row(1, 1, "cos", 0.84, y), row(1, 1, "", 0.80, flat)]
    got = b.schedule_minus({r["tag"]: r for r in rows}, "lorenz", "_none_win", "cos", "plain")
    assert [r[:2] for r in got] == [[0, 0], [0, 2], [1, 1], ["mean", "3 runs, 2 data seeds"]]
    seed0 = (0.02, np.full(500, 0.81), flat)  # in step: (x + 1.62 - x) / 2 = 0.81, the interval of seed 0 alone is 0
    want = Difference.mean_over_sets([seed0, (0.04, y, flat)]).text(digits=3)
    assert got[-1][2:] == [want, want]
    assert want.startswith("+0.030 [")


def test_valid_minus_sets_each_candidate_run_beside_its_twin_and_means_the_pairs():
    b = bench()
    excess = {"lorenz_node_sae_l3_s0_long_win_u28c20_m3": (0.094, 0.099),
              "lorenz_node_sae_l3_s0_long_win_u28_m3": (0.115, 0.206),
              "lorenz_node_sae_l3_s0_long_win_u28c20": (0.080, 0.090),
              "lorenz_node_sae_l3_s0_long_win_u28": (0.078, 0.096),
              "lorenz_node_sae_l3_s1_long_win_u28c20": (0.070, 0.070),  # no u28 twin: no row
              "lorenz_gru_sae_l3_s0_long_win": (0.459, 0.466)}
    got = b.valid_minus(excess, "u28c20", "u28")
    assert got == [[0, 0, "0.080", "0.078", "+0.002", "0.090", "0.096"],
                   [0, 3, "0.094", "0.115", "-0.021", "0.099", "0.206"],
                   ["mean", "2 runs", "0.087", "0.097", "-0.010", "0.095", "0.151"]]
    back = b.valid_minus(excess, "u28", "u28c20")  # `_u28` does not take the `_u28c20` runs for its own
    assert [r[:5] for r in back] == [[0, 0, "0.078", "0.080", "-0.002"], [0, 3, "0.115", "0.094", "+0.021"],
                                     ["mean", "2 runs", "0.097", "0.087", "+0.010"]]
    assert b.twin_tag("lorenz_node_sae_l3_s0_long_win_u28c20_m3", 0, "c20", "x") is None  # whole labels only


def test_versus_plain_pairs_a_labelled_schedule_with_the_profiles_unlabelled_run():
    b = bench()
    assert b.twin_tag("lorenz_node_sae_l3_s1_none_win_c20", 1, "c20", b.PLAIN) == "lorenz_node_sae_l3_s1_none_win"
    assert b.twin_tag("lorenz_node_sae_l3_s0_none_win_cos_m3", 0, "cos", b.PLAIN) == "lorenz_node_sae_l3_s0_none_win_m3"
    assert b.twin_tag("lorenz_node_sae_l3_s1_none_win", 1, "c20", b.PLAIN) is None  # the plain run has no twin
    excess = {"lorenz_node_sae_l3_s1_none_win_c20": (0.10, 0.12), "lorenz_node_sae_l3_s1_none_win": (0.19, 0.25)}
    assert b.valid_minus(excess, "c20", b.PLAIN) == [[1, 1, "0.100", "0.190", "-0.090", "0.120", "0.250"],
                                                     ["mean", "1 run", "0.100", "0.190", "-0.090", "0.120", "0.250"]]
    excess.update({"lorenz_node_sae_l3_s1_long_win_c20": (0.05, 0.06), "lorenz_node_sae_l3_s1_long_win": (0.07, 0.08)})
    assert [r[:5] for r in b.valid_minus(excess, "c20", b.PLAIN)] == [  # two profiles: a mean row each, never pooled
        [1, 1, "0.050", "0.070", "-0.020"], ["mean long win", "1 run", "0.050", "0.070", "-0.020"],
        [1, 1, "0.100", "0.190", "-0.090"], ["mean none win", "1 run", "0.100", "0.190", "-0.090"]]
