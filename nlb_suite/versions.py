"""Installed package versions, for run provenance (runs.py) and the synthetic cache's key (synthetic_cache.py)."""

from __future__ import annotations

from importlib import metadata
from typing import Optional


def installed_version(package: str) -> Optional[str]:
    """The installed version of `package`, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
