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

from support.bench_scripts import BENCHMARKS, fit_only_command
from support.tiny_gnocchi import TINY

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGTERM cannot be caught on Windows (it ends a process)")

LONG_TINY = {**TINY, "max_epochs": 100000, "patience": 100000}  # tiny networks, a diffusion stage that never ends


def _kill_while_writing(command: list[str], out: Path, log: Path) -> subprocess.CompletedProcess:
    """Start `command`, wait until its temp folder beside `out` exists, send SIGTERM, and return how it ended (its
    stderr from `log`). The child never outlives the test, whatever fails."""
    with open(log, "w") as err, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err) as proc:
        try:
            deadline = time.monotonic() + 300
            while not list(out.parent.glob(f".{out.name}.*")):
                assert proc.poll() is None, log.read_text()  # it must still be writing when killed
                assert time.monotonic() < deadline, "no temp folder appeared"
                time.sleep(0.05)
            time.sleep(1.0)  # into the work it was doing (the same cleanup runs wherever the kill lands)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return subprocess.CompletedProcess(command, proc.returncode, "", log.read_text())


def _assert_ended_cleanly(done: subprocess.CompletedProcess, out: Path, prog: str) -> None:
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"{prog}: terminated" and "Traceback" not in done.stderr
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))  # the temp folder is gone


def test_a_killed_nlb_eval_run_leaves_no_folder_behind(synthetic, tmp_path):
    out = tmp_path / "run"
    script = Path(sysconfig.get_path("scripts")) / "nlb-eval"  # the console script, as users start it
    sets = [f"--set={k}={v}" for k, v in LONG_TINY.items()]
    done = _kill_while_writing([sys.executable, str(script), "run", "gnocchi", "--dataset", "mc_maze_small", "--data",
                                str(synthetic("mc_maze_small")), "--ci", "0", "--out", str(out), *sets], out,
                              tmp_path / "stderr.txt")
    _assert_ended_cleanly(done, out, "nlb-eval")


def test_a_killed_benchmark_fit_leaves_no_folder_behind(tmp_path):
    """The benchmarks' entry point (`run_script`) holds SIGTERM as nlb-eval does (before it, a killed fit_only.py
    left its hidden temp folder beside --out)."""
    out = tmp_path / "fit"
    done = _kill_while_writing(fit_only_command("gnocchi", 0, out, tmp_path / "work", LONG_TINY), out,
                               tmp_path / "stderr.txt")
    _assert_ended_cleanly(done, out, "fit_only.py")


def test_every_benchmark_script_starts_through_run_script():
    """A benchmark started by hand or by a scheduler gets the same SIGTERM and Ctrl-C handling as nlb-eval."""
    texts = {p.name: p.read_text() for p in sorted(BENCHMARKS.glob("*.py"))}
    scripts = {name: text for name, text in texts.items() if '__name__ == "__main__"' in text}
    assert len(scripts) >= 25
    missing = [name for name, text in scripts.items() if f'run_script(main, "{name}")' not in text]
    assert missing == []


def test_run_script_ends_a_kill_and_ctrl_c_in_one_line_with_the_shells_codes(capsys):
    from nlb_suite.termination import run_script

    def interrupted():
        raise KeyboardInterrupt

    def killed():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler raises before this ends

    before = signal.getsignal(signal.SIGTERM)
    for main, code, word in ((interrupted, 130, "interrupted"), (killed, 143, "terminated")):
        with pytest.raises(SystemExit) as ended:
            run_script(main, "bench_x.py")
        assert ended.value.code == code and capsys.readouterr().err == f"bench_x.py: {word}\n"
        assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
