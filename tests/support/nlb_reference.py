"""The nlb_tools reference: its tensors and scores for the tests to compare ours with, value by value."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

logging.getLogger("nlb_tools").setLevel(logging.ERROR)


def nlb_tools_tensors(folder, name: str, bin_ms: int, phase: str, include_psth: bool = True) -> dict:
    """Run nlb_tools' three tensor functions on `folder`; returns {'train_input', 'eval_input', 'target'}."""
    from nlb_tools.make_tensors import (
        make_eval_input_tensors,
        make_eval_target_tensors,
        make_train_input_tensors,
    )
    from nlb_tools.nwb_interface import NWBDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = NWBDataset(str(folder))
        ds.resample(bin_ms)
        train_split = "train" if phase == "val" else ["train", "val"]
        eval_split = "val" if phase == "val" else "test"
        out = {
            "train_input": make_train_input_tensors(ds, name, train_split, save_file=False,
                                                    include_behavior=True, include_forward_pred=True),
            "eval_input": make_eval_input_tensors(ds, name, eval_split, save_file=False),
        }
        if phase == "val":
            out["target"] = make_eval_target_tensors(ds, name, "train", "val", save_file=False,
                                                     include_psth=include_psth)
    return out


def assert_same(ours: dict, theirs: dict, path: str = "") -> None:
    """Same keys; integer-valued arrays identical; floats equal to float32 precision; NaN where NaN."""
    assert sorted(ours) == sorted(theirs), f"{path}: keys {sorted(ours)} != {sorted(theirs)}"
    for key in theirs:
        a, b = ours[key], theirs[key]
        where = f"{path}/{key}"
        if isinstance(b, dict):
            assert_same(a, b, where)
            continue
        b = np.asarray(b)
        if b.dtype == object:
            assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} lists"
            for i, (x, y) in enumerate(zip(a, b)):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{where}[{i}]")
            continue
        assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
        if "spikes" in key or b.dtype.kind in "biu" or "mask" in key or "jitter" in key:
            np.testing.assert_array_equal(np.asarray(a, dtype=np.float64), b.astype(np.float64), err_msg=where)
        else:
            np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b.astype(np.float64), rtol=2e-6,
                                       atol=1e-7, equal_nan=True, err_msg=where)


def nlb_tools_evaluate(target, submission) -> list:
    """nlb_tools.evaluation.evaluate, with numpy copies so it cannot alter our inputs."""
    import copy

    from nlb_tools.evaluation import evaluate

    if isinstance(target, dict):
        target, submission = copy.deepcopy(target), copy.deepcopy(submission)
    return evaluate(target, submission)


def assert_results_equal(ours: list, ref: list, tol: float = 1e-9) -> None:
    """Same split keys, metric names and order; every value within `tol`."""
    assert [list(d) for d in ours] == [list(d) for d in ref]
    for a, b in zip(ours, ref):
        (ka, va), = a.items()
        (_, vb), = b.items()
        assert list(va) == list(vb), ka
        for m in va:
            assert va[m] == pytest.approx(vb[m], abs=tol, rel=0, nan_ok=True), (ka, m, va[m], vb[m])
