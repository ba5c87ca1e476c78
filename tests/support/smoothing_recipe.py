"""The published smoothing recipe (scikit-learn, per unit) and baseline inputs built from BenchmarkTensors."""

from __future__ import annotations

import numpy as np
from scipy import signal

from nlb_suite.baseline_api import RunContext, TrialSet


def sklearn_recipe(train_heldin: np.ndarray, train_heldout: np.ndarray, eval_heldin: np.ndarray,
                   kern_sd_ms: float, alpha: float, bin_ms: int, log_offset: float = 1e-4,
                   units: slice = slice(None)) -> tuple:
    """nlb_tools' smoothing baseline as published: per-trial np.convolve, one PoissonRegressor per unit.

    Returns eval held-in rates and held-out rates of the held-out `units`.
    """
    from sklearn.linear_model import PoissonRegressor

    win = signal.windows.gaussian(int(6 * kern_sd_ms / bin_ms), int(kern_sd_ms / bin_ms), sym=True)
    win /= win.sum()

    def smooth(x: np.ndarray) -> np.ndarray:
        return np.apply_along_axis(lambda v: np.convolve(v, win, "same"), 1, x)

    tr_s, ev_s = smooth(train_heldin), smooth(eval_heldin)
    X_tr = np.log(tr_s.reshape(-1, tr_s.shape[2]) + log_offset)
    X_ev = np.log(ev_s.reshape(-1, ev_s.shape[2]) + log_offset)
    Y = train_heldout[..., units].reshape(-1, train_heldout[..., units].shape[2])
    preds = []
    for k in range(Y.shape[1]):
        max_iter = 500
        pr = PoissonRegressor(alpha=alpha, max_iter=max_iter).fit(X_tr, Y[:, k])
        while pr.n_iter_ == pr.max_iter and max_iter < 10000:  # the recipe's retry on non-convergence
            max_iter *= 5
            pr = PoissonRegressor(alpha=alpha, max_iter=max_iter).fit(X_tr, Y[:, k])
        preds.append(pr.predict(X_ev))
    heldout = np.clip(np.stack(preds, axis=1), 1e-9, 1e20).reshape(ev_s.shape[:2] + (-1,))
    return ev_s, heldout


def trial_sets(t) -> tuple[TrialSet, TrialSet]:
    """Train and eval TrialSets from BenchmarkTensors."""
    ti, ei, ex = t.train_input, t.eval_input, t.extras
    train = TrialSet("train", ti["train_spikes_heldin"], t.train_trial_ids, ex["train_bins"],
                     ex["train_forward_bins"], spikes_heldout=ti["train_spikes_heldout"])
    evals = TrialSet("eval", ei["eval_spikes_heldin"], t.eval_trial_ids, ex["eval_bins"], ex["eval_forward_bins"])
    return train, evals


def context_for(t, **kw) -> RunContext:
    """The RunContext of BenchmarkTensors `t`, with extra fields `kw`."""
    return RunContext(dataset=t.dataset, bin_ms=t.bin_ms, n_heldin=t.train_spikes_heldin.shape[2],
                      n_heldout=t.train_spikes_heldout.shape[2],
                      n_forward_bins=t.extras["eval_forward_bins"].shape[1], **kw)
