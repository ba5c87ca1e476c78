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


def check_seed(seed: object, flag: str = "--seed") -> None:
    """One-line error unless `seed` is an integer >= 0 (what numpy's generators accept)."""
    from numbers import Integral

    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise NLBInputError(f"{flag}: {seed} (expected an integer >= 0)")
