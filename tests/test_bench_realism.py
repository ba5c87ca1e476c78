"""benchmarks/bench_realism.py: the per-seed co-bps table (headroom over smoothing, smoothing's share)."""

import pytest

from support.bench_scripts import load_bench


def test_co_bps_by_seed_gives_each_seeds_headroom_and_share():
    bench = load_bench("bench_realism")
    per_seed = [{"smoothing": {"co-bps": 0.2}, "true PSTH": {"co-bps": 0.1, "psth R2": 0.5},
                 "true rates": {"co-bps": 0.32}},
                {"smoothing": {"co-bps": 0.15}, "true PSTH": {}, "true rates": {"co-bps": 0.3}}]
    headers, rows = bench.co_bps_by_seed([4, 9], per_seed)
    assert headers == ["data seed", "smoothing", "true PSTH", "true rates", "headroom", "smoothing / true"]
    assert rows[0][0] == "4" and rows[0][1:] == pytest.approx([0.2, 0.1, 0.32, 0.12, 0.625])
    assert rows[1][0] == "9" and rows[1][3:] == pytest.approx([0.3, 0.15, 0.5])
    assert rows[1][2] != rows[1][2]  # a recipe without co-bps is NaN, not a number
