"""`nlb-eval --portable-kernels`: the command restarts with every library held to its AVX2 kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nlb_suite import portable_kernels
from nlb_suite.cli import main
from nlb_suite.errors import NLBInputError
from nlb_suite.portable_kernels import (
    NUMPY_DISABLE,
    PORTABLE_ENV,
    RESTARTED,
    applies,
    check_cpu,
    kernel_problems,
    numpy_beyond_avx2,
    portable_environ,
    worker_env,
)
from support.platforms import X86_ONLY


def no_restart(*args, **kwargs):
    raise AssertionError("os.execve was called: the test process would have become nlb-eval")


def test_portable_environ_sets_every_library_and_keeps_the_rest():
    env = portable_environ({"PATH": "/bin", "OPENBLAS_CORETYPE": "SkylakeX"}, ["X86_V3", "X86_V4", "AVX512_ICL"])
    assert env == {"PATH": "/bin", **PORTABLE_ENV, NUMPY_DISABLE: "X86_V4 AVX512_ICL"}
    assert set(PORTABLE_ENV) == {"OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
                                 "ONEDNN_MAX_CPU_ISA"}
    assert numpy_beyond_avx2(["SSE42", "AVX2", "AVX512F", "AVX512_SKX", "AVX512_ICL"]) == [  # numpy 1.x names
        "AVX512F", "AVX512_SKX", "AVX512_ICL"]
    assert applies(env) and not applies({**env, "ATEN_CPU_CAPABILITY": "avx512"})
    assert worker_env(env) == {**PORTABLE_ENV, NUMPY_DISABLE: "X86_V4 AVX512_ICL"} and worker_env({"PATH": "/"}) == {}


def test_every_library_that_ignored_the_request_is_named():
    haswell = [{"architecture": "Haswell"}, {"architecture": "Haswell"}]  # numpy's and scipy's OpenBLAS
    avx2_only = {"X86_V3": True, "X86_V4": False, "AVX512_ICL": False}
    dispatch = ["X86_V3", "X86_V4", "AVX512_ICL"]
    assert kernel_problems(haswell, avx2_only, dispatch, "AVX2") == []
    assert kernel_problems(haswell, avx2_only, dispatch, None) == []  # torch not loaded (yet): nothing to check
    assert kernel_problems([{"architecture": "SkylakeX"}, *haswell], {**avx2_only, "X86_V4": True}, dispatch,
                           "AVX512") == [
        "OpenBLAS loaded Haswell, SkylakeX kernels, expected Haswell (an OpenBLAS built without runtime kernel "
        "choice?)",
        "numpy still dispatches to X86_V4",
        "torch runs AVX512 kernels, expected AVX2"]
    assert kernel_problems([], avx2_only, dispatch, None) == ["numpy's BLAS is not OpenBLAS, whose kernels cannot "
                                                              "be held"]


def test_a_cpu_without_avx2_and_windows_are_refused(monkeypatch):
    check_cpu(True, {"AVX2": True})
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: this CPU is not x86-64 \(expected x86-64 with AVX2\)$"):
        check_cpu(False, {"AVX2": True})
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: this CPU has no AVX2 \(expected x86-64 with AVX2\)$"):
        check_cpu(True, {"AVX2": False})
    monkeypatch.setattr(portable_kernels.os, "name", "nt")
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: Windows cannot restart a command in place"):
        check_cpu(True, {"AVX2": True})


def test_in_process_the_flag_is_refused_in_one_line(capsys, monkeypatch):
    for key in PORTABLE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(portable_kernels.os, "execve", no_restart)
    assert main(["--portable-kernels", "list", "datasets"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nlb-eval list: error: --portable-kernels: the kernels are chosen when the libraries load, so it "
                   "works on the command line only (or set nlb_suite.portable_kernels.PORTABLE_ENV's variables "
                   "before Python starts)"]


def test_a_restarted_command_never_restarts_again(monkeypatch):
    monkeypatch.setenv(RESTARTED, "1")
    monkeypatch.setattr(portable_kernels.os, "execve", no_restart)
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: the restarted command lacks the kernel "
                                            r"variables \(OPENBLAS_CORETYPE=Haswell, "):
        portable_kernels.restart_with_portable_kernels()


@X86_ONLY
def test_the_command_restarts_with_the_avx2_kernels(synthetic, tmp_path):
    # the generic kernel in the parent: only the restart can make OpenBLAS load Haswell's, on any x86-64 CPU
    env = {k: v for k, v in os.environ.items() if k not in (*PORTABLE_ENV, NUMPY_DISABLE, RESTARTED)}
    env["OPENBLAS_CORETYPE"] = "Prescott"
    script = Path(sys.executable).parent / "nlb-eval"  # the console script, as users start it
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(script), "--portable-kernels", "run", "smoothing", "--dataset",
                           "mc_maze_small", "--data", str(synthetic("mc_maze_small")), "--ci", "0", "--out", str(out)],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "run.json").read_text())
    machine = info["machine"]
    assert machine["openblas_kernel"] == "Haswell"
    assert "X86_V4" not in machine["numpy_simd"] and "AVX512" not in machine["numpy_simd"]
    assert machine.get("torch_cpu_capability", "AVX2") == "AVX2"
    assert info["command"].split()[:2] == [str(script), "--portable-kernels"]  # the command as the user started it
