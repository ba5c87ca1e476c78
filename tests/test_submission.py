"""nlb_suite.submission: write/read round trip, combine, shape expectations from a target, validation."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nlb_suite.errors import NLBInputError
from nlb_suite.submission import (
    combine_submissions,
    expected_from_target,
    read_submission,
    validate_submission,
    write_submission,
)
from support.eval_targets import make_submission, make_target


def _sub(kind="area2_bump", bin_ms=20):
    t, tr = make_target(kind, bin_ms)
    return t, make_submission(t, tr, "realistic")


def test_write_read_round_trip_float32_gzip(tmp_path):
    _, sub = _sub()
    path = write_submission(sub, tmp_path / "a" / "s.h5")
    back = read_submission(path)
    assert set(back) == {"area2_bump_20"}
    for name, arr in sub["area2_bump_20"].items():
        assert back["area2_bump_20"][name].dtype == np.float32
        np.testing.assert_array_equal(back["area2_bump_20"][name], arr.astype(np.float32))
    with h5py.File(path) as f:
        assert f["area2_bump_20/train_rates_heldin"].compression == "gzip"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["s.h5"]


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_submission({"mc_maze": {"eval_rates_heldout": np.array(["x"], dtype=object)}}, tmp_path / "s.h5")
    assert list(tmp_path.iterdir()) == []


def test_read_errors(tmp_path):
    with pytest.raises(NLBInputError, match=r"/nope\.h5: file not found$"):
        read_submission(tmp_path / "nope.h5")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(NLBInputError, match=r"/t\.txt: not an HDF5 file$"):
        read_submission(tmp_path / "t.txt")


def test_combine_rejects_duplicates():
    _, a = _sub("mc_maze", 5)
    _, b = _sub("mc_rtt", 20)
    merged = combine_submissions([("a.h5", a), ("b.h5", b)])
    assert list(merged) == ["mc_maze", "mc_rtt_20"]
    with pytest.raises(NLBInputError, match=r"^c\.h5: mc_maze: group also present in a\.h5"):
        combine_submissions([("a.h5", a), ("c.h5", a)])


def test_expected_shapes_from_target_and_validation():
    t, sub = _sub("dmfc_rsg", 5)
    exp = expected_from_target(t)
    assert exp["dmfc_rsg"]["eval_rates_heldin"] == (30, 48, 12)
    assert exp["dmfc_rsg"]["train_rates_heldout"] == (60, None, 5)  # dmfc behaviour is per trial
    assert validate_submission(sub, "s.h5", exp).ok
    sub["dmfc_rsg"]["train_rates_heldout"] = sub["dmfc_rsg"]["train_rates_heldout"][:59]
    v = validate_submission(sub, "s.h5", exp)
    assert v.problems == [
        "s.h5: dmfc_rsg: train trial counts differ: train_rates_heldin 60, train_rates_heldout 59 "
        "(expected one count)",
        "s.h5: dmfc_rsg/train_rates_heldout: shape (59, 48, 5) (expected (60, ?, 5))",
    ]


def test_validate_empty_and_not_in_target():
    assert validate_submission({}, "s.h5").problems[0].startswith("s.h5: no dataset groups (expected one or more")
    t, _ = _sub("mc_maze", 5)
    _, sub = _sub("mc_rtt", 5)
    v = validate_submission(sub, "s.h5", expected_from_target(t))
    assert v.problems == ["s.h5: mc_rtt: not in the target (target groups: mc_maze)"]
    v = validate_submission(sub, "s.h5")
    assert v.ok and "differ from the published mc_rtt shapes" in v.warnings[-1]
