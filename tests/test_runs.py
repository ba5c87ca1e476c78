"""Runs: the run folder, scores equal to nlb_tools' own score, reproducibility, registry and config errors."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import stat
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from nlb_suite import runs
from nlb_suite.baseline_api import Baseline, Rates, get_baseline, resolve_config
from nlb_suite.blas_threads import DEFAULT_BLAS_THREADS, blas_threads
from nlb_suite.cli import main
from nlb_suite.datasets.pinned_blas import GENERIC_KERNELS, PINNED_KERNEL
from nlb_suite.errors import NLBInputError
from nlb_suite.h5io import load_h5
from nlb_suite.runs import (
    RunSpec,
    cpu_model,
    execute,
    machine_info,
    package_versions,
    provenance_changes,
    read_run,
)
from support.nlb_reference import assert_results_equal, nlb_tools_evaluate


@dataclass
class MeanConfig:
    scale: float = 1.0
    label: str = "x"


class MeanRateBaseline(Baseline):
    """A third-party style model: every unit's mean train rate (tests the plug-in path)."""

    name = "mean_rate"
    description = "per-unit mean training rate"
    Config = MeanConfig

    def fit(self, train):
        self.m_in = train.spikes_heldin.mean(axis=(0, 1)) * self.config.scale
        self.m_out = train.spikes_heldout.mean(axis=(0, 1)) * self.config.scale

    def predict(self, trials):
        n, t, _ = trials.spikes_heldin.shape
        f = trials.forward_bins.shape[1]
        tile = lambda m, k: np.broadcast_to(m, (n, k, len(m))).astype(np.float32)  # noqa: E731
        return Rates(tile(self.m_in, t), tile(self.m_out, t), tile(self.m_in, f), tile(self.m_out, f))


@pytest.fixture
def plugin(monkeypatch):
    """Register MeanRateBaseline through a (fake) installed entry point."""
    ep = metadata.EntryPoint("mean_rate", f"{__name__}:MeanRateBaseline", "nlb_suite.baselines")
    real = metadata.entry_points

    def entry_points(**kw):
        return [ep] if kw.get("group") == "nlb_suite.baselines" else real(**kw)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    return ep


def test_oracle_run_folder_and_scores_equal_nlb_tools(synthetic, tmp_path):
    folder = synthetic("mc_maze_small")
    result = execute(RunSpec("oracle", "mc_maze_small", data=folder, out=tmp_path / "run", ci=50))
    run = tmp_path / "run"
    for name in ("submission.h5", "metrics.json", "intervals.json", "config.yaml", "run.json", "log.txt",
                 "per_neuron_co_bps.json"):
        assert (run / name).exists(), name
    info = json.loads((run / "run.json").read_text())
    assert info["synthetic"] and len(info["data_sha256"]) == 2 and info["versions"]["numpy"]
    # the hardware, since a seed's fit is bit-identical only on one machine (RESULTS: refits across sessions)
    cpuinfo = Path("/proc/cpuinfo")
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
    assert info["machine"]["cpu"] == (models[0] if models else platform.processor() or platform.machine())
    assert info["machine"]["arch"] == platform.machine()
    # metrics.json is exactly nlb_tools' score of the submission against the (nlb_tools-identical) target
    from support.nlb_reference import nlb_tools_tensors

    target = nlb_tools_tensors(folder, "mc_maze_small", 5, "val")["target"]
    ours = json.loads((run / "metrics.json").read_text())
    assert_results_equal(ours, nlb_tools_evaluate(target, load_h5(run / "submission.h5")))
    assert result.metrics["co-bps"] > 0.1 and result.intervals["co-bps"][0] < result.metrics["co-bps"]
    assert not list(tmp_path.glob(".run.*"))  # no temp folder left behind


