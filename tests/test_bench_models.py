"""benchmarks/bench_models.py: model-seed names and when `--reuse` may keep an earlier run folder."""

import dataclasses
import re
import sys

import pytest
import yaml

from support.bench_scripts import load_bench


def bench():
    return load_bench("bench_models")


def test_a_seed_suffix_names_a_further_model_seed():
    b = bench()
    assert b.model_of("ndt") == ("ndt", 0)
    assert b.model_of("ndt_seed2") == ("ndt", 2)
    assert b.model_of("stndt_seed11") == ("stndt", 11)
    assert b.model_of("true_psth") == ("true_psth", 0)


def test_a_variant_names_a_baseline_with_other_config_values():
    b = bench()
    assert b.parse_variants(["gnocchi_bw1=gnocchi:mmd_bandwidth=1,ddim_steps=20"]) == {
        "gnocchi_bw1": ("gnocchi", {"mmd_bandwidth": 1, "ddim_steps": 20})}
    assert b.parse_variants([]) == {}
    with pytest.raises(SystemExit, match="is not LABEL=BASELINE:KEY=VALUE"):
        b.parse_variants(["gnocchi:mmd_bandwidth=1"])


def test_ensemble_sizes_read_as_a_range():
    b = bench()
    assert b.parse_sizes("3-5") == (3, 5) and b.parse_sizes("") == (None, None)
    with pytest.raises(SystemExit, match="--ensemble-sizes: '3' is not MIN-MAX"):
        b.parse_sizes("3")


def test_ensembles_are_labelled_and_an_unlabelled_one_is_named_ensemble():
    b = bench()
    assert b.parse_ensembles(["lfads,ndt", "ndt_x3=ndt,ndt_seed1,ndt_seed2"]) == {
        "ensemble": ("lfads", "ndt"), "ndt_x3": ("ndt", "ndt_seed1", "ndt_seed2")}
    assert b.parse_ensembles([]) == {}
    with pytest.raises(SystemExit, match="--ensemble: 'a=ndt' is not .*label not used before"):
        b.parse_ensembles(["a=lfads", "a=ndt"])
    with pytest.raises(SystemExit, match="--ensemble: 'x=' is not"):
        b.parse_ensembles(["x="])


def test_ensembles_are_checked_before_any_fit():
    b = bench()
    names = ["smoothing", "ndt", "ndt_seed1", "ndt_seed2", "ndt_w96"]
    variants = {"ndt_w96": ("ndt", {"model_dim": 96})}
    ok = {"ndt_x3": ("ndt", "ndt_seed1", "ndt_seed2"), "ensemble": ("ndt", "ndt_w96")}
    where = dict(dataset="mc_maze", device="cpu")  # NDT's mc_maze cpu profile does not refit
    b.check_ensembles(ok, names, (None, None), variants, **where)
    b.check_ensembles({"ndt_x3": ok["ndt_x3"]}, names, (3, 3), variants, **where)
    cases = [  # (ensembles, sizes, the message's start)
        ({"ndt_x3": ("ndt", "lfads")}, (None, None), "--ensemble ndt_x3: 'lfads' is not in --baselines"),
        ({"ndt_x3": ("ndt", "ndt")}, (None, None), "--ensemble ndt_x3: needs at least 2 different runs"),
        ({"ndt_x3": ok["ndt_x3"]}, (0, 0), "--ensemble-sizes 0-0: ndt_x3 averages 3 runs"),
        ({"ndt_x3": ok["ndt_x3"]}, (3, 2), "--ensemble-sizes 3-2"),
        ({"ndt_x3": ok["ndt_x3"]}, (2, 4), "--ensemble-sizes 2-4"),
        ({"ndt-x3": ok["ndt_x3"]}, (None, None), "--ensemble: label 'ndt-x3' must be letters"),
        ({"lfads": ok["ndt_x3"]}, (None, None), "--ensemble: label 'lfads' must be"),  # a baseline not fitted here
        ({"ndt_w96_seed4": ok["ndt_x3"]}, (None, None), "--ensemble: label 'ndt_w96_seed4'"),  # a variant's seed
        ({"smoothing": ok["ndt_x3"]}, (None, None), "--ensemble: label 'smoothing'"),
    ]
    for ensembles, sizes, message in cases:
        with pytest.raises(SystemExit, match=re.escape(message)):
            b.check_ensembles(ensembles, names, sizes, variants, **where)


