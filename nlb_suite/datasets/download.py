"""Fetch a dataset's NWB files from DANDI with the official `dandi` client, at the pinned version.

The client verifies each file's checksum, resumes partial downloads and skips files whose checksum
already matches. Offline, we fail within seconds with a pointer to `nlb-eval synth`.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

from ..errors import NLBInputError, check_int
from .specs import DatasetSpec, get_dataset

DANDI_API = "https://api.dandiarchive.org/api"
CONNECT_TIMEOUT_S = 5.0


def dandi_reachable(api_url: str = DANDI_API, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """True if a TCP connection to the DANDI API host opens within `timeout` seconds."""
    parsed = urlparse(api_url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def dataset_folder(spec: DatasetSpec, out_dir: str | Path) -> Path:
    """Where the dataset's NWB files land: OUT/<dandiset>/sub-<subject>/ (the dandi client's layout)."""
    return Path(out_dir) / spec.dandiset / f"sub-{spec.subject}"


def _run_client(url: str, out_dir: Path, jobs: int) -> None:
    from dandi.download import DownloadExisting, DownloadFormat, download

    download(url, out_dir, existing=DownloadExisting.OVERWRITE_DIFFERENT, format=DownloadFormat.DEBUG,
             jobs=jobs)


def download_dataset(name: str, out_dir: str | Path, jobs: int = 4) -> Path:
    """Download dataset `name` (pinned DANDI version) into `out_dir`; returns the folder with its NWB files."""
    spec = get_dataset(name)
    if spec.synthetic_only:
        raise NLBInputError(f"{name}: a synthetic set with known dynamics, not on DANDI; "
                            f"use `nlb-eval synth {name} --out DIR` or `--synthetic`")
    check_int(jobs, "--jobs", 1)
    out_dir = Path(out_dir)
    if not dandi_reachable():
        raise NLBInputError(
            f"cannot reach DANDI ({urlparse(DANDI_API).hostname}) to fetch {spec.dandi_url}; "
            f"offline? Try `nlb-eval synth {name} --out DIR` for a synthetic stand-in in the same layout"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        _run_client(spec.dandi_url, out_dir, jobs)
    except Exception as exc:  # the client raises many types (HTTP, digest mismatch, ...)
        raise NLBInputError(f"{spec.dandi_url}: download failed: {exc}") from None
    folder = dataset_folder(spec, out_dir)
    missing = [kind for kind in ("train", "test") if not list(folder.glob(f"*desc-{kind}*.nwb"))]
    if missing:
        raise NLBInputError(f"{spec.dandi_url}: download finished but no {' or '.join(missing)} NWB file "
                            f"is in {folder}")
    return folder
