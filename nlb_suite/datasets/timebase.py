"""Time conversions that reproduce nlb_tools' pandas timedelta arithmetic bit for bit, in numpy.

Trial times are kept as float64 nanoseconds (NaN for missing); float64 holds integer ns exactly up to
about 104 days, far beyond any session.
"""

from __future__ import annotations

import numpy as np

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


def seconds_to_ns(seconds: np.ndarray) -> np.ndarray:
    """Seconds -> integer ns as float64, exactly like `pd.to_timedelta(x, unit='s')` (NaN stays NaN)."""
    x = np.asarray(seconds, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    v = x[ok]
    base = v.astype(np.int64)
    frac = np.round(v - base, 9)
    out[ok] = (base * NS_PER_S + (frac * NS_PER_S).astype(np.int64)).astype(np.float64)
    return out


def spike_ms_index(seconds: np.ndarray) -> np.ndarray:
    """1 ms bin of each spike time, as nlb_tools bins them: int(round(t * 1000, 6))."""
    return np.round(np.asarray(seconds, dtype=np.float64) * 1000.0, 6).astype(np.int64)


def ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    """Integer ceil(a / b) for int64 arrays (also for negative a)."""
    return -((-a) // b)
