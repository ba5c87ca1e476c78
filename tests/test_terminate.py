"""A kill mid-fit (SIGTERM: a scheduler, `timeout`, `kill`) ends a command as Ctrl-C does: the folder it was writing
is discarded, it says so in one line, and it exits with code 143 (no traceback, nothing half-written left)."""

import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from support.bench_scripts import BENCHMARKS
from support.tiny_gnocchi import TINY

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGTERM cannot be caught on Windows (it ends a process)")

LONG_TINY = {**TINY, "max_epochs": 100000, "patience": 100000}  # tiny networks, a diffusion stage that never ends


def _kill_while_writing(command: list[str], out: Path) -> subprocess.CompletedProcess:
    """Start `command`, wait until its temp folder beside `out` exists, send SIGTERM, and return how it ended."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.parent.glob(f".{out.name}.*")):
        assert proc.poll() is None, proc.communicate()  # it must still be writing when killed
        assert time.monotonic() < deadline, "no temp folder appeared"
        time.sleep(0.05)
    time.sleep(1.0)  # into the fit
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _assert_ended_cleanly(done: subprocess.CompletedProcess, out: Path, prog: str) -> None:
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"{prog}: terminated" and "Traceback" not in done.stderr
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))  # the temp folder is gone


def test_a_killed_nlb_eval_run_leaves_no_folder_behind(synthetic, tmp_path):
    out = tmp_path / "run"
    script = Path(sysconfig.get_path("scripts")) / "nlb-eval"  # the console script, as users start it
    sets = [f"--set={k}={v}" for k, v in LONG_TINY.items()]
    done = _kill_while_writing([sys.executable, str(script), "run", "gnocchi", "--dataset", "mc_maze_small", "--data",
                                str(synthetic("mc_maze_small")), "--ci", "0", "--out", str(out), *sets], out)
    _assert_ended_cleanly(done, out, "nlb-eval")


def test_a_killed_benchmark_fit_leaves_no_folder_behind(tmp_path):
    """The benchmarks' entry point (`run_script`) holds SIGTERM as nlb-eval does (before it, a killed fit_only.py
    left its hidden temp folder beside --out)."""
    out = tmp_path / "fit"
    sets = [a for k, v in LONG_TINY.items() for a in ("--set", f"{k}={v}")]
    done = _kill_while_writing([sys.executable, str(BENCHMARKS / "fit_only.py"), "--dataset", "mc_maze_small",
                                "--trials", "40", "--data-seed", "3", "--baseline", "gnocchi", "--out", str(out),
                                "--work", str(tmp_path / "work"), *sets], out)
    _assert_ended_cleanly(done, out, "fit_only.py")
