"""BLAS thread counts are held, not inherited: a run's numbers must not depend on the machine's core count
(OpenBLAS starts with one thread per core and splits its sums by thread; GPFA's co-bps moved with it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import baselines.gpfa as gpfa
import baselines.smoothing as smoothing
import nlb_suite.metrics_bootstrap as metrics_bootstrap
import nlb_suite.metrics_evaluate as metrics_evaluate
from baselines.glm import PoissonGLM
from nlb_suite.baseline_api import RunContext, TrialSet
from nlb_suite.blas_threads import blas_threads
from nlb_suite.errors import NLBInputError
from nlb_suite.runs import RunSpec, execute, machine_info, provenance_changes
from nlb_suite.versions import openblas_threads
from support.eval_targets import make_submission, make_target


def recording(seen: list, function):
    """`function`, noting the OpenBLAS thread counts in force at each call."""
    def wrapper(*args, **kwargs):
        seen.append(openblas_threads())
        return function(*args, **kwargs)
    return wrapper


def random_trials(seed: int = 0, n: int = 12, t: int = 25, heldin: int = 8, heldout: int = 3) -> TrialSet:
    rng = np.random.default_rng(seed)
    bins = np.arange(n * t).reshape(n, t)
    return TrialSet("train", rng.poisson(0.4, (n, t, heldin)).astype(np.float32), np.arange(n), bins,
                    bins[:, -2:] + t, spikes_heldout=rng.poisson(0.4, (n, t, heldout)).astype(np.float32))


def test_blas_threads_holds_the_count_and_restores_it_also_on_an_error():
    with threadpool_limits(2, user_api="blas"):
        with blas_threads(1):
            assert openblas_threads() == [1]
        assert openblas_threads() == [2]
        with pytest.raises(RuntimeError, match="inside"), blas_threads(1):
            raise RuntimeError("inside")
        assert openblas_threads() == [2]
    with pytest.raises(ValueError, match=r"^blas_threads: n must be >= 1 \(got 0\)$"):
        with blas_threads(0):
            pass


@pytest.mark.parametrize("cpu_threads", [1, 2])
def test_gpfa_fits_and_predicts_at_its_cpu_threads_whatever_the_default(monkeypatch, cpu_threads):
    fit_seen, infer_seen = [], []
    monkeypatch.setattr(gpfa, "fit_em", recording(fit_seen, gpfa.fit_em))
    monkeypatch.setattr(gpfa, "infer_means", recording(infer_seen, gpfa.infer_means))
    train = random_trials()
    default = 3 - cpu_threads  # the machine's count, never the model's
    model = gpfa.GPFABaseline(gpfa.GPFAConfig(latent_dim=2, em_iters=3, cpu_threads=cpu_threads),
                              RunContext.for_trials("mc_maze_small", 5, train))
    with threadpool_limits(default, user_api="blas"):
        model.fit(train)
        model.predict(train)
        model.latents(train)
        assert openblas_threads() == [default]
    assert fit_seen == [[cpu_threads]]
    assert infer_seen == [[cpu_threads]] * 3  # fit's train latents, predict, latents


@pytest.mark.parametrize("cpu_threads", [1, 2])
def test_smoothing_fits_and_predicts_its_glm_at_its_cpu_threads(monkeypatch, cpu_threads):
    fit_seen, predict_seen = [], []
    monkeypatch.setattr(smoothing, "fit_poisson_glm", recording(fit_seen, smoothing.fit_poisson_glm))
    monkeypatch.setattr(PoissonGLM, "predict", recording(predict_seen, PoissonGLM.predict))
    train = random_trials()
    model = smoothing.SmoothingBaseline(smoothing.SmoothingConfig(kern_sd_ms=20, cpu_threads=cpu_threads),
                                        RunContext.for_trials("mc_maze_small", 5, train))
    with threadpool_limits(3 - cpu_threads, user_api="blas"):
        model.fit(train)
        model.predict(train)
    assert fit_seen == [[cpu_threads]] and predict_seen == [[cpu_threads]]


@pytest.mark.parametrize("config", [gpfa.GPFAConfig, smoothing.SmoothingConfig])
def test_cpu_threads_must_be_positive(config):
    name = "gpfa" if config is gpfa.GPFAConfig else "smoothing"
    with pytest.raises(NLBInputError, match=rf"^baseline {name}: cpu_threads must be >= 1 \(got 0\)$"):
        config(cpu_threads=0)


def test_scoring_and_paired_resampling_hold_one_thread_on_a_many_core_default(monkeypatch):
    scored, resampled = [], []
    monkeypatch.setattr(metrics_evaluate, "score_group", recording(scored, metrics_evaluate.score_group))
    monkeypatch.setattr(metrics_bootstrap, "boot_bps", recording(resampled, metrics_bootstrap.boot_bps))
    target, truth = make_target("mc_maze", 20, seed=4)
    with threadpool_limits(2, user_api="blas"):
        a = metrics_evaluate.evaluate_report(target, make_submission(target, truth, "realistic"), ci=5)
        b = metrics_evaluate.evaluate_report(target, make_submission(target, truth, "random"))
        metrics_evaluate.compare(a, b, n_boot=5)  # `score --compare` and the report resample outside scoring
        assert openblas_threads() == [2]
    assert scored == [[1]] * 2 and resampled == [[1]] * 6  # co-bps and fp-bps: a's interval, then a and b again


def test_a_run_records_the_held_count_and_provenance_compares_like_with_like(synthetic, tmp_path):
    with threadpool_limits(2, user_api="blas"):
        execute(RunSpec("oracle", "mc_maze_small", data=synthetic("mc_maze_small"), out=tmp_path / "run", ci=0))
        info = json.loads((tmp_path / "run" / "run.json").read_text())
        assert info["machine"]["openblas_threads"] == "1"
        assert provenance_changes(info, "cpu") == []  # a run here would hold 1 too, whatever the default
        made_at_two = {**info, "machine": {**info["machine"], "openblas_threads": "2"}}
        assert provenance_changes(made_at_two, "cpu") == ["openblas_threads 2 (now 1)"]
        assert machine_info("cpu")["openblas_threads"] == "2"  # outside a hold: the machine's own count


def test_a_fresh_run_holds_the_blas_its_baseline_brings_in(synthetic, tmp_path):
    # scipy's wheels load an OpenBLAS of their own with scipy.linalg; a baseline importing it inside the run
    # must not bring it in at the machine's count (a fresh process, as `nlb-eval run` starts)
    code = ("import json, sys; from pathlib import Path; from nlb_suite.runs import RunSpec, execute; "
            "execute(RunSpec('smoothing', 'mc_maze_small', data=Path(sys.argv[1]), out=Path(sys.argv[2]), ci=0), "
            "progress=False); print(json.loads((Path(sys.argv[2]) / 'run.json').read_text())['machine']['openblas_threads'])")
    code = "import numpy; from nlb_suite.versions import openblas_threads; print(openblas_threads()); " + code
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code, str(synthetic("mc_maze_small")), str(tmp_path / "run")],
                          env={**env, "OPENBLAS_NUM_THREADS": "2"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before, recorded = done.stdout.strip().splitlines()[-2:]
    assert before == "[2]", "the child's OpenBLAS did not start at 2 threads (this test needs 2 CPUs)"
    assert recorded == "1"


def test_every_command_holds_one_thread(tmp_path, monkeypatch):
    # `nlb-eval synth` (like report, ensemble and the rest) computes outside any run or scoring call
    import nlb_suite.datasets.synthetic as synthetic_module
    from nlb_suite.cli import main

    generated = []
    monkeypatch.setattr(synthetic_module, "write_synthetic", recording(generated, synthetic_module.write_synthetic))
    with threadpool_limits(2, user_api="blas"):
        assert main(["synth", "mc_maze_small", "--trials", "20", "--out", str(tmp_path / "data")]) == 0
        assert openblas_threads() == [2]
    assert generated == [[1]]