def test_provenance_changes_name_each_recorded_version_and_machine_field_that_differs_from_now(monkeypatch):
    with blas_threads(DEFAULT_BLAS_THREADS):  # the machine as execute records it: BLAS held, whatever the cores
        now = {"versions": package_versions(), "machine": machine_info("cpu")}
    assert provenance_changes(now, "cpu") == []
    torch_now = now["versions"]["torch"]
    then = {"versions": {**now["versions"], "torch": "2.1.0", "no-such-package-xyz": "0.0.1", "pandas": "0.1"},
            "machine": {**now["machine"], "cpu": "Other CPU 9000", "gpu": "NVIDIA H200"}}
    assert provenance_changes(then, "cpu") == [
        f"torch 2.1.0 (now {torch_now})", "no-such-package-xyz 0.0.1 (now not installed)",
        f"pandas 0.1 (now {metadata.version('pandas')})",  # installed though package_versions does not list it
        f"cpu Other CPU 9000 (now {cpu_model()})", "gpu NVIDIA H200 (now none)"]
    # runs from before run.json recorded the machine or versions
    assert provenance_changes({"versions": now["versions"]}, "cpu") == ["machine not recorded"]
    assert provenance_changes({"machine": None}, "cpu") == ["versions not recorded", "machine not recorded"]
    # a field only one side has is not a difference: torch's CPU level exists only once torch is imported
    recorded = {**now, "machine": {**now["machine"], "torch_cpu_capability": "AVX512"}}
    monkeypatch.setattr(runs, "machine_info", lambda device: {"cpu": cpu_model(), "arch": platform.machine()})
    assert provenance_changes(recorded, "cpu") == []
    monkeypatch.setattr(runs, "machine_info", lambda device: {**now["machine"], "torch_cpu_capability": "AVX2"})
    assert provenance_changes(recorded, "cpu") == ["torch_cpu_capability AVX512 (now AVX2)"]


def test_plugin_baseline_via_entry_point_is_reproducible(synthetic, tmp_path, plugin, capsys):
    assert get_baseline("mean_rate") is MeanRateBaseline
    assert main(["list", "baselines"]) == 0
    assert "per-unit mean training rate" in capsys.readouterr().out
    folder = str(synthetic("mc_maze_small"))
    for out in ("a", "b"):
        assert main(["run", "mean_rate", "--dataset", "mc_maze_small", "--data", folder, "--seed", "3",
                     "--out", str(tmp_path / out), "--set", "scale=1.0", "--ci", "0"]) == 0
    a, b = (load_h5(tmp_path / o / "submission.h5") for o in ("a", "b"))
    np.testing.assert_array_equal(a["mc_maze_small"]["eval_rates_heldout"], b["mc_maze_small"]["eval_rates_heldout"])
    assert read_run(tmp_path / "a").metrics == read_run(tmp_path / "b").metrics


def test_phase_test_run_has_submission_but_no_metrics(synthetic, tmp_path):
    folder = synthetic("mc_maze_small")
    execute(RunSpec("oracle", "mc_maze_small", bin_ms=20, phase="test", data=folder, out=tmp_path / "r"))
    assert not (tmp_path / "r" / "metrics.json").exists()
    sub = load_h5(tmp_path / "r" / "submission.h5")
    assert list(sub) == ["mc_maze_small_20"]
    assert sub["mc_maze_small_20"]["eval_rates_heldout"].shape[1:] == (35, 35)
    assert sub["mc_maze_small_20"]["eval_rates_heldout_forward"].shape[1] == 10


def test_compare_table(synthetic, tmp_path, plugin, capsys):
    folder = synthetic("mc_maze_small")
    execute(RunSpec("oracle", "mc_maze_small", data=folder, out=tmp_path / "oracle", ci=20))
    execute(RunSpec("mean_rate", "mc_maze_small", data=folder, out=tmp_path / "mean", ci=20))
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "mean"), str(tmp_path / "oracle")]) == 0
    out = capsys.readouterr().out
    assert out.index("oracle") < out.index("mean_rate")  # best co-bps first
    assert "100.0%" in out and "co-bps % of ceiling" in out


