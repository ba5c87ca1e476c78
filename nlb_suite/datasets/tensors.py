"""The benchmark tensors (train input, eval input, eval target) for one dataset, bin width and phase.

Produces the same keys, nesting, dtypes and values as nlb_tools' `make_train_input_tensors(
include_behavior=True, include_forward_pred=True)`, `make_eval_input_tensors` and
`make_eval_target_tensors(include_psth=True)`, straight from spike events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import NLBInputError
from .psth import make_psth
from .session import Session, load_session
from .specs import FORWARD_MS, DatasetSpec, Window, check_bin, get_dataset
from .timebase import NS_PER_MS
from .windows import TrialRows, trial_rows

PHASES = ("val", "test")


def check_phase(phase: str) -> str:
    """Return `phase` if it is val or test, else a one-line error (as check_bin does for bins)."""
    if phase not in PHASES:
        raise NLBInputError(f"--phase: unknown phase {phase!r} (expected one of val, test)")
    return phase


@dataclass
class BenchmarkTensors:
    """All arrays of one dataset/bin/phase. Spikes are counts per bin (float32), trials x bins x units.

    `train_input`, `eval_input` and `target` hold the arrays under nlb_tools' names; the target is
    None in phase test (its held-out data are hidden).
    """

    dataset: str
    bin_ms: int
    phase: str
    train_input: dict[str, np.ndarray]
    eval_input: dict[str, np.ndarray]
    target: Optional[dict[str, np.ndarray]]
    train_trial_ids: np.ndarray
    eval_trial_ids: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # *_bins: global bin index per time step

    @property
    def result_key(self) -> str:
        return get_dataset(self.dataset).result_key(self.bin_ms)

    @property
    def train_spikes_heldin(self) -> np.ndarray:
        return self.train_input["train_spikes_heldin"]

    @property
    def train_spikes_heldout(self) -> np.ndarray:
        return self.train_input["train_spikes_heldout"]

    @property
    def eval_spikes_heldin(self) -> np.ndarray:
        return self.eval_input["eval_spikes_heldin"]

    def target_dict(self) -> dict[str, dict[str, np.ndarray]]:
        """The target nested under its result group, as nlb_tools saves it."""
        if self.target is None:
            raise NLBInputError(f"{self.dataset}: phase test has no local target (held-out data are hidden)")
        return {self.result_key: self.target}


def _as_float32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32, copy=False)


class TensorBuilder:
    """Builds windows and values from a Session, caching what several tensors share."""

    def __init__(self, session: Session, spec: DatasetSpec, bin_ms: int):
        self.session, self.spec, self.bin_ms = session, spec, check_bin(bin_ms)
        needed = self._needed_fields()
        for f in session.files:
            split = f.trials.get("split")
            window_fields = {spec.train_window.align_field, spec.train_window.start_field}
            # files with training trials need every field; others (e.g. test files) the window fields
            has_training = split is not None and np.isin(split.astype(str), ["train", "val"]).any()
            want = needed if has_training else sorted(n for n in needed if n in window_fields or n == "split")
            missing = [n for n in want if n not in f.trials]
            if missing:
                raise NLBInputError(f"{f.path}: trials: missing field(s) {', '.join(missing)} "
                                    f"(needed for {spec.name})")

    def _needed_fields(self) -> list[str]:
        s = self.spec
        names = {"split", s.train_window.align_field, s.eval_window.start_field, s.eval_window.end_field,
                 s.eval_window.align_field}
        if s.behavior_source == "trial_info":
            names |= set(s.behavior_fields)
        if s.psth:
            names |= set(s.psth.cond_fields)
        for extra in (s.behavior_mask, s.decode_mask_field):
            if extra:
                names.add(extra[0] if isinstance(extra, tuple) else extra)
        if s.jitter:
            names.add("tp")
        return sorted(n for n in names if n)

    # ----- shared pieces ----------------------------------------------------------------------
    @cached_property
    def nan_bins(self) -> np.ndarray:
        """Bins where any column of the nlb_tools session table is NaN (rows its dropna removes)."""
        n = self.session.n_bins(self.bin_ms)
        starts = np.arange(n, dtype=np.int64) * self.bin_ms
        nan = self.session.series_nan_bins(self.bin_ms)
        for g in self.session.groups.values():
            nan |= ~g.valid.contains(starts)
        return nan

    @cached_property
    def _coarse(self) -> dict[str, np.ndarray]:
        return {name: g.ms // self.bin_ms for name, g in self.session.groups.items()}

    @cached_property
    def _behavior(self) -> np.ndarray:
        return self.session.resampled_series(self.spec.behavior_fields[0], self.bin_ms)

    def rows(self, window: Window, include: np.ndarray, *, offsets=None, align_values=None,
             allow_nans: bool = False) -> TrialRows:
        return trial_rows(self.session, window, include, self.bin_ms, offsets=offsets,
                          allow_nans=allow_nans, nan_bins=self.nan_bins, align_values=align_values)

    def spike_values(self, group_name: str, bins: np.ndarray) -> np.ndarray:
        """Counts (rows x units) of a spike group in the given bins; NaN where the group is NaN."""
        group = self.session.groups.get(group_name)
        if group is None:
            raise NLBInputError(f"{self.session.files[0].path}: units: no {group_name.replace('_', ' ')} units")
        need, inverse = np.unique(bins, return_inverse=True)
        coarse = self._coarse[group_name]
        pos = np.searchsorted(need, coarse)
        hit = pos < len(need)
        hit[hit] = need[pos[hit]] == coarse[hit]
        counts = np.bincount(pos[hit] * group.n_units + group.unit[hit], minlength=len(need) * group.n_units)
        values = counts.reshape(len(need), group.n_units).astype(np.float32)[inverse]
        values[~group.valid.contains(bins * self.bin_ms)] = np.nan
        return values

    def check_nan_free(self, rows: TrialRows, what: str) -> None:
        """One clear error when NaN bins (gaps, NaN behaviour) would make nlb_tools' tensor unusable.

        nlb_tools drops NaN bins from these windows: a trial losing some of them cannot be stacked (it
        fails), one losing all of them vanishes from this tensor only, so its trials no longer line up
        with the behaviour and forward tensors. Real NLB files keep train/val windows clean.
        """
        where = self.session.files[0].path.parent
        ids, split = self.session.trials["trial_id"], self.session.trials["split"]
        if rows.emptied is not None and len(rows.emptied):
            k = int(rows.emptied[0])
            raise NLBInputError(
                f"{where}: {what}: every bin of trial {ids[k]} (split {split[k]}) holds a NaN (recording gap "
                "in units/obs_intervals or NaN behaviour); nlb_tools would drop that trial from this tensor "
                "only, misaligning it with the others (expected NaN-free train/val windows)")
        lengths = rows.lengths
        if rows.nan_dropped is not None and len(lengths) and not np.all(lengths == lengths[0]) \
                and rows.nan_dropped.any():
            i = int(np.argmax(rows.nan_dropped))
            k = int(rows.trials[i])
            full = int(lengths[i] + rows.nan_dropped[i])
            raise NLBInputError(
                f"{where}: {what}: {int(rows.nan_dropped[i])} of the {full} bins of trial {ids[k]} (split "
                f"{split[k]}) hold a NaN (recording gap in units/obs_intervals or NaN behaviour); nlb_tools "
                "drops them and then cannot stack trials of unequal length (expected NaN-free train/val windows)")

    def stacked(self, group_name: str, rows: TrialRows, what: str) -> np.ndarray:
        where = self.session.files[0].path.parent
        self.check_nan_free(rows, what)
        try:
            n, t = rows.stacked(what)
        except ValueError as exc:
            raise NLBInputError(f"{where}: {exc}") from None
        if n == 0 or t == 0:
            raise NLBInputError(f"{where}: {what}: no trial has data in its window (alignment times missing "
                                "or outside the recording?)")
        return self.spike_values(group_name, rows.bins).reshape(n, t, -1)

    def jagged(self, values: np.ndarray, rows: TrialRows, include: np.ndarray, jitter_bins=None,
               pad: str = "back", seg_len: Optional[int] = None) -> np.ndarray:
        """nlb_tools' `make_jagged_array`: per-trial rows into a NaN-padded (trials x len x ch) array."""
        wanted = np.flatnonzero(include)
        where = {int(tr): i for i, tr in enumerate(rows.trials)}
        lengths = rows.lengths
        max_len = int(lengths.max()) if seg_len is None else int(round(seg_len / self.bin_ms))
        out = np.full((len(wanted), max_len, values.shape[1]), np.nan)
        for i, tr in enumerate(wanted):
            if tr not in where:
                raise NLBInputError(f"{self.session.files[0].path}: trial {tr} has no data in its window")
            k = where[tr]
            data = values[rows.offsets[k] : rows.offsets[k + 1]]
            jit = 0 if jitter_bins is None else int(jitter_bins[i])
            if pad == "front":
                if jit == 0:
                    data = data[-max_len:]
                    out[i, out.shape[1] - len(data):] = data
                elif jit > 0:
                    data = data[-(max_len - jit):]
                    out[i, max_len - (len(data) + jit) : max_len - jit] = data
                else:
                    data = data[-(max_len - jit) : jit]
                    out[i, max_len - len(data):] = data
            elif jit > 0:
                data = data[jit : max_len + jit]
                out[i, : len(data)] = data
            else:
                data = data[: max_len - jit]
                out[i, -jit : len(data) - jit] = data
        return out

    def behavior_rows(self, window: Window, include: np.ndarray) -> TrialRows:
        a, b = window.offsets or (0, 0)
        lag = self.spec.lag_ms
        offsets = (a + lag, b + lag) if window.offsets else (lag, lag)
        return self.rows(window, include, offsets=offsets, allow_nans=True)

    def behavior(self, window: Window, include: np.ndarray) -> np.ndarray:
        """Behaviour of the included trials: lagged series windows or trial fields, masked."""
        spec, t = self.spec, self.session.trials
        if spec.behavior_source == "data":
            rows = self.behavior_rows(window, include)
            out = self.jagged(self._behavior[rows.bins], rows, include)
        else:
            out = np.stack([np.asarray(t[f], dtype=np.float64)[include] for f in spec.behavior_fields], axis=1)
        if spec.behavior_mask is not None:
            fld, value = spec.behavior_mask
            out[~(np.asarray(t[fld], dtype=np.float64)[include] == value)] = np.nan
        return out

    def jitter_ms(self, include: np.ndarray, seed: int = 0) -> np.ndarray:
        """dmfc_rsg's random go-time shift per included trial, drawn exactly as nlb_tools draws it."""
        t = self.session.trials
        split = t["split"][include].astype(str)
        tp = np.asarray(t["tp"], dtype=np.float64)[include]
        hi = np.where(split == "test", 0.0, np.clip(1500.0 - tp, 0.0, 300.0))
        lo = np.zeros(len(hi))
        lo = np.floor(np.round(lo / self.bin_ms, 4))
        hi = np.floor(np.round(hi / self.bin_ms, 4))
        draws = np.random.RandomState(seed).random_sample(len(hi))
        return np.round(draws * (hi - lo) + lo) * self.bin_ms

    def jittered_align(self, field_name: str, include: np.ndarray, jitter: np.ndarray) -> np.ndarray:
        values = np.full(self.session.n_trials, np.nan)
        values[include] = self.session.trials[field_name][include] + jitter * NS_PER_MS
        return values

    def forward_rows(self, window: Window, include: np.ndarray, align_values, allow_nans: bool = False) -> TrialRows:
        """The 200 ms after each window (nlb_tools' `_prep_fp`): overlap allowed."""
        end = (window.offsets or (0, 0))[1]
        fp_window = Window(window.align_field, (end, end + FORWARD_MS), allow_overlap=True)
        return self.rows(fp_window, include, align_values=align_values, allow_nans=allow_nans)

    def forward(self, group_name: str, window: Window, include: np.ndarray, align_values) -> np.ndarray:
        return self.stacked(group_name, self.forward_rows(window, include, align_values), "forward window")


