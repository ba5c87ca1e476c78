"""Hold numpy's and scipy's BLAS to a set thread count for a block of work.

A BLAS product splits its sums across threads, so the last bits of a fit move with the thread count, and
OpenBLAS starts with one thread per core: GPFA on the same file gave 0.15844 co-bps at 1 thread and 0.15835 at 2
(benchmarks/bench_blas_threads.py). Holding the count makes a run's numbers independent of how many cores the
machine has; spinning BLAS threads on shared cores are also slower than one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

DEFAULT_BLAS_THREADS = 1  # scoring, and a run outside a model that sets its own count (plugin models, truth metrics)


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Within the block, numpy's and scipy's BLAS (OpenBLAS, MKL, BLIS) use `n` threads (0: one per core,
    OpenBLAS's own default); the previous counts come back after it.

    A limit reaches only the libraries already loaded, and scipy's wheels bring an OpenBLAS of their own that
    loads with scipy.linalg, so that is imported first: a baseline imported inside the block would otherwise
    bring in a BLAS at the machine's count.
    """
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, so that the limit covers it)

    with threadpool_limits(limits=n if n > 0 else (os.cpu_count() or 1), user_api="blas"):
        yield
