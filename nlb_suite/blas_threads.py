"""Hold numpy's and scipy's BLAS to a set thread count for a block of work.

A BLAS product splits its sums across threads, so the last bits of a fit move with the thread count, and
OpenBLAS starts with one thread per core: GPFA on the same file gave 0.158441 co-bps at 1 thread and 0.158354
at 2 (benchmarks/bench_blas_threads.py). Holding the count makes a run's numbers independent of how many cores
the machine has. `nlb-eval` holds every command at DEFAULT_BLAS_THREADS, and so do `runs.execute`, scoring and
its bootstrap for Python callers; a model sets its own count inside its fit (`cpu_threads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

DEFAULT_BLAS_THREADS = 1  # every command, run and score, outside a model that sets its own count


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Within the block (or the decorated function), numpy's and scipy's BLAS (OpenBLAS, MKL, BLIS) use `n` >= 1
    threads; the previous counts come back after it, also on an exception.

    A limit reaches only the libraries already loaded, and scipy's wheels bring an OpenBLAS of their own that
    loads with scipy.linalg, so that is imported first: a baseline imported inside the block would otherwise
    bring in a BLAS at the machine's count.
    """
    if n < 1:
        raise ValueError(f"blas_threads: n must be >= 1 (got {n})")
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, so that the limit covers it)

    with threadpool_limits(limits=n, user_api="blas"):
        yield