def _phase_masks(session: Session, phase: str) -> tuple[np.ndarray, np.ndarray]:
    if check_phase(phase) == "val":
        return session.split_mask("train"), session.split_mask("val")
    return session.split_mask("train", "val"), session.split_mask("test")


def _stage(progress, label: str) -> None:
    if progress is not None:
        progress.set_description_str(label)
        progress.update(1)


def build_tensors(session: Session, name: str, bin_ms: int, phase: str, seed: int = 0,
                  include_psth: bool = True, progress=None) -> BenchmarkTensors:
    """Build the three tensor sets of one dataset from a loaded session (`progress`: a tqdm bar)."""
    spec = get_dataset(name)
    b = TensorBuilder(session, spec, bin_ms)
    train_mask, eval_mask = _phase_masks(session, phase)
    if not train_mask.any():
        raise NLBInputError(f"{session.files[0].path}: trials: no trials in the training split(s) for phase {phase}")
    if not eval_mask.any():
        raise NLBInputError(f"{session.files[0].path}: trials: no trials in the evaluation split for phase {phase}")
    tw = spec.train_window
    align = tw.align_field

    # ---- train input (make_train_input_tensors)
    _stage(progress, "train tensors")
    train_align = None
    if spec.jitter:
        train_align = b.jittered_align(align, train_mask, b.jitter_ms(train_mask, seed))
    rows = b.rows(tw, train_mask, align_values=train_align)
    train_input = {
        "train_spikes_heldin": b.stacked("spikes", rows, "train window"),
        "train_spikes_heldout": b.stacked("heldout_spikes", rows, "train window"),
        "train_behavior": b.behavior(tw, train_mask),
        "train_spikes_heldin_forward": b.forward("spikes", tw, train_mask, train_align),
        "train_spikes_heldout_forward": b.forward("heldout_spikes", tw, train_mask, train_align),
    }
    train_ids = session.trials["trial_id"][rows.trials]
    extras: dict[str, np.ndarray] = {"train_bins": rows.bins.reshape(len(rows.trials), -1)}
    fwd = b.forward_rows(tw, train_mask, train_align)
    extras["train_forward_bins"] = fwd.bins.reshape(len(fwd.trials), -1)

    # ---- eval input (make_eval_input_tensors)
    _stage(progress, "eval tensors")
    eval_align = None
    if spec.jitter:
        eval_align = b.jittered_align(align, eval_mask, b.jitter_ms(eval_mask, seed))
    rows = b.rows(tw, eval_mask, align_values=eval_align, allow_nans=True)
    n, t_len = rows.stacked("eval window")
    eval_input = {"eval_spikes_heldin": b.spike_values("spikes", rows.bins).reshape(n, t_len, -1)}
    has_test = np.any(session.trials["split"][eval_mask].astype(str) == "test")
    if not has_test:
        eval_input["eval_spikes_heldout"] = b.spike_values("heldout_spikes", rows.bins).reshape(n, t_len, -1)
    eval_ids = session.trials["trial_id"][rows.trials]
    extras["eval_bins"] = rows.bins.reshape(n, t_len)
    fwd = b.forward_rows(tw, eval_mask, eval_align, allow_nans=True)
    fwd.stacked("eval forward window")
    extras["eval_forward_bins"] = fwd.bins.reshape(len(fwd.trials), -1)

    target = None
    if phase == "val":
        _stage(progress, "target + PSTH" if include_psth else "target")
        target = _target(b, train_mask, eval_mask, seed, include_psth, extras)
    return BenchmarkTensors(
        dataset=name, bin_ms=bin_ms, phase=phase,
        train_input={k: _as_float32(v) for k, v in train_input.items()},
        eval_input={k: _as_float32(v) for k, v in eval_input.items()},
        target=target, train_trial_ids=train_ids, eval_trial_ids=eval_ids, extras=extras,
    )