def _error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("extra, fragment", [
    (["--set", "nope=1"], "unknown key(s) nope"),
    (["--set", "scale=abc"], "scale: 'abc' is not a valid float"),
    (["--set", "scale"], "--set: 'scale' is not key=value"),
    (["--device", "tpu"], "--device: 'tpu' is not one of auto, cpu, cuda"),
    (["--bin", "10"], "unsupported bin width 10 ms"),
])
def test_bad_run_arguments(synthetic, tmp_path, plugin, capsys, extra, fragment):
    argv = ["run", "mean_rate", "--dataset", "mc_maze_small", "--data", str(synthetic("mc_maze_small")),
            "--out", str(tmp_path / "r")] + extra
    assert fragment in _error(capsys, argv)
    assert not (tmp_path / "r").exists()


def test_unknown_baseline_and_not_a_run(tmp_path, capsys):
    assert "unknown baseline 'lfadz'" in _error(capsys, ["run", "lfadz", "--dataset", "mc_maze", "--synthetic"])
    assert "not a run folder" in _error(capsys, ["compare", str(tmp_path)])


def test_oracle_refuses_real_data(synthetic, tmp_path, capsys):
    import shutil

    data = tmp_path / "real"
    shutil.copytree(synthetic("mc_maze_small"), data / "sub-Jenkins")  # no ground_truth.h5 anywhere
    err = _error(capsys, ["run", "oracle", "--dataset", "mc_maze_small", "--data", str(data / "sub-Jenkins"),
                          "--out", str(tmp_path / "r")])
    assert "real data have no true rates" in err and not (tmp_path / "r").exists()


def test_real_files_of_another_dataset_are_refused_before_the_fit(synthetic, tmp_path, capsys):
    import shutil

    data = tmp_path / "real" / "sub-Jenkins"
    shutil.copytree(synthetic("mc_maze_small"), data)  # no ground truth: taken for a real recording
    err = _error(capsys, ["run", "smoothing", "--dataset", "mc_maze", "--data", str(data), "--out", str(tmp_path / "r")])
    assert err == (f"nlb-eval run: error: {data}: 107 held-in + 35 held-out units, but the published mc_maze has 137 + 45 (expected the "
                   "NWB files of mc_maze; is --dataset right?)")
    assert not (tmp_path / "r").exists()
    assert main(["run", "smoothing", "--dataset", "mc_maze_small", "--data", str(data), "--out",
                 str(tmp_path / "ok"), "--ci", "0"]) == 0  # its own name: the published counts


def test_config_layers(plugin):
    cfg, sources = resolve_config(MeanRateBaseline, "mc_maze", 5, {"label": 12})
    assert cfg.label == "12" and sources[-1].startswith("--set")


def test_profiles_device_default_none_and_unknown(plugin, tmp_path, monkeypatch):
    """No --profile: the device's profile applies; `none` keeps the top level; a typo is a one-line error."""
    from nlb_suite import baseline_api
    from nlb_suite.errors import NLBInputError

    (tmp_path / "mc_maze.yaml").write_text("scale: 2.0\nprofiles:\n  cpu: {scale: 0.5}\n  fast: {label: quick}\n")
    monkeypatch.setattr(baseline_api, "config_dir", lambda cls: tmp_path)
    assert baseline_api.config_profiles(MeanRateBaseline, "mc_maze", 5) == ["cpu", "fast"]
    cfg, sources = resolve_config(MeanRateBaseline, "mc_maze", 5, device="cpu")
    assert cfg.scale == 0.5 and sources[-1] == "mc_maze.yaml:profiles.cpu (device cpu)"
    assert resolve_config(MeanRateBaseline, "mc_maze", 5, device="cuda")[0].scale == 2.0
    cfg, _ = resolve_config(MeanRateBaseline, "mc_maze", 5, profile="none", device="cpu")
    assert cfg.scale == 2.0
    cfg, _ = resolve_config(MeanRateBaseline, "mc_maze", 5, profile="fast", device="cpu")
    assert (cfg.scale, cfg.label) == (2.0, "quick")
    with pytest.raises(NLBInputError, match=r"mc_maze.yaml: no profile 'fsat' \(available: cpu, fast, none\)"):
        resolve_config(MeanRateBaseline, "mc_maze", 5, profile="fsat")
    with pytest.raises(NLBInputError, match="no config file for mc_rtt at 5 ms, so no profile 'fast'"):
        resolve_config(MeanRateBaseline, "mc_rtt", 5, profile="fast")


