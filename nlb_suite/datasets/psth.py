"""Condition-averaged PSTH targets (psth R2), as nlb_tools' `_make_psth` defines them.

Conditions are the sorted unique combinations of the condition fields; trials shorter than 0.8x the
condition's mean length are dropped; the PSTH is the NaN-skipping mean over trials at each aligned
bin, cut to the shortest trial and padded with NaN to a common length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .psth_smoothing import condition_sums
from .session import Session
from .specs import PsthSpec
from .windows import trial_rows


@dataclass
class PsthTarget:
    psth: np.ndarray  # (n_conditions, n_bins, n_heldin + n_heldout)
    train_cond_idx: np.ndarray  # object array: per condition, indices into the train trials
    eval_cond_idx: np.ndarray  # object array: per condition, indices into the eval trials
    conditions: list[tuple]


def _conditions(session: Session, fields: tuple[str, ...], usable: np.ndarray) -> list[tuple]:
    cols = [np.asarray(session.trials[f], dtype=np.float64) for f in fields]
    ok = usable & np.all([~np.isnan(c) for c in cols], axis=0)
    return sorted({tuple(float(c[i]) for c in cols) for i in np.flatnonzero(ok)})


def _pad(psth: np.ndarray, max_len: int, pad: str) -> np.ndarray:
    n = psth.shape[0]
    if n == max_len:
        return psth
    if n > max_len:  # nlb_tools keeps psth[max_len:] when front-padding; reproduced as is
        return psth[:max_len] if pad == "back" else psth[max_len:]
    fill = np.full((max_len - n, psth.shape[1]), np.nan)
    return np.concatenate([psth, fill] if pad == "back" else [fill, psth])


def make_psth(session: Session, spec: PsthSpec, bin_ms: int, train_mask: np.ndarray, eval_mask: np.ndarray,
              ignore_mask: np.ndarray) -> PsthTarget:
    """PSTHs of held-in and held-out units per condition, with the train/eval trial indices per condition."""
    t = session.trials
    skip = np.zeros(session.n_trials, bool)
    if spec.skip_field is not None:
        field, value = spec.skip_field
        skip = np.asarray(t[field], dtype=np.float64) == value
    align = spec.window.align_field or "start_time"
    has_align = ~np.isnan(np.asarray(t[align], dtype=np.float64))
    train_ids = t["trial_id"][train_mask & has_align]
    eval_ids = t["trial_id"][eval_mask & has_align]
    groups = [session.groups[g] for g in ("spikes", "heldout_spikes") if g in session.groups]
    cols = [np.asarray(t[f], dtype=np.float64) for f in spec.cond_fields]

    psths, train_idx, eval_idx, kept = [], [], [], []
    for comb in _conditions(session, spec.cond_fields, ~ignore_mask):
        match = np.all([c == v for c, v in zip(cols, comb)], axis=0)
        include = match & ~ignore_mask & ~skip
        if not include.any():
            continue
        rows = trial_rows(session, spec.window, include, bin_ms, allow_nans=True)
        lengths = rows.lengths
        good = lengths >= 0.8 * lengths.mean()
        min_len = int(lengths[good].min())
        psth = np.concatenate(
            [condition_sums(g, rows, good, bin_ms, spec.kern_sd_ms).mean() for g in groups], axis=1)
        psth = psth[:min_len] if spec.pad == "back" else psth[-min_len:]
        ids = t["trial_id"][rows.trials[good]]
        psths.append(psth)
        train_idx.append(np.sort(np.flatnonzero(np.isin(train_ids, ids))))
        eval_idx.append(np.sort(np.flatnonzero(np.isin(eval_ids, ids))))
        kept.append(comb)

    max_len = max(p.shape[0] for p in psths) if spec.seg_len_ms is None else int(round(spec.seg_len_ms / bin_ms))
    stacked = np.stack([_pad(p, max_len, spec.pad) for p in psths])
    as_objects = lambda lists: np.array(lists + [None], dtype=object)[:-1]  # noqa: E731
    return PsthTarget(stacked, as_objects(train_idx), as_objects(eval_idx), kept)