def test_an_ensemble_of_refit_runs_needs_a_given_size():
    """NDT's mc_maze_small cpu profile refits on all train trials: no validation trial is left to size on."""
    b = bench()
    names = ["ndt", "ndt_seed1", "ndt_p", "ndt_p_seed1"]
    variants = {"ndt_p": ("ndt", {"refit": False})}
    where = dict(dataset="mc_maze_small", device="cpu")
    with pytest.raises(SystemExit) as err:
        b.check_ensembles({"x2": ("ndt_p", "ndt_seed1")}, names, (None, None), variants, **where)
    assert str(err.value) == ("--ensemble x2: ndt_seed1 refits on all train trials (refit: true), so no validation "
                              "trial is left to choose the size on: give --ensemble-sizes K-K")
    b.check_ensembles({"x2": ("ndt", "ndt_seed1")}, names, (2, 2), variants, **where)
    b.check_ensembles({"x2": ("ndt_p", "ndt_p_seed1")}, names, (1, 2), variants, **where)


def test_reuse_needs_the_same_data_seed_and_config_but_tolerates_a_field_added_at_its_default(synthetic, tmp_path,
                                                                                            monkeypatch):
    from nlb_suite.runs import RunSpec, data_checksums, execute

    b = bench()
    data = synthetic("mc_maze_small")
    out = tmp_path / "smoothing"
    spec = RunSpec("smoothing", "mc_maze_small", data=data, out=out, seed=0, device="cpu", ci=0)
    execute(spec, progress=False)
    sha = data_checksums(data)
    assert b.reusable(out, spec, sha).info["seed"] == 0  # the record itself, read once
    seed1 = RunSpec("smoothing", "mc_maze_small", data=data, out=out, seed=1, device="cpu", ci=0)
    assert b.reuse_check(out, seed1, sha) == (None, "it ran at model seed 0")
    other = data_checksums(synthetic("mc_maze_small", seed=1))
    assert b.reuse_check(out, spec, other) == (None, "it ran on other data (NWB checksums)")
    assert b.reuse_check(tmp_path / "nothing", spec, sha) == (None, "no run folder there")

    config_file = out / "config.yaml"
    record = yaml.safe_load(config_file.read_text())
    del record["config"]["tol"]  # as if `tol` (at its default) had been added after the run
    config_file.write_text(yaml.safe_dump(record))
    assert b.reusable(out, spec, sha) is not None
    del record["config"]["alpha"]  # mc_maze_small's file sets alpha 0.1, not the default: a real change
    config_file.write_text(yaml.safe_dump(record))
    assert b.reuse_check(out, spec, sha) == (None, "its config differs: alpha (unset) -> 0.1")
    record["config"]["alpha"] = 0.1
    record["config"]["max_iter"] = 5
    config_file.write_text(yaml.safe_dump(record))
    assert b.reuse_check(out, spec, sha)[1].startswith("its config differs: max_iter 5 -> ")
    assert b.reusable(tmp_path / "nothing", spec, sha) is None

    # a field whose default changed the behaviour when it came (BEFORE_FIELD): an older run had the other one
    from baselines.smoothing import SmoothingConfig

    del record["config"]["max_iter"]
    config_file.write_text(yaml.safe_dump(record))
    assert b.reusable(out, spec, sha) is not None
    monkeypatch.setattr(SmoothingConfig, "BEFORE_FIELD", {"tol": 1e-3}, raising=False)
    assert b.reusable(out, spec, sha) is None
    older = RunSpec("smoothing", "mc_maze_small", data=data, out=out, seed=0, device="cpu", ci=0,
                    overrides={"tol": 1e-3})
    assert b.reusable(out, older, sha) is not None  # asking for the old behaviour finds the old run

    variant = RunSpec("smoothing", "mc_maze_small", data=data, out=tmp_path / "variant", seed=0, device="cpu",
                      ci=0, overrides={"alpha": 0.5})
    execute(variant, progress=False)
    assert b.reusable(variant.out, variant, sha) is not None  # the variant's own values match its run
    assert b.reusable(variant.out, spec, sha) is None  # the default is another config


