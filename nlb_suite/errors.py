"""User-facing errors: one line that names the file, field and the expected form."""

from __future__ import annotations


class NLBInputError(Exception):
    """Bad input from the user (file, field, argument). The CLI prints it as one line and exits 2."""


def input_error(where: str, problem: str, expected: str | None = None) -> NLBInputError:
    """Build an error like "FILE: FIELD: problem (expected ...)" so every message has the same shape."""
    msg = f"{where}: {problem}"
    if expected:
        msg += f" (expected {expected})"
    return NLBInputError(msg)


def check_int(value: object, flag: str, minimum: int) -> None:
    """One-line error unless `value` is an integer >= `minimum` (bools are not integers here)."""
    from numbers import Integral

    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise NLBInputError(f"{flag}: {value} (expected an integer >= {minimum})")


def check_seed(seed: object, flag: str = "--seed") -> None:
    """One-line error unless `seed` is an integer >= 0 (what numpy's generators accept)."""
    check_int(seed, flag, 0)
