"""Test markers for what only some CPUs can run."""

from __future__ import annotations

import platform

import pytest

X86_ONLY = pytest.mark.skipif(platform.machine().lower() not in {"x86_64", "amd64"},
                              reason="x86-64 only (OpenBLAS kernel choice, AVX2); CI is x86-64")
