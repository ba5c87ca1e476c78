"""Ground-truth metrics: rate R2 and state R2 on hand-computed cases (floor, extra dimensions, constants, NaN)."""

from __future__ import annotations

import numpy as np
import pytest

from nlb_suite.errors import NLBInputError
from nlb_suite.metrics_latent import STATE_R2_FLOOR, r2_columns, rate_r2, state_r2, state_r2_dims


def test_rate_r2_by_hand():
    """Neuron 1: SS_res 1, SS_tot 2 -> 0.5; neuron 2 exact -> 1; mean 0.75. Trials x bins are pooled."""
    true = np.array([[[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]])  # (1 trial, 3 bins, 2 neurons)
    pred = np.array([[[1.0, 2.0], [2.0, 4.0], [4.0, 6.0]]])
    assert rate_r2(pred, true) == pytest.approx(0.75, abs=1e-12)
    np.testing.assert_allclose(r2_columns(true[0], pred[0]), [0.5, 1.0])
    # the reference is the truth: swapping them changes the score (SS_tot of pred column 1 is 14/3)
    assert rate_r2(true, pred) == pytest.approx((1 - 1 / (14 / 3) + 1) / 2)


def test_rate_r2_drops_nan_rows_and_constant_neurons():
    true = np.array([[1.0, 5.0], [2.0, 5.0], [np.nan, 5.0], [3.0, 5.0]])
    pred = np.array([[1.0, 4.0], [2.0, 6.0], [9.0, 5.0], [4.0, 5.0]])
    assert rate_r2(pred, true) == pytest.approx(0.5)  # neuron 2 has constant truth: no R2, left out
    with pytest.raises(NLBInputError, match="differ in shape"):
        rate_r2(pred[:, :1], true)


def test_state_r2_is_one_for_any_affine_image_of_the_truth():
    rng = np.random.default_rng(0)
    true_tr, true_ev = rng.standard_normal((4, 50, 3)), rng.standard_normal((2, 50, 3))
    a, b = rng.standard_normal((3, 3)), rng.standard_normal(3)
    assert state_r2(true_tr, true_tr @ a + b, true_ev, true_ev @ a + b) == pytest.approx(1.0, abs=1e-10)


def test_extra_dimension_is_penalised():
    """Inferred = [x, x^2] on x in {-1, 0, 1}: x is affine (R2 1), x^2 is not (best affine fit 2/3: R2 0)."""
    x = np.array([[-1.0], [0.0], [1.0]])
    inferred = np.hstack([2 * x + 1, x**2])
    np.testing.assert_allclose(state_r2_dims(x, inferred, x, inferred), [1.0, 0.0], atol=1e-12)
    assert state_r2(x, inferred, x, inferred) == pytest.approx(0.5, abs=1e-12)
    assert state_r2(x, inferred[:, :1], x, inferred[:, :1]) == pytest.approx(1.0)  # without it: 1


def test_floor_at_minus_ten():
    """Eval latents far off the train map: R2 = 1 - 4.81 / (6/900) ~ -720, floored at -10 (per dimension)."""
    x = np.array([[0.0], [1.0], [2.0]])
    y_eval = np.array([[0.0], [0.1], [0.0]])
    raw = 1 - 4.81 / (6 / 900)
    assert raw < -700
    assert state_r2_dims(x, x, x, y_eval)[0] == STATE_R2_FLOOR == -10.0
    two = state_r2_dims(x, np.hstack([x, x]), x, np.hstack([y_eval, x]))  # the floor is per dimension
    np.testing.assert_allclose(two, [-10.0, 1.0])
    assert state_r2(x, np.hstack([x, x]), x, np.hstack([y_eval, x])) == pytest.approx(-4.5)


def test_constant_dimension_scores_zero_and_shapes_are_checked():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    inferred = np.hstack([x, np.full_like(x, 7.0)])
    np.testing.assert_allclose(state_r2_dims(x, inferred, x, inferred), [1.0, 0.0])
    with pytest.raises(NLBInputError, match="do not line up"):
        state_r2(x, inferred[:3], x, inferred)
