"""`nlb-eval --portable-kernels`: the command restarts with every library held to its AVX2 kernels."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from nlb_suite import portable_kernels
from nlb_suite.cli import main
from nlb_suite.errors import NLBInputError
from nlb_suite.portable_kernels import PORTABLE_ENV, applies, check_cpu, check_taken, portable_environ
from support.platforms import X86_ONLY


def test_portable_environ_sets_every_library_and_keeps_the_rest():
    env = portable_environ({"PATH": "/bin", "OPENBLAS_CORETYPE": "SkylakeX"})
    assert env == {"PATH": "/bin", **PORTABLE_ENV}
    assert set(PORTABLE_ENV) == {"OPENBLAS_CORETYPE", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                 "ONEDNN_MAX_CPU_ISA"}
    assert applies(env) and not applies({**env, "ATEN_CPU_CAPABILITY": "avx512"})


def test_an_ignored_request_and_a_cpu_without_avx2_are_refused(monkeypatch):
    check_taken(["Haswell"])
    check_taken([])  # no OpenBLAS loaded (another BLAS): nothing to check
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: OpenBLAS loaded SkylakeX kernels, expected "
                                            r"Haswell \(an OpenBLAS built without runtime kernel choice\?\)$"):
        check_taken(["SkylakeX"])
    monkeypatch.setattr(portable_kernels.platform, "machine", lambda: "aarch64")
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: this CPU is aarch64, expected x86-64 with AVX2$"):
        check_cpu()


def test_in_process_the_flag_is_refused_in_one_line(capsys, monkeypatch):
    for key in PORTABLE_ENV:
        monkeypatch.delenv(key, raising=False)
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        monkeypatch.setattr(portable_kernels, "check_cpu", lambda: None)
    assert main(["--portable-kernels", "list", "datasets"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nlb-eval list: error: --portable-kernels: the kernels are chosen when the libraries load, so it "
                   "works on the command line only (or set nlb_suite.portable_kernels.PORTABLE_ENV's variables "
                   "before Python starts)"]


@X86_ONLY
def test_the_command_restarts_with_the_avx2_kernels(synthetic, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "nlb_suite.cli", "--portable-kernels", "run", "smoothing",
                           "--dataset", "mc_maze_small", "--data", str(synthetic("mc_maze_small")), "--ci", "0",
                           "--out", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["machine"]["openblas_kernel"] == "Haswell"  # this process's own OpenBLAS chose by CPU
    assert info["command"].split()[1] == "--portable-kernels"  # the restarted command, as the user typed it


def test_a_restarted_command_never_restarts_again(monkeypatch):
    monkeypatch.setenv(portable_kernels.RESTARTED, "1")
    with pytest.raises(NLBInputError, match=r"^--portable-kernels: the restarted command lacks the kernel "
                                            r"variables \(OPENBLAS_CORETYPE=Haswell, "):
        portable_kernels.restart_with_portable_kernels(["list", "datasets"])
