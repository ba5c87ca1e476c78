"""`nlb-eval --portable-kernels`: the command restarts with every library held to its AVX2 kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from nlb_suite import portable_kernels
from nlb_suite.cli import main
from nlb_suite.errors import NLBInputError
from nlb_suite.portable_kernels import (
    NUMPY_DISABLE,
    NUMPY_ENABLE,
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
    assert applies(env) and not applies({**env, "ATEN_CPU_CAPABILITY": "avx512"}) and not applies(PORTABLE_ENV)
    assert NUMPY_ENABLE not in portable_environ({NUMPY_ENABLE: "AVX512F"}, ["X86_V4"])  # numpy refuses both
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
    assert kernel_problems([], avx2_only, dispatch, None) == [
        "no OpenBLAS seen in this process (numpy on another BLAS?), so its kernels cannot be held"]


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
    assert len(err) == 1 and err[0].startswith(
        "nlb-eval list: error: --portable-kernels: the kernels are chosen when the libraries load, so it works on "
        "the command line only (or set OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ")
    assert err[0].endswith(" before Python starts)") and f"{NUMPY_DISABLE}='" in err[0]


def test_a_restarted_command_never_restarts_again(monkeypatch):
    monkeypatch.setenv(RESTARTED, "1")
    monkeypatch.setattr(portable_kernels.os, "execve", no_restart)
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: the restarted command lacks the kernel "
                                            r"variables \(OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 "):
        portable_kernels.restart_with_portable_kernels()


def test_the_restart_runs_the_command_as_started_with_every_variable(monkeypatch):
    calls = []
    monkeypatch.setattr(portable_kernels.os, "execve", lambda *a: calls.append(a))
    monkeypatch.delenv(RESTARTED, raising=False)
    monkeypatch.setenv(NUMPY_ENABLE, "AVX2")
    monkeypatch.setattr(portable_kernels, "check_cpu", lambda *a: None)  # any CPU: only the call is under test
    monkeypatch.setattr(sys, "orig_argv", ["/usr/bin/python3", "-X", "utf8", "/venv/bin/nlb-eval", "run", "gpfa"],
                        raising=False)
    portable_kernels.restart_with_portable_kernels()
    ((path, argv, env),) = calls
    _, dispatch = portable_kernels.numpy_dispatch()
    assert path == sys.executable and argv == [sys.executable, "-X", "utf8", "/venv/bin/nlb-eval", "run", "gpfa"]
    assert env == {**portable_environ(os.environ, dispatch), RESTARTED: "1"} and NUMPY_ENABLE not in env
    assert env[NUMPY_DISABLE].split() == numpy_beyond_avx2(dispatch)


def test_a_run_under_the_variables_refuses_a_library_that_ignored_them(synthetic, tmp_path, monkeypatch):
    from nlb_suite.runs import RunSpec, execute

    for key, value in portable_environ({}, []).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(portable_kernels, "openblas_libraries", lambda: [{"architecture": "SkylakeX"}])
    with pytest.raises(NLBInputError, match=r"^portable kernels: OpenBLAS loaded SkylakeX kernels, expected Haswell"):
        execute(RunSpec("oracle", "mc_maze_small", data=synthetic("mc_maze_small"), out=tmp_path / "run", ci=0))
    assert not (tmp_path / "run").exists()


@X86_ONLY
@pytest.mark.skipif(os.name == "nt", reason="Windows cannot restart a command in place (refused, tested above)")
def test_the_command_restarts_with_the_avx2_kernels(synthetic, tmp_path):
    # the generic kernel in the parent: only the restart can make OpenBLAS load Haswell's, on any x86-64 CPU
    env = {k: v for k, v in os.environ.items() if k not in (*PORTABLE_ENV, NUMPY_DISABLE, RESTARTED)}
    env["OPENBLAS_CORETYPE"] = "Prescott"
    script = Path(sysconfig.get_path("scripts")) / "nlb-eval"  # the console script, as users start it
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
