"""The ground-truth oracle: true rates of a synthetic dataset.

They are the ceiling of co-bps and fp-bps (in expectation no model predicts spikes better than the rates
that drew them); vel R2 and psth R2 score other things (a decoder, smoothed-spike PSTHs), where a model
can score higher than the true rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nlb_suite.baseline_api import Baseline, Rates, RunContext, TrialSet
from nlb_suite.errors import NLBInputError

if TYPE_CHECKING:
    from nlb_suite.datasets.session import Session


def load_truth(ctx: RunContext, baseline: str) -> tuple[dict[str, np.ndarray], Session]:
    """(true rates on the session grid per spike group, the session); a one-line error on real data."""
    if not ctx.synthetic or ctx.data_dir is None:
        raise NLBInputError(f"baseline {baseline}: needs a synthetic dataset with ground truth "
                            "(use --synthetic or data from `nlb-eval synth`); real data have no true rates")
    from nlb_suite.datasets.session import load_session
    from nlb_suite.datasets.truth import truth_rates

    session = load_session(ctx.data_dir)
    return truth_rates(session, ctx.bin_ms), session


@dataclass
class OracleConfig:
    """The oracle has nothing to tune; `floor` keeps rates strictly positive for scoring."""

    floor: float = 1e-9


class OracleBaseline(Baseline):
    name = "oracle"
    uses_seed = False  # no random draw: every seed gives the same rates
    description = ("ground-truth rates of a synthetic dataset (the co-bps/fp-bps ceiling; not available "
                   "on real data)")
    Config = OracleConfig

    def __init__(self, config: OracleConfig, context: RunContext):
        super().__init__(config, context)
        self._truth: dict[str, np.ndarray] | None = None

    def fit(self, train: TrialSet) -> None:
        """Load the true rates on the session grid (nothing is learned)."""
        self._truth, _ = load_truth(self.context, self.name)

    def predict(self, trials: TrialSet) -> Rates:
        assert self._truth is not None, "fit() first"
        floor = self.config.floor

        def take(group: str, bins: np.ndarray) -> np.ndarray:
            return np.maximum(self._truth[group][bins], floor).astype(np.float32)

        return Rates(
            heldin=take("spikes", trials.bins),
            heldout=take("heldout_spikes", trials.bins),
            heldin_forward=take("spikes", trials.forward_bins),
            heldout_forward=take("heldout_spikes", trials.forward_bins),
        )
