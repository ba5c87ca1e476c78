"""User-facing errors: one line that names the file, field and the expected form."""

from __future__ import annotations

import math
from typing import Callable


class NLBInputError(Exception):
    """Bad input from the user (file, field, argument). The CLI prints it as one line and exits 2."""


class ConfigFieldError(NLBInputError):
    """A baseline config value its field does not accept; `fields` (the field, then any it conflicts with) let
    the config's resolver name the files or flags the values came from."""

    def __init__(self, who: str, field: str, problem: str, also: tuple[str, ...] = ()):
        sep = "" if problem.startswith("=") else " "  # "monitor=valid_sv_nll needs ..." names the value too
        super().__init__(f"baseline {who}: {field}{sep}{problem}")
        self.fields = (field, *also)


def check_field(value: float, who: str, key: str, expected: str, ok: Callable[[float], bool]) -> None:
    """ConfigFieldError "baseline WHO: KEY must be EXPECTED (got VALUE)" unless `value` is finite and `ok`."""
    if not (math.isfinite(value) and ok(value)):
        raise ConfigFieldError(who, key, f"must be {expected} (got {value!r})")


def check_choice(value: object, who: str, key: str, choices: tuple[str, ...]) -> None:
    """ConfigFieldError "baseline WHO: KEY must be one of A, B (got VALUE)" unless `value` is one of `choices`."""
    if value not in choices:
        raise ConfigFieldError(who, key, f"must be one of {', '.join(choices)} (got {value!r})")


def input_error(where: str, problem: str, expected: str | None = None) -> NLBInputError:
    """Build an error like "FILE: FIELD: problem (expected ...)" so every message has the same shape."""
    msg = f"{where}: {problem}"
    if expected:
        msg += f" (expected {expected})"
    return NLBInputError(msg)


def check_int(value: object, flag: str, minimum: int, maximum: int | None = None) -> None:
    """One-line error unless `value` is an integer >= `minimum` (and <= `maximum`; bools are not integers here)."""
    from numbers import Integral

    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise NLBInputError(f"{flag}: {value} (expected an integer {bound})")


SEED_MAX = 2**63 - 1  # a seed is stored as int64 (HDF5 attributes, run.json readers) and seeds torch


def check_seed(seed: object, flag: str = "--seed") -> None:
    """One-line error unless `seed` is an integer from 0 to 2**63 - 1 (numpy's generators, torch and an int64
    field in the output files all take it)."""
    check_int(seed, flag, 0, SEED_MAX)
