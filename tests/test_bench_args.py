"""benchmarks/bench_args.py: every bench reads its seed list the same way and refuses a bad one in one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.bench_scripts import BENCHMARKS, fit_only_command, load_bench


@pytest.fixture(scope="module")
def bench_args():
    return load_bench("bench_args")


def test_seed_lists_are_distinct_integers_in_the_order_given(bench_args):
    assert bench_args.seed_list("2,0,1") == [2, 0, 1]
    assert bench_args.optional_seed_list("") == []
    assert bench_args.optional_seed_list("3") == [3]
    assert bench_args.seeds_text([2, 0, 1]) == "2,0,1"
    for parse in (bench_args.seed_list, bench_args.optional_seed_list):
        for bad, msg in (("0,0", r"each seed once \(got '0,0'\)"), ("0,x", "comma-separated integers like 0,1,2"),
                         ("0,1,", "comma-separated integers")):
            with pytest.raises(bench_args.argparse.ArgumentTypeError, match=msg):
                parse(bad)
    with pytest.raises(bench_args.argparse.ArgumentTypeError, match="comma-separated integers"):
        bench_args.seed_list("")
    assert bench_args.index_list("1,0") == [1, 0]
    with pytest.raises(bench_args.argparse.ArgumentTypeError, match=r"each index once \(got '1,1'\)"):
        bench_args.index_list("1,1")


@pytest.mark.parametrize("script, option", [
    ("bench_models", "--data-seeds"), ("bench_gnocchi", "--data-seeds"), ("bench_realism", "--seeds"),
    ("bench_sweep", "--data-seeds"), ("bench_node_sae", "--data-seeds"), ("bench_node_sae", "--model-seeds"),
    ("bench_node_sae", "--others-seeds"), ("bench_node_sae", "--size-seeds"),
    ("bench_lfads_cd", "--data-seeds"), ("bench_lfads_sbtt", "--data-seeds"), ("bench_gnocchi_solver", "--data-seeds"),
    ("bench_gnocchi_reach", "--model-seeds"),
])
def test_each_bench_refuses_a_repeated_seed_before_any_work(script, option, tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), option, "1,0,1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"{script}.py: error: argument {option}: each seed once (got '1,0,1')"
    assert done.stdout == ""


@pytest.mark.parametrize("args, line", [
    (["--baseline", "nosuch"], "fit_only.py: unknown baseline 'nosuch' (expected one of "),
    (["--baseline", "ndt", "--dataset", "nosuch"], "fit_only.py: unknown dataset 'nosuch' (expected one of "),
    (["--baseline", "ndt", "--device", "tpu"], "fit_only.py: --device: 'tpu' is not one of auto, cpu, cuda"),
    (["--baseline", "ndt", "--set", "lr"], "fit_only.py: error: "),
])
def test_fit_only_refuses_bad_input_in_one_line_before_any_work(args, line, tmp_path):
    out = tmp_path / "fit"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "fit_only.py"), *args, "--out", str(out),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].startswith(line)
    assert "Traceback" not in done.stderr and not out.exists() and not (tmp_path / "work").exists()


def test_bench_gnocchi_solver_refuses_a_pair_that_is_not_two_arms(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gnocchi_solver.py"), "--pair", "joint-joint"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == ("bench_gnocchi_solver.py: error: --pair: 'joint-joint' is not A-B, two "
                                            "different arms of per_sample, joint, per_sample_autograd")


def test_fit_only_records_what_it_fitted_so_the_folder_can_be_rebuilt(tmp_path):
    """fit.json holds the command's choices and the resolved config (the --set value in it), the stand-in's
    checksums (those of the files it fitted on) and the provenance a run records."""
    from nlb_suite.runs import data_checksums

    out, work = tmp_path / "fit", tmp_path / "work"
    done = subprocess.run(fit_only_command("smoothing", 2, out, work, {"alpha": 0.5}), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "fit.json").read_text())
    assert {k: record[k] for k in ("dataset", "trials", "data_seed", "baseline", "seed", "device", "overrides")} == {
        "dataset": "mc_maze_small", "trials": 40, "data_seed": 3, "baseline": "smoothing", "seed": 2, "device": "cpu",
        "overrides": {"alpha": 0.5}}
    assert record["config"]["alpha"] == 0.5 and record["config"]["kern_sd_ms"] == 60.0  # the YAML's value
    assert record["config_sources"][-1] == "--set alpha=0.5"
    data = Path(record["data_dir"])
    assert data.is_relative_to(work) and record["data_sha256"] == data_checksums(data)
    assert len(record["data_sha256"]) == 2 and record["n_train_trials"] == 30 and record["fit_s"] > 0
    assert {"torch", "numpy", "nlb_suite"} <= set(record["versions"]) and record["machine"]
    # the machine as the fit ran on it: BLAS held to the count every run holds, not the machine's core count
    assert record["machine"].get("openblas_threads", "1") == "1"
    assert record["validation_trial_ids"] is None  # smoothing holds no trials back
    from nlb_suite.baseline_api import build_config, get_baseline, resolve_config

    cls = get_baseline("smoothing")
    assert build_config(cls, record["config"], source="fit.json") == resolve_config(
        cls, "mc_maze_small", 5, {"alpha": 0.5}, None, "cpu")[0]  # the record rebuilds the config it fitted


def test_bench_gnocchi_inference_refuses_a_folder_that_is_not_a_fitted_gnocchi(tmp_path):
    (tmp_path / "smooth").mkdir()
    (tmp_path / "smooth" / "fit.json").write_text(json.dumps({"baseline": "smoothing"}))
    for folder, line in ((tmp_path, f"{tmp_path}: neither fit.json (fit_only.py) nor config.yaml and run.json (a run): "
                                    "expected a fitted GNOCCHI folder"),
                         (tmp_path / "smooth", f"{tmp_path / 'smooth'}: baseline 'smoothing' (expected a fitted "
                                               "gnocchi with gnocchi_best.pt)")):
        done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gnocchi_inference.py"), str(folder)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1] == f"bench_gnocchi_inference.py: {line}"


@pytest.mark.parametrize("variants, line", [
    (["default", "latent_dim=abc"], "bench_gnocchi_reach.py: --variants 'latent_dim=abc': latent_dim: 'abc' is not a "
                                    "valid int"),
    (["latent_dim=0"], "bench_gnocchi_reach.py: --variants 'latent_dim=0': baseline gnocchi: latent_dim must be > 0 "
                       "(got 0)"),
])
def test_bench_gnocchi_reach_refuses_a_bad_variant_before_any_work(variants, line, tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gnocchi_reach.py"), "--variants", *variants,
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == line and not (tmp_path / "work").exists()


def test_a_bench_usage_error_is_one_line_named_after_the_script_with_exit_code_2(tmp_path):
    """`SystemExit("message")` from a bench's checks goes through run_script: one line, the script's name, code 2."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_models.py"), "--baselines", "smoothing",
                           "--arm", "x=lfads", "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["bench_models.py: --arm x: 'lfads' is not in --baselines (an arm's "
                                                "runs are fitted or reused by this call)"]
    assert not (tmp_path / "work").exists()