# ----- the run folder: only a previous run folder is replaced, with --overwrite; the umask's modes ---

def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_run_out_replaces_only_a_previous_run_folder(synthetic, tmp_path, plugin, capsys, monkeypatch):
    data = synthetic("mc_maze_small")
    argv = ["run", "mean_rate", "--dataset", "mc_maze_small", "--data", str(data), "--ci", "0"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    for out in (str(data), ".", "keep.txt"):  # the data, the working directory, a file: never touched
        before_data, before_cwd = _tree(data), _tree(tmp_path)
        err = _error(capsys, argv + ["--out", out, "--overwrite"])
        assert err.startswith(f"nlb-eval run: error: {out}: --out: "), err
        assert _tree(data) == before_data and _tree(tmp_path) == before_cwd
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert main(argv + ["--out", "empty"]) == 0 and read_run(tmp_path / "empty").info["baseline"] == "mean_rate"
    before = _tree(tmp_path / "empty")
    assert "empty: --out: holds a previous run folder (expected --overwrite" in _error(capsys, argv + ["--out", "empty"])
    assert _tree(tmp_path / "empty") == before
    assert main(argv + ["--out", "empty", "--overwrite", "--seed", "1"]) == 0
    assert read_run(tmp_path / "empty").info["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "keep.txt"]  # no temp folders left
    # run.json lists every file of the run; something added since (notes, a plot) makes it no longer only ours
    run = tmp_path / "empty"
    listed = json.loads((run / "run.json").read_text())["files"]
    assert listed == sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert "run.json" in listed and "submission.h5" in listed and "log.txt" in listed
    (run / "plots").mkdir()
    (run / "plots" / "fig.png").write_bytes(b"png")
    before = _tree(tmp_path)
    err = _error(capsys, argv + ["--out", "empty", "--overwrite"])
    assert "empty: --out: a run folder holding files its run did not write (plots/, plots/fig.png)" in err, err
    assert _tree(tmp_path) == before


def test_run_json_records_the_data_folder_absolute(synthetic, tmp_path, plugin, monkeypatch, capsys):
    """--data given relative to the working folder is recorded absolute, so `ensemble` and `report` find the
    data from any other folder."""
    data = synthetic("mc_maze_small")
    monkeypatch.chdir(data.parent)
    assert main(["run", "mean_rate", "--dataset", "mc_maze_small", "--data", data.name, "--ci", "0",
                 "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "run.json").read_text())["data_dir"] == str(data.absolute())
    # a run folder as --config: the config it ran with
    assert main(["run", "mean_rate", "--dataset", "mc_maze_small", "--data", data.name, "--ci", "0",
                 "--config", str(tmp_path / "r"), "--out", str(tmp_path / "r2")]) == 0
    first, again = read_run(tmp_path / "r").config, read_run(tmp_path / "r2").config
    assert again["config"] == first["config"] and str(tmp_path / "r") in again["config_sources"]
    assert "note" not in capsys.readouterr().err
    # ... made at another bin width (or on another dataset): used, said on stderr and in the run record
    assert main(["run", "mean_rate", "--dataset", "mc_maze_small", "--data", data.name, "--ci", "0", "--bin", "20",
                 "--config", str(tmp_path / "r"), "--out", str(tmp_path / "r20")]) == 0
    assert (f"note: --config {tmp_path / 'r'} is a run on mc_maze_small at 5 ms; its settings are used for "
            "mc_maze_small at 20 ms") in capsys.readouterr().err
    assert f"{tmp_path / 'r'} (a run on mc_maze_small at 5 ms)" in read_run(tmp_path / "r20").config["config_sources"]


def test_run_folder_follows_the_umask(synthetic, tmp_path, plugin):
    old = os.umask(0o027)
    try:
        execute(RunSpec("mean_rate", "mc_maze_small", data=synthetic("mc_maze_small"), out=tmp_path / "r", ci=0))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r").stat().st_mode) == 0o750
    for name in ("submission.h5", "run.json", "metrics.json", "config.yaml", "log.txt"):
        assert stat.S_IMODE((tmp_path / "r" / name).stat().st_mode) == 0o640, name


def test_demo_and_report_recognise_only_their_own_output(synthetic, tmp_path, plugin, capsys):
    from nlb_suite.commands.report import is_report_file
    from nlb_suite.commands.runs import is_demo_folder

    execute(RunSpec("mean_rate", "mc_maze_small", data=synthetic("mc_maze_small"), out=tmp_path / "d" / "a", ci=0))
    html = tmp_path / "d" / "report.html"
    assert main(["report", str(tmp_path / "d" / "a"), "--out", str(html), "--markdown", str(tmp_path / "r.md")]) == 0
    assert is_report_file(html) and is_report_file(tmp_path / "r.md") and is_demo_folder(tmp_path / "d")
    capsys.readouterr()
    assert "holds a previous report" in _error(capsys, ["report", str(tmp_path / "d" / "a"), "--out", str(html)])
    assert main(["report", str(tmp_path / "d" / "a"), "--out", str(html), "--overwrite"]) == 0
    (tmp_path / "d" / "notes.txt").write_text("mine")
    (tmp_path / "other.html").write_text("<html><head></head></html>")
    assert not is_demo_folder(tmp_path / "d") and not is_report_file(tmp_path / "other.html")


def test_a_discarded_temp_folder_takes_only_the_parents_made_for_it(tmp_path):
    from nlb_suite import outputs

    (tmp_path / "kept").mkdir()
    work = outputs.make_temp_dir(tmp_path / "kept" / "new" / "deeper" / "run")
    (work / "partial.txt").write_text("half a run")
    outputs.discard_temp_dir(work)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["kept"]
    assert work not in outputs._MADE_PARENTS

    work = outputs.make_temp_dir(tmp_path / "made" / "run")
    (tmp_path / "made" / "notes.txt").write_text("written meanwhile by someone else")
    outputs.discard_temp_dir(work)  # `made` is not empty any more: it stays, with the notes
    assert (tmp_path / "made" / "notes.txt").exists() and not work.exists()

    work = outputs.make_temp_dir(tmp_path / "done" / "run")
    outputs.replace_folder(work, tmp_path / "done" / "run", replacing=False)
    assert (tmp_path / "done" / "run").is_dir() and work not in outputs._MADE_PARENTS


def test_run_json_timings_may_be_null_but_not_text(tmp_path):
    from nlb_suite.errors import NLBInputError
    from nlb_suite.runs import read_run_info

    base = {"dataset": "mc_maze", "bin_ms": 5, "phase": "val", "baseline": "smoothing"}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(dict(base, timings={"fit_s": None, "predict_s": 1.5})))  # a NaN, written as null
    assert read_run_info(path)["timings"] == {"fit_s": None, "predict_s": 1.5}
    path.write_text(json.dumps(dict(base, timings={"fit_s": "1.5"})))
    with pytest.raises(NLBInputError, match=r"run.json: timings.fit_s: '1.5' \(expected seconds as numbers\)$"):
        read_run_info(path)


@pytest.mark.parametrize("kernel, threads", [("Haswell", "1"), (PINNED_KERNEL, "2")])
def test_machine_info_records_the_openblas_kernel_and_threads(kernel, threads):
    # OpenBLAS picks its kernels by CPU when it loads and splits sums by thread (GPFA's fits differ with either);
    # OPENBLAS_CORETYPE forces a kernel, as another kind of CPU would
    code = "import json; from nlb_suite.runs import machine_info; print(json.dumps(machine_info('cpu')))"
    env = dict(os.environ, OPENBLAS_CORETYPE=kernel, OPENBLAS_NUM_THREADS=threads)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    machine = json.loads(done.stdout.strip().splitlines()[-1])
    assert machine["openblas_kernel"] in ({kernel} if kernel != PINNED_KERNEL else set(GENERIC_KERNELS))
    assert machine["openblas_threads"] == threads


class SeedProbeBaseline(MeanRateBaseline):
    """Records a numpy draw when built and, at fit, the next numpy and torch draws and the BLAS thread count;
    fails on a negative scale."""

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.built_draw = np.random.random()

    def fit(self, train):
        import torch
        from threadpoolctl import threadpool_info

        if self.config.scale < 0:
            from nlb_suite.errors import ConfigFieldError

            raise ConfigFieldError("mean_rate", "scale", f"must be >= 0 for {train.n_trials} trials")
        self.draws = (np.random.random(), float(torch.rand(1)))
        self.blas = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
        super().fit(train)


def test_fit_model_seeds_with_the_runs_seed_holds_blas_and_names_where_a_bad_value_came_from(synthetic):
    import torch

    from nlb_suite.baseline_api import RunContext, resolve_config_origins
    from nlb_suite.datasets.tensors import load
    from nlb_suite.seeding import seed_everything

    folder = synthetic("mc_maze_small")
    train, _ = runs.trial_sets(load("mc_maze_small", folder, bin_ms=5, phase="val", progress=False))
    ctx = RunContext.for_trials("mc_maze_small", 5, train, seed=7, device="cpu", data_dir=folder)
    config, _, origins = resolve_config_origins(SeedProbeBaseline, "mc_maze_small", 5, {"scale": 2.0})
    seed_everything(0)  # another seed before: the fit reseeds
    model, fit_s = runs.fit_model(SeedProbeBaseline, config, ctx, train, origins)
    seed_everything(7)  # seeded with the run's seed before the model is built, whatever came before
    assert (model.built_draw, *model.draws) == (np.random.random(), np.random.random(), float(torch.rand(1)))
    assert model.blas == {DEFAULT_BLAS_THREADS} and fit_s >= 0
    np.testing.assert_allclose(model.m_in, 2.0 * train.spikes_heldin.mean(axis=(0, 1)))
    config, _, origins = resolve_config_origins(SeedProbeBaseline, "mc_maze_small", 5, {"scale": -1.0},
                                                override_origins={"scale": "--set"})
    with pytest.raises(runs.NLBInputError, match=r"^--set: baseline mean_rate: scale must be >= 0 for \d+ trials$"):
        runs.fit_model(SeedProbeBaseline, config, ctx, train, origins)


def test_trial_set_rows_index_every_per_trial_array_and_held_in_only_drops_what_prediction_never_sees():
    from support.tiny_trials import poisson_trials

    trials = poisson_trials(6, 5, 3, 2, 4, seed=1)
    trials.behavior = np.arange(6 * 5 * 2, dtype=np.float32).reshape(6, 5, 2)
    index = np.array([4, 1])
    some = trials.rows(index)
    assert some.split == "train" and some.n_trials == 2
    for name in ("spikes_heldin", "trial_ids", "bins", "forward_bins", "spikes_heldout", "spikes_heldin_forward",
                 "spikes_heldout_forward", "behavior"):
        np.testing.assert_array_equal(getattr(some, name), getattr(trials, name)[index])
    seen = some.held_in_only()
    assert (seen.spikes_heldout, seen.spikes_heldin_forward, seen.spikes_heldout_forward, seen.behavior) == (None,) * 4
    np.testing.assert_array_equal(seen.spikes_heldin, trials.spikes_heldin[index])
    np.testing.assert_array_equal(seen.forward_bins, trials.forward_bins[index])
    for name in ("trial_ids", "bins"):  # what the oracle and the truth metrics look trials up by
        np.testing.assert_array_equal(getattr(seen, name), getattr(trials, name)[index])
    assert trials.spikes_heldout is not None and trials.n_trials == 6  # the original is left as it was
    np.testing.assert_array_equal(trials.rows(np.arange(6) % 2 == 0).spikes_heldout, trials.spikes_heldout[::2])  # a mask
    evals = dataclasses.replace(trials.held_in_only(), split="eval")
    assert evals.rows(index).split == "eval"
    with pytest.raises(NLBInputError, match=r"^TrialSet.rows: index of shape \(\) \(expected a 1-d array"):
        trials.rows(3)
    with pytest.raises(NLBInputError, match=r"^TrialSet.rows: field behavior has shape \(5, 2\), expected 6 rows"):
        dataclasses.replace(trials, behavior=trials.behavior[0]).rows(index)