def test_a_pair_cell_is_one_seeds_difference_or_the_mean_over_seeds():
    import numpy as np

    from nlb_suite.report.paired import Difference

    b = bench()
    d = np.linspace(-0.01, 0.03, 401)
    res = {"metrics": {"x": {"co-bps": 0.21, "vel R2": 0.5}, "y": {"co-bps": 0.20}},
           "boot": {"x": {"co-bps": d + 0.2, "vel R2": d}, "y": {"co-bps": np.full(401, 0.2)}}}
    part = b.paired_parts(res, "x", "y", "co-bps")
    assert part[0] == pytest.approx(0.01) and b.paired_parts(res, "x", "y", "vel R2") is None
    assert b.cell(part) == Difference.paired(part[0], d + 0.2, np.full(401, 0.2)).text()
    assert b.cell(part, None) == "-"  # a seed without the metric: no mean


def test_pair_rows_give_each_seed_then_their_mean_both_ways():
    import numpy as np

    b = bench()
    n = 400

    def seed(diff):  # x - y is `diff` on every resample of co-bps; no other metric
        base = np.random.default_rng(int(diff * 1000)).normal(0.2, 0.01, n)
        return {"metrics": {"x": {"co-bps": 0.2 + diff}, "y": {"co-bps": 0.2}},
                "boot": {"x": {"co-bps": base + diff}, "y": {"co-bps": base}}}

    rows = b.pair_rows({0: seed(0.01), 3: seed(0.03)}, "x", "y")
    assert rows == [["x - y", "0", "+0.0100 [+0.0100, +0.0100]", "-", "-", "-"],
                    ["x - y", "3", "+0.0300 [+0.0300, +0.0300]", "-", "-", "-"],
                    ["x - y", "mean", "+0.0200 [+0.0200, +0.0200]", "-", "-", "-"],
                    # the seeds as units: mean 0.02, SD 0.0141, t(1) 12.706 x 0.01: what two data seeds' spread allows
                    ["x - y", "seeds t", "+0.0200 [-0.1071, +0.1471] tie", "-", "-", "-"]]
    assert b.pair_rows({0: seed(0.01)}, "x", "y") == rows[:1]  # one seed: no mean row


def test_arms_are_labelled_runs_of_one_configuration_checked_before_any_fit():
    b = bench()
    assert b.parse_arms(["v0=gnocchi_v0,gnocchi_v0_seed1"]) == {"v0": ("gnocchi_v0", "gnocchi_v0_seed1")}
    with pytest.raises(SystemExit, match="--arm: 'gnocchi,gnocchi_seed1' is not LABEL=RUN,"):
        b.parse_arms(["gnocchi,gnocchi_seed1"])
    names = ["smoothing", "gnocchi", "gnocchi_seed1", "gnocchi_seed2", "d300", "d300_seed1", "lfads"]
    variants = {"d300": ("gnocchi", {"max_epochs": 300})}
    b.check_arms({"now": ("gnocchi", "gnocchi_seed1", "gnocchi_seed2"), "before": ("d300", "d300_seed1")}, names,
                 variants, {})
    cases = [
        ({"now": ("gnocchi", "gnocchi_seed3")}, {}, "--arm now: 'gnocchi_seed3' is not in --baselines"),
        ({"now": ("gnocchi",)}, {}, "--arm now: needs at least 2 runs at different model seeds"),
        ({"now": ("gnocchi", "gnocchi")}, {}, "--arm now: needs at least 2 runs at different model seeds"),
        ({"mix": ("gnocchi", "d300_seed1")}, {}, "--arm mix: its runs must be one configuration"),
        ({"mix": ("gnocchi_seed1", "lfads")}, {}, "--arm mix: its runs must be one configuration"),
        ({"d300": ("gnocchi", "gnocchi_seed1")}, {}, "--arm: label 'd300' must be"),
        ({"gpfa_seed2": ("gnocchi", "gnocchi_seed1")}, {}, "--arm: label 'gpfa_seed2' must be"),
        ({"x3": ("gnocchi", "gnocchi_seed1")}, {"x3": ("lfads", "gnocchi")}, "--arm: label 'x3' must be"),
        ({"a-b": ("gnocchi", "gnocchi_seed1")}, {}, "--arm: label 'a-b' must be"),
    ]
    for arms, ensembles, message in cases:
        with pytest.raises(SystemExit, match=re.escape(message)):
            b.check_arms(arms, names, variants, ensembles)


