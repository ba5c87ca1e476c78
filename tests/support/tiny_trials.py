"""Tiny random trials and a one-thread torch fixture, shared by the neural baselines' unit tests."""

from __future__ import annotations

import numpy as np
import pytest

from nlb_suite.baseline_api import TrialSet


def poisson_trials(n: int, bins: int, n_heldin: int, n_heldout: int, n_forward: int, seed: int = 0,
                   rate: float = 0.3, first_id: int = 0) -> TrialSet:
    """Train trials of Poisson(rate) counts with held-out neurons and forward bins (drawn in that order)."""
    rng = np.random.default_rng(seed)

    def counts(t: int, k: int) -> np.ndarray:
        return rng.poisson(rate, size=(n, t, k)).astype(np.float32)
    heldin = counts(bins, n_heldin)
    heldout = counts(bins, n_heldout)
    return TrialSet(split="train", spikes_heldin=heldin, trial_ids=np.arange(first_id, first_id + n),
                    bins=np.tile(np.arange(bins), (n, 1)),
                    forward_bins=np.tile(np.arange(bins, bins + n_forward), (n, 1)), spikes_heldout=heldout,
                    spikes_heldin_forward=counts(n_forward, n_heldin),
                    spikes_heldout_forward=counts(n_forward, n_heldout))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: faster for tiny models on shared cores, and bitwise-reproducible."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
