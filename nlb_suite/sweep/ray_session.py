"""Start or join Ray: a private local instance by default, a running cluster by address.

An address that points nowhere makes `ray.init` wait for many minutes, so the head's port is probed first
and an unreachable address is one line in seconds. A local instance keeps its temporary files under the
output folder when the path is short enough for Ray's socket names (107 bytes), else in a short folder of
its own under the system's temp folder, removed at shutdown. Output is kept quiet: no dashboard, no worker
logs on the terminal, no TensorBoard files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from ..errors import NLBInputError, check_int
from ..portable_kernels import worker_env

SOCKET_PATH_LIMIT = 107  # bytes of a Unix socket path (Linux)
SESSION_SUFFIX = 70  # what Ray appends below its temp folder: /session_<date>_<time>_<pid>/sockets/plasma_store
PROBE_TIMEOUT_S = 3.0
CURRENT_CLUSTER = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # written by `ray start --head`
QUIET_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_DEDUP_LOGS": "0",
             "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def require_ray() -> None:
    """One line naming the extra when Ray Tune is not installed."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise NLBInputError("Ray Tune is not installed (expected `pip install nlb_suite[sweep]`)") from None


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of 'HOST:PORT' or 'ray://HOST:PORT'; a one-line error for anything else."""
    text = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise NLBInputError(f"--address {address!r}: not local, auto or HOST:PORT (expected e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def resolve_address(address: str) -> str:
    """'local', or the address of a running cluster ('auto': $RAY_ADDRESS, else the head started on this machine)."""
    if address == "local":
        return address
    if address == "auto":
        found = os.environ.get("RAY_ADDRESS") or (CURRENT_CLUSTER.read_text().strip() if CURRENT_CLUSTER.is_file()
                                                  else "")
        if not found:
            raise NLBInputError("--address auto: no Ray cluster found ($RAY_ADDRESS unset and no `ray start --head` "
                                "on this machine) (expected a running cluster, or --address local)")
        return found
    parse_address(address)
    return address


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """One-line error unless something accepts connections at the cluster's address within `timeout` seconds."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise NLBInputError(f"--address {address}: no Ray cluster answers there ({reason} after at most "
                            f"{timeout:g} s) (expected the head's address from `ray start --head`, or "
                            "--address local)") from None


def local_temp_dir(out: Path) -> tuple[Path, bool]:
    """Ray's temp folder for a local instance: OUT/.ray when short enough, else a new short folder (True: remove
    it at shutdown)."""
    inside = Path(out).absolute() / ".ray"
    if len(os.fsencode(str(inside))) + SESSION_SUFFIX <= SOCKET_PATH_LIMIT:
        inside.mkdir(parents=True, exist_ok=True)
        return inside, False
    return Path(tempfile.mkdtemp(prefix="nlbray-", dir="/tmp" if Path("/tmp").is_dir() else None)), True


def quiet() -> None:
    """Environment and logging settings that keep Ray and Ray Tune off the terminal (set before ray.tune loads)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"ray\..*")


def check_address(address: str) -> str:
    """The resolved address, with Ray installed and (for a cluster) its head answering; one line otherwise."""
    require_ray()
    resolved = resolve_address(address)
    if resolved != "local":
        probe(resolved)
    return resolved


def check_num_cpus(num_cpus: Optional[int]) -> None:
    """--num-cpus is a whole number of CPUs, at least one (None: the machine's)."""
    if num_cpus is not None:
        check_int(num_cpus, "--num-cpus", 1)


@contextlib.contextmanager
def ray_session(address: str, out: Path, num_cpus: Optional[int] = None) -> Iterator[str]:
    """Ray started locally (temp files by `out`) or joined at `address`; shut down on exit. Yields the address.

    With `local` and Ray already running in this process (a notebook, a test session), that instance is used
    and left running.
    """
    resolved = check_address(address)
    quiet()
    import ray

    if resolved == "local" and ray.is_initialized():
        yield resolved
        return

    temp, remove = (None, False) if resolved != "local" else local_temp_dir(out)
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level=logging.ERROR)
    if resolved == "local":
        kwargs.update(_temp_dir=str(temp), num_cpus=num_cpus)
    if env_vars := worker_env(os.environ):  # --portable-kernels: every worker, a cluster's too, loads AVX2 kernels
        kwargs["runtime_env"] = {"env_vars": env_vars}
    in_main_thread = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM) if in_main_thread else None
    try:
        ray.init(address=resolved, **kwargs)  # installs Ray's SIGTERM handler (sys.exit(15))
        if callable(before):  # nlb-eval's own: SIGTERM ends the command like Ctrl-C, with exit code 143
            signal.signal(signal.SIGTERM, before)
        try:
            yield resolved
        finally:
            ray.shutdown()
    finally:
        if before is not None:  # Ray's handler would outlive the session (a notebook, a test session)
            signal.signal(signal.SIGTERM, before)
        if remove:
            shutil.rmtree(temp, ignore_errors=True)