def _seed_results(values: dict[str, float], n: int = 300) -> dict:
    """One data seed's results: each run's co-bps on all trials and on shared resamples (its value plus one
    trial noise), fit seconds, and internal validation on trials 1-3 (run 'z' on others)."""
    import numpy as np

    noise = np.random.default_rng(0).normal(0, 0.002, n)
    return {"metrics": {r: {"co-bps": v, "vel R2": 0.5} for r, v in values.items()},
            "fit_s": {r: 10.0 * (i + 1) for i, r in enumerate(values)},
            "boot": {r: {"co-bps": v + noise} for r, v in values.items()},
            "validation": {r: {"co-bps": v - 0.01, "trial_ids": [9] if r == "z" else [1, 2, 3]}
                           for r, v in values.items()}}


def test_an_arm_is_the_mean_of_its_fits_and_a_pair_with_it_adds_their_spread():
    import numpy as np

    from nlb_suite.report.paired import ArmPart, Difference

    b = bench()
    res = _seed_results({"g": 0.300, "g_seed1": 0.306, "g_seed2": 0.303, "s": 0.2})
    res["metrics"]["g"]["fp-bps"] = 0.1  # a metric one run lacks: no arm value for it
    res["boot"]["g"]["fp-bps"] = np.zeros(300)
    b.add_arms(res, {"arm": ("g", "g_seed1", "g_seed2")}, {"s": ("smoothing", {})})
    assert res["metrics"]["arm"] == pytest.approx({"co-bps": 0.303, "vel R2": 0.5})
    assert res["fits"]["arm"]["co-bps"] == pytest.approx((0.300, 0.306, 0.303))
    assert res["fit_s"]["arm"] == pytest.approx(60.0)  # every fit it needed, as an ensemble's
    fits = [res["boot"][r]["co-bps"] for r in ("g", "g_seed1", "g_seed2")]
    np.testing.assert_allclose(res["boot"]["arm"]["co-bps"], np.mean(fits, axis=0))
    assert set(res["boot"]["arm"]) == {"co-bps"}
    part = b.paired_parts(res, "arm", "s", "co-bps")
    assert isinstance(part, ArmPart) and part.fits_b == (0.2,) and part.value == pytest.approx(0.103)
    assert b.cell(part) == Difference.between_arms([part]).text()
    assert b.paired_parts(res, "g", "s", "co-bps")[0] == pytest.approx(0.1)  # no arm: the paired parts as before
    res["exact"]["s"] = False  # one fit of a trained model beside an arm: not judged
    assert b.paired_parts(res, "arm", "s", "co-bps") is None and b.cell(None) == "-"

    res = _seed_results({"g": 0.300, "g_seed1": 0.306, "g_seed2": 0.303, "h": 0.305, "h_seed1": 0.299, "h_seed2": 0.304})
    b.add_arms(res, {"g3": ("g", "g_seed1", "g_seed2"), "h3": ("h", "h_seed1", "h_seed2")})
    single = b.pair_rows({0: res}, "g_seed1", "h_seed1")[0][2]
    arms = b.pair_rows({0: res, 1: res}, "g3", "h3")
    assert single == "+0.0070 [+0.0070, +0.0070]"  # one fit each: the trials alone, which cancel here
    assert arms[0][2].startswith("+0.0003 [-") and arms[0][2].endswith(" tie")  # the fits' spread reaches it
    assert arms[2][:2] == ["g3 - h3", "mean"] and arms[2][2].endswith(" tie")


