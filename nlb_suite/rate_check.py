"""The one rule for a valid rates array (stored as floats, finite and >= 0), shared by validate, evaluate,
metrics and runs."""

from __future__ import annotations

import numpy as np

from .errors import NLBInputError

EXPECTED = "expected finite rates >= 0"


def dtype_problem(dtype: np.dtype) -> str | None:
    """What is wrong with storing rates as `dtype` (integers are counts, not rates), or None for floats."""
    return None if np.issubdtype(dtype, np.floating) else f"dtype {dtype} (expected float32)"


def rate_problems(rates: np.ndarray) -> list[str]:
    """Each kind of bad value in `rates` (NaN, infinite, negative), counted, with its first index."""
    arr = np.asarray(rates)
    out = []
    for bad, label in ((np.isnan(arr), "NaN"), (np.isinf(arr), "infinite"), (arr < 0, "negative")):
        n = int(np.count_nonzero(bad))
        if n:
            first = [int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape)]
            out.append(f"{n} {label} value(s) (first at {first}; {EXPECTED})")
    return out


def check_rates(rates: np.ndarray, where: str) -> None:
    """Raise one NLBInputError line "WHERE: problems" when `rates` breaks the rule of rate_problems."""
    problems = rate_problems(rates)
    if problems:
        raise NLBInputError(f"{where}: " + "; ".join(problems))
