"""One JSON writer: NaN/inf written as null everywhere, numpy values as numbers, never a partial file."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from nlb_suite.jsonio import dumps_json, nan_for_null, plain, write_json

ROOT = Path(__file__).resolve().parent.parent


def _strict_load(path: Path):
    """json.load that refuses NaN/Infinity, as strict readers (jq, browsers) do."""
    def refuse(name):
        raise ValueError(f"non-standard constant {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_nan_and_inf_become_null_and_numpy_becomes_numbers(tmp_path):
    obj = [{"mc_maze_split": {"co-bps": np.float32(0.25), "vel R2": float("nan"), "psth R2": np.inf,
                              "n": np.int64(3), "ok": np.bool_(True), "ci": np.array([0.1, np.nan])}},
           {"path": tmp_path, "tuple": (1, -math.inf)}]
    write_json(tmp_path / "m.json", obj)
    back = _strict_load(tmp_path / "m.json")
    assert back == [{"mc_maze_split": {"co-bps": 0.25, "vel R2": None, "psth R2": None, "n": 3, "ok": True,
                                       "ci": [pytest.approx(0.1), None]}},
                    {"path": str(tmp_path), "tuple": [1, None]}]
    assert (tmp_path / "m.json").read_text().endswith("}\n]\n")
    assert dumps_json(obj) == (tmp_path / "m.json").read_text()


def test_unwritable_object_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError, match="cannot write a object as JSON"):
        write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary file left behind
    with pytest.raises(TypeError):
        write_json(tmp_path / "new.json", [object()])
    assert not (tmp_path / "new.json").exists()


def test_nulls_read_back_as_nan():
    back = nan_for_null(json.loads(dumps_json([{"s": {"a": float("nan"), "b": [1.0, float("inf")]}}])))
    assert math.isnan(back[0]["s"]["a"]) and back[0]["s"]["b"][0] == 1.0 and math.isnan(back[0]["s"]["b"][1])
    assert plain({1: 2.0}) == {"1": 2.0}


def test_no_other_json_writer_in_the_package():
    """nlb_suite writes JSON only through nlb_suite.jsonio, so NaN is written one way everywhere."""
    pattern = re.compile(r"\bjson\.dumps?\s*\(")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "nlb_suite").rglob("*.py"))
                 if p.name != "jsonio.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, "write JSON with nlb_suite.jsonio.write_json / dumps_json: " + ", ".join(offenders)


def test_run_folder_nan_metrics_written_as_null_read_back_as_nan(tmp_path):
    """A run's metrics.json/intervals.json hold null for NaN (strict JSON) and read_run gives NaN back."""
    from nlb_suite.runs import read_run

    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "run.json", {"dataset": "mc_maze_small", "bin_ms": 5, "phase": "val", "baseline": "x",
                                  "profile": None})
    (run / "submission.h5").write_bytes(b"")
    write_json(run / "metrics.json", [{"mc_maze_small_split": {"co-bps": 0.2, "vel R2": float("nan")}}])
    write_json(run / "intervals.json", [{"mc_maze_small_split": {"co-bps": [0.1, 0.3],
                                                                 "vel R2": [np.nan, np.nan]}}])
    assert "NaN" not in (run / "metrics.json").read_text() and _strict_load(run / "intervals.json")
    record = read_run(run)
    assert record.metrics["co-bps"] == 0.2 and math.isnan(record.metrics["vel R2"])
    assert record.intervals["co-bps"] == [0.1, 0.3] and all(math.isnan(v) for v in record.intervals["vel R2"])
    assert record.info["profile"] is None  # nulls of run.json stay None
