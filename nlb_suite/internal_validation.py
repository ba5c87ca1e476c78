"""A run's score on its baseline's internal validation split: the one score model selection may use.

A trained baseline holds back some train trials (`Baseline.validation_trials()`); the run scores its rates
on them like the benchmark scores eval trials (co-bps of the held-out neurons, fp-bps of the forward bins,
null = the mean rate over those trials) and records the result in run.json under `internal_validation`.
`nlb-eval ensemble` ranks and sizes ensembles by it; nothing here reads the eval trials. A run refitted on all
train trials (`refit: true`) has trained on them: it records its selection fit's score under `selection_fit`
and none under `internal_validation`.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .baseline_api import Baseline, Rates, TrialSet
from .errors import NLBInputError
from .metrics import bits_per_spike

FIELD = "internal_validation"  # the run.json key
SELECTION_FIELD = "selection_fit"  # run.json: a refit run's selection-fit scores (its own FIELD is null)


def score_trials(rates: Rates, trials: TrialSet, idx: np.ndarray) -> dict[str, Optional[float]]:
    """co-bps (held-out neurons) and fp-bps (forward bins, held-in + held-out; None without forward rates or
    spikes) of `rates` on the train trials `idx`."""
    co = bits_per_spike(rates.heldout[idx], trials.spikes_heldout[idx], "internal validation co-bps")
    fp = None
    parts = (rates.heldin_forward, rates.heldout_forward, trials.spikes_heldin_forward, trials.spikes_heldout_forward)
    if all(p is not None for p in parts):
        fwd_rates = np.concatenate([rates.heldin_forward[idx], rates.heldout_forward[idx]], axis=2)
        fwd_spikes = np.concatenate([trials.spikes_heldin_forward[idx], trials.spikes_heldout_forward[idx]], axis=2)
        if np.nansum(fwd_spikes) > 0:
            fp = bits_per_spike(fwd_rates, fwd_spikes, "internal validation fp-bps")
    return {"co-bps": float(co), "fp-bps": None if fp is None else float(fp)}


def internal_validation(model: Baseline, train: TrialSet, rates: Rates) -> Optional[dict[str, Any]]:
    """{"co-bps", "fp-bps", "n_trials", "trial_ids"} on the model's validation trials, or None if it has none."""
    idx = model.validation_trials()
    if idx is None:
        return None
    idx = np.asarray(idx)
    n = train.n_trials
    if idx.ndim != 1 or len(idx) == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 \
            or idx.max() >= n or len(np.unique(idx)) != len(idx):
        raise NLBInputError(f"baseline {model.name}: validation_trials() must be distinct indices into the "
                            f"{n} train trials (got {idx!r})")
    if train.spikes_heldout is None:
        return None
    return {**score_trials(rates, train, idx), "n_trials": int(len(idx)),
            "trial_ids": [int(t) for t in np.asarray(train.trial_ids)[idx]]}