def test_an_arms_spread_is_the_sd_of_its_fits_and_of_their_shared_validation():
    b = bench()
    res = _seed_results({"g": 0.300, "g_seed1": 0.306, "g_seed2": 0.303, "z": 0.31})
    res["metrics"]["g"].pop("vel R2")
    rows = b.spread_rows({4: res}, {"arm": ("g", "g_seed1", "g_seed2"), "other": ("g_seed1", "z")})
    assert b.run_validation({"internal_validation": None, "selection_fit": {"co-bps": 0.2}}) == {"co-bps": 0.2}
    assert b.run_validation({"internal_validation": {"co-bps": 0.3}}) == {"co-bps": 0.3}
    assert b.run_validation({}) is None
    assert rows == [["4", "arm", "3", "0.0030 (0.3000..0.3060)", "-", "-", "-", "0.0030 (0.2900..0.2960)"],
                    ["4", "other", "2", "0.0028 (0.3060..0.3100)", "0.0000 (0.5000..0.5000)", "-", "-", "-"]]


def test_a_seed_run_records_each_runs_internal_validation_for_the_arms(synthetic, tmp_path, monkeypatch):
    """run_seed keeps each run's internal validation from its run.json: LFADS at two model seeds with valid_seed 0
    validates on one set of trials (an arm's validation spread is then on one set); smoothing holds none back."""
    b = bench()  # puts benchmarks/ on the path first
    import bench_realism

    data = synthetic("mc_maze_small")
    monkeypatch.setattr(bench_realism, "stand_in", lambda *args, **kwargs: data)
    tiny = {"ic_enc_dim": 4, "ci_enc_dim": 4, "con_dim": 4, "co_dim": 2, "ic_dim": 4, "gen_dim": 6, "fac_dim": 3,
            "max_epochs": 2, "patience": 2, "valid_seed": 0}
    res = b.run_seed("mc_maze_small", 0, 0, ["smoothing", "tiny", "tiny_seed1"], tmp_path, "cpu", resamples=20,
                     variants={"tiny": ("lfads", tiny)})
    valid = res["validation"]
    assert valid["smoothing"] is None
    assert valid["tiny"]["trial_ids"] == valid["tiny_seed1"]["trial_ids"] and len(valid["tiny"]["trial_ids"]) > 0
    assert valid["tiny"]["co-bps"] != valid["tiny_seed1"]["co-bps"]
    b.add_arms(res, {"arm": ("tiny", "tiny_seed1")})
    row = b.spread_rows({0: res}, {"arm": ("tiny", "tiny_seed1")})[0]
    assert row[:3] == ["0", "arm", "2"] and row[-1] != "-"


def test_pairs_with_an_arm_compare_internal_validation_over_the_fits():
    from nlb_suite.report.paired import Difference

    b = bench()
    res = _seed_results({"g": 0.300, "g_seed1": 0.306, "g_seed2": 0.303, "h": 0.305, "h_seed1": 0.299, "z": 0.31})
    arms = {"g3": ("g", "g_seed1", "g_seed2"), "h2": ("h", "h_seed1")}
    rows = b.validation_pair_rows({5: res}, arms, [("g3", "h2"), ("g3", "z"), ("g", "h")])
    welch = Difference.welch([0.290, 0.296, 0.293], [0.295, 0.289]).text()
    assert rows == [["g3 - h2", "5", welch], ["g3 - z", "5", "-"]]  # z validated on other trials; no arm: no row


def test_arms_at_the_same_model_seeds_pair_by_seed():
    b = bench()
    res = _seed_results({"g": 0.300, "g_seed1": 0.306, "g_seed2": 0.303, "h": 0.302, "h_seed1": 0.3075,
                         "h_seed2": 0.305, "k_seed3": 0.3, "k_seed4": 0.3, "k_seed5": 0.3, "n": 0.3, "n_seed1": 0.3,
                         "n_seed2": 0.3})
    arms = {"g3": ("g", "g_seed1", "g_seed2"), "h3": ("h", "h_seed1", "h_seed2"),
            "k3": ("k_seed3", "k_seed4", "k_seed5"), "n3": ("n", "n_seed1", "n_seed2")}
    variants = {"g": ("gnocchi", {"x": 1}), "h": ("gnocchi", {"x": 2}), "k": ("gnocchi", {"x": 3})}
    b.add_arms(res, arms, variants)
    assert b.arms_pair(res, "g3", "h3") and not b.arms_pair(res, "g3", "k3") and not b.arms_pair(res, "g3", "g")
    assert not b.arms_pair(res, "g3", "n3")  # another baseline at the same seeds shares no draw: not paired
    part = b.paired_parts(res, "h3", "g3", "co-bps")
    assert part.paired and not b.paired_parts(res, "h3", "k3", "co-bps").paired
    assert not b.cell(part).endswith("tie")  # +0.0018 at every seed, give or take 0.0003: paired, resolved
    unpaired = b.cell(dataclasses.replace(part, paired=False))
    assert unpaired.endswith("tie")
    rows = b.validation_pair_rows({0: res}, arms, [("h3", "g3")])
    assert not rows[0][2].endswith("tie")


