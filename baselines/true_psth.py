"""The true PSTH: each trial gets the condition average of the true rates (a perfect PSTH model).

A second reference beside the oracle, on synthetic data only. For every trial, held-in, held-out and
forward rates are the mean of the true rates over the TRAIN trials of the same condition (the dataset's
PSTH condition fields), taken bin by bin at the same time relative to the alignment event. It shows how
much a model gains over knowing the condition exactly but nothing about single-trial variability.
A trial whose condition has no train trial gets the mean over all train trials.
Datasets without conditions (mc_rtt) have no PSTH, so this reference is not defined there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from baselines.oracle import load_truth
from nlb_suite.baseline_api import Baseline, Rates, RunContext, TrialSet
from nlb_suite.datasets.specs import get_dataset
from nlb_suite.datasets.timebase import NS_PER_MS
from nlb_suite.errors import NLBInputError


@dataclass
class TruePsthConfig:
    """Nothing to tune; `floor` keeps rates strictly positive for scoring."""

    floor: float = 1e-9


def session_rows(trial_table_ids: np.ndarray, trial_ids: np.ndarray) -> np.ndarray:
    """Row of each trial id in the session's trial table (ids need not be sorted)."""
    order = np.argsort(trial_table_ids, kind="stable")
    return order[np.searchsorted(trial_table_ids[order], trial_ids)]


class TruePsthBaseline(Baseline):
    name = "true_psth"
    uses_seed = False  # no random draw: every seed gives the same rates
    description = ("condition average of the true rates over train trials (a perfect PSTH model; synthetic "
                   "data with trial conditions only)")
    Config = TruePsthConfig

    def __init__(self, config: TruePsthConfig, context: RunContext):
        super().__init__(config, context)
        self._truth: dict[str, np.ndarray] | None = None

    def fit(self, train: TrialSet) -> None:
        """Load the truth and note each train trial's condition and alignment bin (nothing is learned)."""
        spec = get_dataset(self.context.dataset)
        if spec.psth is None:
            raise NLBInputError(f"baseline {self.name}: {self.context.dataset} has no trial conditions (no PSTH), "
                                "so a condition average of the true rates is not defined; use oracle")
        self._truth, session = load_truth(self.context, self.name)
        self._fields = spec.psth.cond_fields
        self._align_field = spec.train_window.align_field
        self._table = session.trials
        self._train_cond, self._train_anchor = self._describe(train)
        self._cache: dict[tuple, dict[str, np.ndarray]] = {}

    def _describe(self, trials: TrialSet) -> tuple[list[tuple], np.ndarray]:
        """Each trial's condition (tuple of field values) and the first bin starting at or after its event."""
        rows = session_rows(np.asarray(self._table["trial_id"]), np.asarray(trials.trial_ids))
        values = np.stack([np.asarray(self._table[f], dtype=np.float64)[rows] for f in self._fields], axis=1)
        align = np.asarray(self._table[self._align_field], dtype=np.float64)[rows]
        bin_ns = self.context.bin_ms * NS_PER_MS
        anchor = -np.floor_divide(-align, bin_ns)  # ceil: the window's own rule for its first bin
        return [tuple(v) for v in values], anchor

    def _mean(self, cond: tuple, rel: np.ndarray, kind: str) -> dict[str, np.ndarray]:
        """Mean true rates (bins x units, per spike group) over the train trials of `cond` at offsets `rel`."""
        key = (cond, kind, rel.tobytes())
        if key not in self._cache:
            members = [j for j, c in enumerate(self._train_cond) if c == cond]
            if not members:  # a condition with no train trial: the average over all train trials
                members = list(range(len(self._train_cond)))
            idx = self._train_anchor[members][:, None] + rel[None, :]
            out = {}
            for group, truth in self._truth.items():
                inside = (idx >= 0) & (idx < len(truth))
                vals = truth[np.clip(idx, 0, len(truth) - 1).astype(np.int64)]
                vals[~inside] = np.nan
                out[group] = vals
            self._cache[key] = {g: _nanmean0(v) for g, v in out.items()}
        return self._cache[key]

    def predict(self, trials: TrialSet) -> Rates:
        assert self._truth is not None, "fit() first"
        conds, anchors = self._describe(trials)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("spikes", "heldout_spikes", "f_spikes",
                                                               "f_heldout_spikes")}
        for cond, anchor, bins, fbins in zip(conds, anchors, trials.bins, trials.forward_bins):
            for kind, b in (("", bins), ("f_", fbins)):
                means = self._mean(cond, (np.asarray(b) - anchor).astype(np.int64), kind)
                for group in ("spikes", "heldout_spikes"):
                    parts[kind + group].append(means[group])
        floor = self.config.floor

        def stack(name: str) -> np.ndarray:
            return np.maximum(np.stack(parts[name]), floor).astype(np.float32)

        return Rates(heldin=stack("spikes"), heldout=stack("heldout_spikes"),
                     heldin_forward=stack("f_spikes"), heldout_forward=stack("f_heldout_spikes"))


def _nanmean0(x: np.ndarray) -> np.ndarray:
    """Mean over the first axis ignoring NaN; 0 where every value is NaN (then floored when predicting)."""
    ok = ~np.isnan(x)
    total = np.where(ok, x, 0.0).sum(axis=0)
    n = ok.sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), 0.0)