def _target(b: TensorBuilder, train_mask: np.ndarray, eval_mask: np.ndarray, seed: int,
            include_psth: bool, extras: dict) -> dict[str, np.ndarray]:
    """make_eval_target_tensors(include_psth=True) for phase val."""
    spec, session = b.spec, b.session
    ew = spec.eval_window
    ignore_mask = ~(train_mask | eval_mask)
    eval_align = train_jitter = eval_jitter = None
    if spec.jitter:
        train_jitter = b.jitter_ms(train_mask, seed)
        eval_jitter = b.jitter_ms(eval_mask, seed)
        eval_align = b.jittered_align(ew.align_field, eval_mask, eval_jitter)
    if ew.offsets is None:
        rows = b.rows(ew, eval_mask, align_values=eval_align)
        values = b.spike_values("heldout_spikes", rows.bins)
        jit_bins = None if eval_jitter is None else np.round(eval_jitter / b.bin_ms).astype(int)
        eval_heldout = b.jagged(values, rows, eval_mask, jit_bins, pad=spec.eval_pad,
                                seg_len=spec.eval_seg_len_ms)
    else:
        eval_heldout = b.stacked("heldout_spikes", b.rows(ew, eval_mask), "eval window")
    target: dict[str, np.ndarray] = {
        "eval_spikes_heldout": eval_heldout,
        "train_behavior": b.behavior(ew, train_mask),
        "eval_behavior": b.behavior(ew, eval_mask),
        "eval_spikes_heldin_forward": b.forward("spikes", ew, eval_mask, eval_align),
        "eval_spikes_heldout_forward": b.forward("heldout_spikes", ew, eval_mask, eval_align),
    }
    if spec.decode_mask_field:
        values = np.asarray(session.trials[spec.decode_mask_field], dtype=np.float64)
        target["train_decode_mask"] = np.stack([values[train_mask] == 0, values[train_mask] == 1]).T
        target["eval_decode_mask"] = np.stack([values[eval_mask] == 0, values[eval_mask] == 1]).T
    if include_psth and spec.psth is not None:
        p = make_psth(session, spec.psth, b.bin_ms, train_mask, eval_mask, ignore_mask)
        target["eval_cond_idx"] = p.eval_cond_idx
        target["train_cond_idx"] = p.train_cond_idx
        target["psth"] = p.psth
        extras["conditions"] = np.array(p.conditions, dtype=np.float64)
        if spec.jitter:
            target["eval_jitter"] = np.round(eval_jitter / b.bin_ms).astype(np.int64)
            target["train_jitter"] = np.round(train_jitter / b.bin_ms).astype(np.int64)
    return target


def load(name: str, data: str | Path, bin_ms: int = 5, phase: str = "val", seed: int = 0,
         include_psth: bool = True, progress: bool = False) -> BenchmarkTensors:
    """Read a dataset's NWB file(s) and build its benchmark tensors (same values as nlb_tools).

    `data` is an NWB file or a folder with the dataset's train (and test) files; `phase` "val" trains
    on split train and evaluates val, "test" trains on train+val and evaluates test.
    """
    get_dataset(name).check_bin_fits(bin_ms)
    check_phase(phase)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=4, desc="reading NWB", unit="step", leave=False, disable=None)  # off when not a TTY
    try:
        session = load_session(data)
        return build_tensors(session, name, bin_ms, phase, seed=seed, include_psth=include_psth, progress=bar)
    finally:
        if bar is not None:
            bar.close()
