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