def test_reuse_only_refuses_in_one_line_before_any_fit_and_prints_tables_from_reused_runs(synthetic, tmp_path,
                                                                                        monkeypatch, capsys):
    b = bench()
    import bench_realism

    data = synthetic("mc_maze_small")
    monkeypatch.setattr(bench_realism, "stand_in", lambda *args, **kwargs: data)
    monkeypatch.setattr(bench_realism, "stand_in_root", lambda *args, **kwargs: tmp_path / "no_stand_in")
    argv = ["bench_models.py", "--data-seeds", "0", "--baselines", "smoothing,oracle", "--work", str(tmp_path),
            "--resamples", "20", "--pairs", "smoothing-oracle"]
    monkeypatch.setattr(sys, "argv", [*argv, "--reuse-only"])
    with pytest.raises(SystemExit) as stop:  # no stand-in of this generator: refused without generating one
        b.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (f"bench_models.py: --reuse-only: data seed 0: no stand-in of the "
                                               f"current generator at {tmp_path / 'no_stand_in'}, so no run on it; "
                                               "nothing was fitted")
    monkeypatch.setattr(bench_realism, "stand_in_root", lambda *args, **kwargs: data.parent)  # holds ground_truth.h5
    with pytest.raises(SystemExit) as stop:
        b.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch(r"bench_models\.py: --reuse-only: data seed 0 smoothing: \S+smoothing "
                                          r"cannot be reused \(no run folder there\); nothing was fitted", err[0])
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("run.json"))
    monkeypatch.setattr(sys, "argv", argv)  # fit both
    b.main()
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", [*argv, "--reuse-only"])  # the tables again, fitting nothing
    b.main()
    out, err = capsys.readouterr()
    assert "smoothing - oracle" in out and err.count("reused") == 2 and " s\n" not in err
    config_file = next((tmp_path / "models").glob("*/smoothing/config.yaml"))
    record = yaml.safe_load(config_file.read_text())
    record["config"]["alpha"] = 0.5  # as if the profile had changed since the run
    config_file.write_text(yaml.safe_dump(record))
    monkeypatch.setattr(sys, "argv", [*argv, "--reuse"])
    b.main()
    err = capsys.readouterr().err
    assert re.search(r"data seed 0 smoothing: fitting again, which replaces \S+ \(its config differs: alpha 0\.5 -> "
                     r"0\.1\)", err)


def test_tp_corr_is_a_column_only_where_a_run_scored_it():
    """dmfc_rsg's runs score tp corr: its tables get the column (pairs and arms too); other datasets do not."""
    import numpy as np

    b = bench()
    maze = _seed_results({"g": 0.30, "s": 0.20})
    assert b.scored_metrics({0: maze}) == b.METRICS
    dmfc = _seed_results({"g": 0.30, "s": 0.20})
    dmfc["metrics"]["g"]["tp corr"], dmfc["metrics"]["s"]["tp corr"] = -0.5, -0.2
    dmfc["boot"]["g"]["tp corr"] = np.full(300, -0.5)
    dmfc["boot"]["s"]["tp corr"] = np.linspace(-0.3, -0.1, 300)
    metrics = b.scored_metrics({0: maze, 1: dmfc})
    assert metrics == (*b.METRICS, "tp corr")
    rows = b.pair_rows({1: dmfc}, "g", "s", metrics=metrics)
    assert len(rows[0]) == 2 + len(metrics) and rows[0][-1].startswith("-0.3000 [")
    assert b.pair_rows({0: maze}, "g", "s", metrics=metrics)[0][-1] == "-"  # a seed without it: no value
