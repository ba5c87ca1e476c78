"""Ending on a signal: SIGTERM raised like Ctrl-C, so a killed command or benchmark runs the cleanup of the
temporary outputs it was writing, stops its child commands the same way, and ends with one line and the
shell's exit code (130, 143) instead of a traceback."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator


class Terminated(BaseException):
    """SIGTERM (a scheduler, `timeout`, `kill`): raised like Ctrl-C's KeyboardInterrupt, so every cleanup of a
    temporary output runs before the process ends."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While held, SIGTERM raises `Terminated` (in the main thread; elsewhere Python lets no handler be set), so a
    killed command discards its temp folders as after Ctrl-C instead of ending at once and leaving them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler set from C, which Python cannot put back
            signal.signal(signal.SIGTERM, previous)


def stopped(exc: Terminated | KeyboardInterrupt, prog: str) -> int:
    """The one line a kill or Ctrl-C ends `prog` with, on stderr; returns the shell's exit code for it (143, 130)."""
    word, code = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
    print(f"{prog}: {word}", file=sys.stderr)
    return code


def run_script(main: Callable[[], object], prog: str) -> None:
    """A script's entry point (the benchmarks): `main()` with SIGTERM raising, so a kill runs the cleanup of the
    temp folders it was writing (child commands too, where started with `run_child` or stopped with `stop_child`);
    Ctrl-C or a kill then ends it with one line and the shell's codes (130, 143), not a traceback, and a usage
    error raised as `SystemExit("message")` with that one line, named after `prog`, and exit code 2."""
    try:
        with sigterm_raises():
            main()
    except (Terminated, KeyboardInterrupt) as exc:
        raise SystemExit(stopped(exc, prog)) from None
    except SystemExit as exc:
        if not isinstance(exc.code, str):
            raise
        print(f"{prog}: {exc.code}", file=sys.stderr)  # a usage error, SystemExit("..."): one line, exit code 2
        raise SystemExit(2) from None


def stop_child(proc: subprocess.Popen, grace_s: float = 60.0) -> None:
    """End a child command as a kill ends ours: SIGTERM first, so it discards its own temp folders; SIGKILL only
    if it has not ended `grace_s` seconds later."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_child(command: list[str], **popen_kwargs: object) -> subprocess.CompletedProcess:
    """`subprocess.run` for a child command that writes outputs: if this process is interrupted or killed while it
    waits, the child is stopped with `stop_child` (its cleanup runs) instead of subprocess.run's immediate SIGKILL."""
    with subprocess.Popen(command, **popen_kwargs) as proc:
        try:
            stdout, stderr = proc.communicate()
        except BaseException:
            stop_child(proc)
            raise
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
