"""Under CI a skip fails (test-level, skipif, module-level importorskip); every run prints its skip count."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SKIPPING_TESTS = '''
import pytest


def test_skips_inside():
    pytest.skip("no chromium here")


@pytest.mark.skipif(True, reason="dependency missing")
def test_skipif():
    pass


def test_imports_missing():
    pytest.importorskip("no_such_module_for_ci_test")


@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False


def test_passes():
    assert True
'''

MODULE_SKIP = '''
import pytest

pytest.importorskip("no_such_module_for_ci_test")


def test_never_collected():
    pass
'''


def _run_pytest(tmp_path: Path, files: dict[str, str], ci: str | None) -> subprocess.CompletedProcess:
    """pytest in a subprocess on `files` beside a copy of tests/conftest.py, with CI set to `ci` (None: unset)."""
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(TESTS)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_skips_pass_and_are_counted_outside_ci(tmp_path):
    proc = _run_pytest(tmp_path, {"test_skipping.py": SKIPPING_TESTS}, ci=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 3 skipped, 1 xfailed" in proc.stdout
    assert "\nskipped: 3\n" in proc.stdout


@pytest.mark.parametrize("ci", ["false", "0", ""])
def test_ci_false_values_do_not_turn_skips_into_failures(tmp_path, ci):
    proc = _run_pytest(tmp_path, {"test_skipping.py": SKIPPING_TESTS}, ci=ci)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped: 3" in proc.stdout


def test_skips_fail_under_ci(tmp_path):
    proc = _run_pytest(tmp_path, {"test_skipping.py": SKIPPING_TESTS}, ci="true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2 failed, 1 passed, 1 xfailed, 1 error" in proc.stdout  # the skipif one fails in setup: an error
    assert "skipped under CI (no chromium here)" in proc.stdout
    assert "skipped under CI (dependency missing)" in proc.stdout
    assert "no_such_module_for_ci_test" in proc.stdout
    assert "skipped: 0 (CI: skips fail)" in proc.stdout


def test_module_level_importorskip_fails_under_ci(tmp_path):
    files = {"test_module_skip.py": MODULE_SKIP, "test_ok.py": "def test_ok():\n    pass\n"}
    outside = _run_pytest(tmp_path, files, ci=None)
    assert outside.returncode == 0, outside.stdout + outside.stderr
    assert "skipped: 1" in outside.stdout
    inside = _run_pytest(tmp_path, files, ci="true")
    assert inside.returncode != 0, inside.stdout + inside.stderr
    assert "ERROR" in inside.stdout and "skipped under CI" in inside.stdout
