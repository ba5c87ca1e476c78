"""Load a script of benchmarks/ as a module, so tests can call its helpers (benchmarks/ is not a package), and the
command line of the tests' small fit_only.py fit."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_bench(name: str) -> ModuleType:
    """benchmarks/<name>.py as a fresh module (benchmarks/ on sys.path for its sibling imports)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def fit_only_command(baseline: str, seed: int, out: Path, work: Path, sets: dict) -> list[str]:
    """fit_only.py fitting `baseline` on a 40-trial mc_maze_small stand-in (data seed 3) in `work`, with `sets` as
    --set KEY=VALUE: the small fit the tests share."""
    return [sys.executable, str(BENCHMARKS / "fit_only.py"), "--dataset", "mc_maze_small", "--trials", "40",
            "--data-seed", "3", "--baseline", baseline, "--seed", str(seed), "--out", str(out), "--work", str(work),
            *(a for key, value in sets.items() for a in ("--set", f"{key}={value}"))]
