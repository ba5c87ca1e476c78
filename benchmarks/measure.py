"""Run a command and report wall time and peak memory (RSS summed over its whole process tree)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass


@dataclass
class Measurement:
    seconds: float
    peak_mb: float  # peak of the RSS summed over the process tree (forked workers' shared pages count twice)
    peak_single_mb: float  # peak RSS of the largest single process
    returncode: int


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(entry))
        except OSError:
            continue
    return out


def _tree_rss_kb(pid: int) -> tuple[int, int]:
    total, largest, stack = 0, 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kb = int(line.split()[1])
                        total, largest = total + kb, max(largest, kb)
                        break
        except OSError:
            continue
        stack.extend(_children(p))
    return total, largest


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.05) -> Measurement:
    """Run `cmd`, sampling the RSS of the process tree every `interval` seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    peak = peak_single = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_single
        while not stop.is_set():
            total, largest = _tree_rss_kb(proc.pid)
            peak, peak_single = max(peak, total), max(peak_single, largest)
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    rc = proc.wait()
    elapsed = time.perf_counter() - t0
    stop.set()
    thread.join()
    return Measurement(elapsed, peak / 1024, peak_single / 1024, rc)
