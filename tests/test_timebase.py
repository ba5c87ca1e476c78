"""Time arithmetic must match pandas' timedelta conversions bit for bit (nlb_tools works in pandas)."""

import numpy as np
import pandas as pd

from nlb_suite.datasets.session import Intervals, _file_offsets
from nlb_suite.datasets.timebase import ceil_div, seconds_to_ns, spike_ms_index


def test_seconds_to_ns_matches_pandas():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 9000, 200_000), np.round(rng.uniform(0, 9000, 200_000), 4),
                        np.arange(0, 100_000) / 1000, [np.nan, 0.0, 1e-9, 12.3456789]])
    expected = pd.to_timedelta(x, unit="s").values.astype("int64").astype(np.float64)
    expected[np.isnan(x)] = np.nan
    np.testing.assert_array_equal(seconds_to_ns(x), expected)


def test_file_offsets_match_pandas_arithmetic():
    # nlb_tools: next file starts at ceil((last index in s + 0.05) * 10) * 100 ms
    for n0 in list(range(1000, 1300)) + [1051, 1151, 10_051, 123_451]:
        last = pd.to_timedelta(np.arange(n0) / 1000, unit="s")[-1].total_seconds()
        expected = int(np.ceil((last + round(50 * 1 / 1000, 4)) * 10) * 100)
        assert _file_offsets([n0, 10])[1] == expected, n0


def test_spike_binning_rounds_then_truncates():
    t = np.array([0.0, 0.0049999999, 0.005, 0.0014999996, 0.0019999999, 1.0])
    np.testing.assert_array_equal(spike_ms_index(t), [0, 5, 5, 1, 2, 1000])


def test_intervals_merge_and_contains():
    iv = Intervals.merge([(10, 20), (0, 5), (18, 30), (40, 40)])
    np.testing.assert_array_equal(iv.starts, [0, 10])
    np.testing.assert_array_equal(iv.ends, [5, 30])
    np.testing.assert_array_equal(iv.contains(np.array([-1, 0, 4, 5, 9, 10, 29, 30])),
                                  [False, True, True, False, False, True, True, False])


def test_ceil_div_negative():
    np.testing.assert_array_equal(ceil_div(np.array([-7, -5, 0, 5, 7]), 5), [-1, -1, 0, 1, 2])
