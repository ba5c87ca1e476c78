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
import nlb_suite.metrics_evaluate as metrics_evaluate
from baselines.glm import PoissonGLM
from nlb_suite.baseline_api import RunContext, TrialSet
from nlb_suite.blas_threads import blas_threads
from nlb_suite.errors import NLBInputError
from nlb_suite.runs import RunSpec, execute
from nlb_suite.versions import openblas_threads


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


def test_blas_threads_holds_the_count_and_restores_it():
    with threadpool_limits(2, user_api="blas"):
        with blas_threads(1):
            assert openblas_threads() == [1]
        assert openblas_threads() == [2]
        with threadpool_limits(1, user_api="blas"), blas_threads(0):  # 0: one per core
            assert openblas_threads() == [os.cpu_count()]


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
def test_cpu_threads_must_not_be_negative(config):
    name = "gpfa" if config is gpfa.GPFAConfig else "smoothing"
    with pytest.raises(NLBInputError, match=rf"^baseline {name}: cpu_threads must be >= 0 \(got -1\)$"):
        config(cpu_threads=-1)


def test_a_run_scores_and_records_at_one_blas_thread_on_a_many_core_default(synthetic, tmp_path, monkeypatch):
    scored = []
    monkeypatch.setattr(metrics_evaluate, "score_group", recording(scored, metrics_evaluate.score_group))
    with threadpool_limits(2, user_api="blas"):
        execute(RunSpec("oracle", "mc_maze_small", data=synthetic("mc_maze_small"), out=tmp_path / "run", ci=0))
        assert openblas_threads() == [2]
    assert scored == [[1]]
    machine = json.loads((tmp_path / "run" / "run.json").read_text())["machine"]
    assert machine["openblas_threads"] == "1"


def test_a_fresh_run_holds_the_blas_its_baseline_brings_in(synthetic, tmp_path):
    # scipy's wheels load an OpenBLAS of their own with scipy.linalg; a baseline importing it inside the run
    # must not bring it in at the machine's count (a fresh process, as `nlb-eval run` starts)
    code = ("import json, sys; from pathlib import Path; from nlb_suite.runs import RunSpec, execute; "
            "execute(RunSpec('smoothing', 'mc_maze_small', data=Path(sys.argv[1]), out=Path(sys.argv[2]), ci=0), "
            "progress=False); print(json.loads((Path(sys.argv[2]) / 'run.json').read_text())['machine']['openblas_threads'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code, str(synthetic("mc_maze_small")), str(tmp_path / "run")],
                          env={**env, "OPENBLAS_NUM_THREADS": "2"}, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "1"
