"""Names a newcomer can trust: shared test helpers live in tests/support, and module names are not reused."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS_A_TEST = re.compile(r"^\s*(from\s+(test_\w*|tests(\.\w+)*)\s+import|import\s+(test_\w*|tests\b))", re.M)


def test_no_test_module_is_imported_by_tests_or_benchmarks():
    offenders = [str(p.relative_to(ROOT)) for folder in ("tests", "benchmarks")
                 for p in sorted((ROOT / folder).rglob("*.py")) if IMPORTS_A_TEST.search(p.read_text())]
    assert not offenders, "move shared helpers into tests/support/: " + ", ".join(offenders)


def test_library_module_names_are_unique():
    """One meaning per name: no two library or baseline modules share a file name (the CLI layer,
    nlb_suite/commands/, is named after the part of the library each module drives)."""
    files = [p for folder in ("nlb_suite", "baselines") for p in (ROOT / folder).rglob("*.py")
             if p.name != "__init__.py" and "commands" not in p.relative_to(ROOT).parts]
    dupes = sorted(name for name, n in Counter(p.name for p in files).items() if n > 1)
    assert not dupes, f"module names used twice: {dupes}"


def test_oracle_means_the_true_rate_baseline_only():
    named = sorted(str(p.relative_to(ROOT)) for folder in ("nlb_suite", "baselines", "tests", "benchmarks")
                   for p in (ROOT / folder).rglob("*oracle*.py"))
    assert named == ["baselines/oracle.py"]
