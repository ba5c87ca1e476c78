"""Pytest hooks: under CI a skipped test or module fails (a missing dependency must not hide a check); every
run ends with a `skipped: N` line so skips are never silent. tests/conftest.py installs these hooks."""

from __future__ import annotations

import os

import pytest

CI_OFF = ("", "0", "false", "no", "off")


def ci_enabled() -> bool:
    """True when the environment says this is a CI run (CI set to anything but empty/0/false/no/off)."""
    return os.environ.get("CI", "").strip().lower() not in CI_OFF


def _reason(longrepr: object) -> str:
    """The skip reason of a report's longrepr (a (path, line, reason) tuple for skips)."""
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skipped report into a failed one whose message gives the skip's reason."""
    reason = _reason(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI ({reason}); CI must run every test: install what it needs"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under CI, a skip in setup, call or teardown (pytest.skip, skipif, importorskip) fails the test."""
    outcome = yield
    report = outcome.get_result()
    if ci_enabled() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_skip(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Under CI, a module skipped while collected (module-level importorskip) is a collection error."""
    outcome = yield
    report = outcome.get_result()
    if ci_enabled() and report.skipped:
        _fail_skip(report)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print how many tests (or modules) were skipped, also when none were."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if not hasattr(r, "wasxfail")]
    terminalreporter.write_line(f"skipped: {len(skipped)}" + (" (CI: skips fail)" if ci_enabled() else ""))
