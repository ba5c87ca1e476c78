"""Ground-truth scores of one run on a synthetic dataset: rate R2 and (when the model exposes latents) state R2.

Rates are scored on the eval trials' windows, held-in and held-out units together (a model predicts both
from held-in spikes); state R2 maps the true latents to the model's latents on the train trials and scores
the eval trials (nlb_suite.metrics_latent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .baseline_api import Baseline, Rates, TrialSet
from .errors import NLBInputError
from .metrics_latent import rate_r2, state_r2

TRUTH_METRICS = ("rate R2", "state R2")
TRUTH_FILE = "truth_metrics.json"


def model_latents(model: Baseline, trials: TrialSet) -> Optional[np.ndarray]:
    """The baseline's latents for `trials` as a (trials, bins, dims) float array, or None if it exposes none."""
    lat = model.latents(trials)
    if lat is None:
        return None
    lat = np.asarray(lat, dtype=np.float64)
    n, t = trials.spikes_heldin.shape[:2]
    if lat.ndim != 3 or lat.shape[:2] != (n, t) or lat.shape[2] < 1:
        raise NLBInputError(f"baseline {model.name}: {trials.split} latents have shape {lat.shape} "
                            f"(expected ({n}, {t}, dims))")
    return lat


def truth_scores(data_dir: Path, bin_ms: int, model: Baseline, train: TrialSet, evals: TrialSet,
                 rates_eval: Rates) -> dict[str, Any]:
    """{"rate R2", "rate R2 held-in", "rate R2 held-out", "state R2" (None without latents), "latent dims",
    "true latent dims"} of a fitted model against the ground truth of `data_dir`."""
    from .datasets.session import load_session
    from .datasets.truth import truth_rates
    from .datasets.truth_latents import truth_latents

    session = load_session(data_dir)
    rates = truth_rates(session, bin_ms)
    true_in, true_out = rates["spikes"][evals.bins], rates["heldout_spikes"][evals.bins]
    out: dict[str, Any] = {
        "rate R2": rate_r2(np.concatenate([rates_eval.heldin, rates_eval.heldout], axis=2),
                           np.concatenate([true_in, true_out], axis=2)),
        "rate R2 held-in": rate_r2(rates_eval.heldin, true_in),
        "rate R2 held-out": rate_r2(rates_eval.heldout, true_out),
        "state R2": None, "latent dims": None,
    }
    true_lat = truth_latents(session, bin_ms)
    out["true latent dims"] = int(true_lat.shape[1])
    lat_train = model_latents(model, train)
    lat_eval = model_latents(model, evals) if lat_train is not None else None
    if lat_train is not None and lat_eval is not None:
        out["state R2"] = state_r2(true_lat[train.bins], lat_train, true_lat[evals.bins], lat_eval)
        out["latent dims"] = int(lat_train.shape[2])
    return out


def submission_truth_scores(data_dir: Path, submission: dict[str, dict[str, np.ndarray]],
                            phase: str = "val") -> dict[str, dict[str, Any]]:
    """Per submission group: rate R2 of its eval rates against the ground truth of the synthetic `data_dir`.

    The eval trials are those `tensors`/`run` build from that folder for `phase`; a submission carries no
    latents, so state R2 comes only from `nlb-eval run` (truth_metrics.json).
    """
    from .datasets.session import load_session
    from .datasets.tensors import load
    from .datasets.truth import find_truth, truth_rates
    from .submission import GROUPS, group_dataset

    if find_truth(Path(data_dir)) is None:
        raise NLBInputError(f"--truth: {data_dir}: no ground_truth.h5 (a folder written by `nlb-eval synth`)")
    session = load_session(data_dir)
    out: dict[str, dict[str, Any]] = {}
    for key, group in submission.items():
        if key not in GROUPS or "eval_rates_heldin" not in group or "eval_rates_heldout" not in group:
            continue
        name, bin_ms = group_dataset(key)
        bins = load(name, data_dir, bin_ms=bin_ms, phase=phase, include_psth=False).extras["eval_bins"]
        pred = np.concatenate([group["eval_rates_heldin"], group["eval_rates_heldout"]], axis=2)
        if pred.shape[:2] != bins.shape:
            raise NLBInputError(f"--truth: {key}: the submission's eval rates cover {pred.shape[:2]} trials x bins, "
                                f"the {phase} eval trials of {data_dir} {bins.shape} (another dataset or phase?)")
        rates = truth_rates(session, bin_ms)
        true = np.concatenate([rates["spikes"][bins], rates["heldout_spikes"][bins]], axis=2)
        out[key] = {"rate R2": rate_r2(pred, true),
                    "rate R2 held-in": rate_r2(group["eval_rates_heldin"], rates["spikes"][bins]),
                    "rate R2 held-out": rate_r2(group["eval_rates_heldout"], rates["heldout_spikes"][bins])}
    return out
