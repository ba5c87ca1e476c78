"""Trial schedules of the synthetic sessions: trial tables, event times, recording gaps, NaN stretches.

Every time here is in seconds from t = 0 of one NWB file. A `Plan` says *when* things happen; the
latent dynamics (synthetic_dynamics) decide *what* the neurons and the hand do at those times.
Most gaps and NaN stretches sit just outside the windows the benchmark cuts (train window + 200 ms
forward window, with behaviour lag), near their edges. With quirks on, a share goes *inside* windows, as
in real files, wherever nlb_tools' own pipeline survives it: it drops every bin holding a NaN from the
train windows, forward windows and held-out eval windows of train/val trials and then cannot stack
trials of unequal length, so those stay clean. Inside holes are therefore short recording gaps in test
trials' windows (eval input keeps NaN bins) and behaviour NaN stretches in the part of a lagged
behaviour window that no spike window covers (area2_bump's lag of -20 ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .specs import FORWARD_MS, DatasetSpec

FAMILIES = {
    "mc_maze": "maze", "mc_maze_large": "maze", "mc_maze_medium": "maze", "mc_maze_small": "maze",
    "mc_rtt": "rtt", "area2_bump": "bump", "dmfc_rsg": "rsg",
}
MAZE_TYPES = {"mc_maze": 36}  # reach targets; x 3 maze versions = conditions (108 as in mc_maze, 27 in the scaling sets)
MAZE_VERSIONS = 3
SAFETY_S = 0.012  # slack kept around every constraint, larger than the 2.5 ms grid snapping of quirks
TIGHT_SHARE = 0.4  # quirks: share of outside holes that end just before the next trial's window
INSIDE_SHARE = 0.15  # quirks: share of eligible trials given a gap / NaN stretch inside a window
INSIDE_GAP_S = (0.003, 0.1)  # length of a gap inside a test window (the first one of a file >= 40 ms)
INSIDE_FORWARD_SHARE = 0.25  # of those gaps, the share placed in the 200 ms after the window
RSG_TS = {True: (0.48, 0.56, 0.64, 0.72, 0.80), False: (0.80, 0.90, 1.00, 1.10, 1.20)}  # short / long prior


@dataclass(frozen=True)
class InsideHole:
    """A gap or behaviour NaN stretch placed on purpose inside trial `trial`'s window (seconds)."""

    kind: str  # "gap" (recording gap, all units) or "nan" (behaviour NaN)
    trial: int
    t0: float
    t1: float
    series: str = "*"  # "nan" only: the series made NaN, "*" for all of them


@dataclass
class Plan:
    """One NWB file's schedule: trial columns, hidden per-trial variables, obs intervals, NaN stretches."""

    family: str
    trials: dict[str, np.ndarray]  # NWB trial columns in order (start_time, stop_time, split, fields...)
    hidden: dict[str, np.ndarray]  # per-trial variables the dynamics need (goals, tp, ...), not written
    protected: np.ndarray  # (n, 2) spans kept observed and NaN-free but for `inside` (NaN rows: free)
    gaps: np.ndarray  # (k, 2) recording gaps, sorted
    nan_spans: list[tuple[float, float, str]] = field(default_factory=list)  # (t0, t1, series or "*")
    start: float = 0.0  # first obs_interval start
    end: float = 0.0  # last obs_interval end
    events: dict[str, np.ndarray] = field(default_factory=dict)  # continuous-task events (rtt reaches)
    inside: list[InsideHole] = field(default_factory=list)  # the gaps / NaN stretches inside windows

    @property
    def n_trials(self) -> int:
        return len(self.trials["start_time"])

    @property
    def n_ms(self) -> int:
        """Length of nlb_tools' 1 ms session grid: round(last obs end * 1000)."""
        return int(round(self.end * 1000))

    def obs_intervals(self) -> np.ndarray:
        """Observed intervals: [start, end] minus the gaps, identical for every unit."""
        edges = np.concatenate([[self.start], self.gaps.ravel(), [self.end]])
        return edges.reshape(-1, 2)


def maze_conditions(name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Reach conditions: trial_type x trial_version with goal and via points (mm), fixed per dataset."""
    n_types = MAZE_TYPES.get(name, 9)
    ang = 2 * np.pi * np.arange(n_types) / n_types + rng.uniform(-0.15, 0.15, n_types)
    dist = np.where(np.arange(n_types) % 2 == 0, 120.0, 80.0) * rng.uniform(0.9, 1.1, n_types)
    goals = np.stack([dist * np.cos(ang), dist * np.sin(ang)], axis=1)
    rows = []
    for t in range(n_types):
        for v in range(MAZE_VERSIONS):
            bend = (0.0, 0.7, -0.7)[v]  # version 0 straight, 1/2 curved around a barrier either side
            rot = np.array([[np.cos(bend), -np.sin(bend)], [np.sin(bend), np.cos(bend)]])
            via = 0.55 * rot @ goals[t]
            rows.append((t + 1, v, goals[t, 0], goals[t, 1], via[0], via[1]))
    arr = np.array(rows)
    return {"trial_type": arr[:, 0].astype(int), "trial_version": arr[:, 1].astype(int),
            "goal": arr[:, 2:4], "via": arr[:, 4:6]}


def _balanced(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """n labels in 0..k-1, each used equally often (+-1), in random order."""
    return rng.permutation(np.arange(n) % k)


def _splits(n_main: int, n_none: int, main: str, rng: np.random.Generator) -> np.ndarray:
    """Split labels in time order: 25 % of the main trials become val (train file), some 'none'."""
    labels = np.full(n_main, main, dtype=object)
    if main == "train":
        labels[rng.permutation(n_main)[: int(round(0.25 * n_main))]] = "val"
    out = np.concatenate([labels, np.full(n_none, "none", dtype=object)])
    return out[rng.permutation(len(out))]


def _maze_rel(conds: dict, spec: DatasetSpec, split: np.ndarray, quirks: bool,
              rng: np.random.Generator) -> tuple[dict, dict, np.ndarray]:
    """Maze trial events relative to trial start, conditions and (lo, hi) protected offsets."""
    n = len(split)
    cidx = _balanced(n, len(conds["trial_type"]), rng)
    delay = rng.uniform(0.3, 0.7, n)
    rt = rng.uniform(0.25, 0.40, n)
    target_on = rng.uniform(0.2, 0.4, n)
    go = target_on + delay
    move = go + rt
    none = split == "none"
    failed = none & (rng.random(n) < (0.6 if quirks else 0.0))
    move = np.where(failed, np.nan, move)
    stop = np.where(failed, go + 0.6, move + rng.uniform(0.8, 1.0, n))
    lag = max(spec.lag_ms or 0, 0) / 1000
    lo = move - 0.25 - SAFETY_S
    hi = move + 0.45 + 0.2 + lag + SAFETY_S
    rel = {"target_on_time": target_on, "go_cue_time": go, "move_onset_time": move, "stop": stop,
           "iti": rng.uniform(0.15, 0.4, n)}
    fields = {
        "trial_type": conds["trial_type"][cidx], "trial_version": conds["trial_version"][cidx],
        "maze_id": 100 + cidx, "success": ~failed, "rt": np.round(rt * 1000) * np.where(failed, np.nan, 1),
        "delay": np.round(delay * 1000), "num_targets": np.where(conds["trial_version"][cidx] == 0, 1, 3),
    }
    hidden = {"goal": conds["goal"][cidx], "via": conds["via"][cidx], "cond": cidx}
    return rel, {**fields, **hidden}, np.stack([lo, hi], axis=1)


def _bump_rel(spec: DatasetSpec, split: np.ndarray, quirks: bool,
              rng: np.random.Generator) -> tuple[dict, dict, np.ndarray]:
    """Area2 trials: active reaches (ctr_hold_bump False) or passive bumps (True) in 8 directions."""
    n = len(split)
    cidx = _balanced(n, 16, rng)
    bump = cidx >= 8
    cond_dir = 45.0 * (cidx % 8)
    hold = rng.uniform(0.3, 0.6, n)
    go = hold + rng.uniform(0.0, 0.2, n)
    move = np.where(bump, hold, go + rng.uniform(0.15, 0.3, n))
    none = split == "none"
    failed = none & (rng.random(n) < (0.6 if quirks else 0.0))
    move = np.where(failed, np.nan, move)
    stop = np.where(failed, hold + 1.0, np.fmax(move, hold) + rng.uniform(0.8, 1.0, n))
    lo = move - 0.1 - max(-(spec.lag_ms or 0), 0) / 1000 - SAFETY_S
    hi = move + 0.5 + 0.2 + SAFETY_S
    rel = {"target_on_time": np.where(bump, np.nan, hold), "go_cue_time": np.where(bump, np.nan, go),
           "bump_time": np.where(bump, hold, np.nan), "move_onset_time": move, "stop": stop,
           "iti": rng.uniform(0.2, 0.5, n)}
    result = np.where(failed, np.where(rng.random(n) < 0.5, "A", "F"), "R").astype(object)
    fields = {"result": result, "ctr_hold": np.round(hold, 3), "ctr_hold_bump": bump,
              "cond_dir": cond_dir, "bump_dir": np.where(bump, cond_dir, np.nan)}
    return rel, {**fields, "cond": cidx}, np.stack([lo, hi], axis=1)


def _rsg_rel(split: np.ndarray, test: bool, quirks: bool,
             rng: np.random.Generator) -> tuple[dict, dict, np.ndarray]:
    """Ready-set-go trials: ts from a short or long prior, tp ~ ts with scalar noise, a few outliers."""
    n = len(split)
    cidx = _balanced(n, 40, rng)  # is_eye x theta x is_short x 5 ts values
    is_eye, theta, is_short, k = cidx // 20 % 2 == 1, 180.0 * (cidx // 10 % 2), cidx // 5 % 2 == 1, cidx % 5
    ts = np.where(is_short, np.take(RSG_TS[True], k), np.take(RSG_TS[False], k))
    prior_mean = np.where(is_short, 0.64, 1.0)
    tp = ts + 0.3 * (prior_mean - ts) + rng.normal(0, 0.07, n) * ts
    outlier = rng.random(n) < 0.03
    tp = np.where(outlier, ts * np.where(rng.random(n) < 0.5, rng.uniform(0.3, 0.45, n),
                                         rng.uniform(1.7, 1.9, n)), tp)
    tp = np.clip(tp, 0.15, 2.4)
    fix = rng.uniform(0.05, 0.1, n)
    target_on = fix + rng.uniform(0.3, 0.5, n)
    ready = target_on + rng.uniform(0.5, 0.8, n)
    set_ = ready + ts
    none = split == "none"
    failed = none & (rng.random(n) < (0.6 if quirks else 0.0))
    go = np.where(failed, np.nan, set_ + tp)
    stop = np.where(failed, set_ + 1.5, go + rng.uniform(0.6, 0.8, n))
    lo = go - 1.5 - SAFETY_S
    hi = go + 0.3 + 0.2 + SAFETY_S
    rel = {"fix_time": fix, "target_on_time": target_on, "ready_time": ready, "set_time": set_,
           "go_time": go, "stop": stop, "iti": rng.uniform(0.3, 0.6, n)}
    hidden_tp = np.where(failed, np.nan, tp)
    fields = {"is_eye": is_eye, "theta": theta, "is_short": is_short, "ts": np.round(ts * 1000),
              "tp": np.full(n, np.nan) if test else np.round(hidden_tp * 1000, 1),
              "is_outlier": np.full(n, np.nan) if test else np.where(failed, np.nan, outlier.astype(float))}
    hidden = {"tp_s": hidden_tp, "cond": cidx}
    return rel, {**fields, **hidden}, np.stack([lo, hi], axis=1)


def _rtt_rel(spec: DatasetSpec, split: np.ndarray, rng: np.random.Generator) -> tuple[dict, dict, np.ndarray]:
    """Random-target segments: 600 ms, consecutive, some starting 100 ms early (overlapping)."""
    n = len(split)
    lag = max(spec.lag_ms or 0, 0) / 1000
    rel = {"stop": np.full(n, 0.6), "iti": np.where(rng.random(n) < 0.1, -0.1, 0.0)}
    lo = np.full(n, -SAFETY_S)
    hi = np.full(n, 0.6 + 0.2 + lag + SAFETY_S)
    return rel, {}, np.stack([lo, hi], axis=1)


def _holes(n: int, quirks: bool, with_nan: bool, rng: np.random.Generator) -> dict[int, str]:
    """Which inter-trial intervals get a recording gap or a behaviour NaN stretch."""
    if not quirks or n < 3:
        return {}
    k = max(2, n // 40)
    where = rng.choice(n - 1, size=min(n - 1, 2 * k if with_nan else k), replace=False)
    kinds = ["gap"] * k + (["nan"] * k if with_nan else [])
    return dict(zip(where.tolist(), kinds[: len(where)]))


def _layout(rel: dict, prot: np.ndarray, holes: dict[int, str], series: list[str], family: str,
            quirks: bool, rng: np.random.Generator, split: np.ndarray) -> tuple[np.ndarray, np.ndarray, list, float]:
    """Place trials one after another; open the requested gaps / NaN stretches in the intervals.

    A hole starts 20-250 ms after the windows before it; a share of them ("tight", and always a file's
    first gap) ends only 5-80 ms before the next trial's protected span, within the reach of the PSTH
    smoothing kernel, so nlb_tools' per-stretch smoothing changes values inside that window.
    """
    n = len(rel["stop"])
    lo = np.where(np.isnan(prot[:, 0]), 0.0, prot[:, 0])
    hi = np.where(np.isnan(prot[:, 1]), rel["stop"], prot[:, 1])
    usable = ~np.isnan(prot[:, 0]) & (split != "none")  # trials that reach the PSTH
    starts = np.empty(n)
    t, hi_max, not_before = 0.3 + max(0.0, -lo[0]), -np.inf, -np.inf
    gaps, nans = [], []
    tight_gap = False  # the first gap of a file always ends just before the next trial's window
    for i in range(n):
        starts[i] = max(t, not_before - lo[i])
        hi_max = max(hi_max, starts[i] + hi[i])
        t = starts[i] + rel["stop"][i] + rel["iti"][i]
        kind = holes.get(i)
        if kind is None:
            continue
        if family == "rtt":
            t = max(t, starts[i] + hi[i])  # break the chain of segments
        h0 = hi_max + rng.uniform(0.02, 0.25)
        h1 = h0 + rng.uniform(0.05, 0.3)
        tight = i + 1 < n and ((kind == "gap" and not tight_gap and usable[i + 1]) or rng.random() < TIGHT_SHARE)
        lead = rng.uniform(0.005, 0.08) if tight else rng.uniform(0.02, 0.25)
        if tight and t + lo[i + 1] - lead > h1:  # slide up to the next window, into smoothing-kernel reach
            shift = t + lo[i + 1] - lead - h1
            h0, h1 = h0 + shift, h1 + shift
        tight_gap = tight_gap or (tight and kind == "gap" and bool(usable[i + 1]))
        if kind == "gap":
            gaps.append((h0, h1))
            nans.append((np.floor(h0 * 1000) / 1000, np.ceil(h1 * 1000) / 1000, "*"))
        else:
            h0, h1 = np.ceil(h0 * 1000) / 1000, np.ceil(h1 * 1000) / 1000
            nans.append((h0, h1, series[int(rng.integers(len(series)))] if rng.random() < 0.5 else "*"))
        not_before = h1 + lead
        t = max(t, not_before - lo[i + 1] if i + 1 < n else t)
    stop_abs = starts + rel["stop"]
    end = max(np.nanmax(stop_abs), hi_max) + rng.uniform(0.3, 0.6)
    if not quirks:
        end = np.ceil(end * 1000) / 1000
    return starts, np.array(gaps).reshape(-1, 2), nans, float(end)


def _pick_trials(eligible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """INSIDE_SHARE of the eligible trial indices (at least one when any), sorted."""
    if not len(eligible):
        return eligible
    k = max(1, int(round(INSIDE_SHARE * len(eligible))))
    return np.sort(rng.choice(eligible, size=k, replace=False))


def _overlaps(t0: float, t1: float, spans: list[tuple[float, float]], margin: float = 0.005) -> bool:
    return any(t0 < b + margin and a - margin < t1 for a, b in spans)


def _off_grid(t: float) -> float:
    """`t` moved 1.7-2.3 ms later when floor or ceil of its ms is a multiple of 5, so that a gap edge at
    `t` leaves the 5 ms (and 20 ms) bin around it partly observed."""
    r = int(np.floor(t * 1000)) % 5
    return t + 0.0017 if r == 0 else t + 0.0023 if r == 4 else t


def _gaps_in_test_windows(spec: DatasetSpec, trials: dict[str, np.ndarray], gaps: np.ndarray,
                          rng: np.random.Generator) -> list[InsideHole]:
    """Short recording gaps inside test trials' windows or the 200 ms after them (eval input keeps NaN)."""
    window = spec.train_window
    if window.offsets is None:
        return []
    align = trials[window.align_field or "start_time"]
    a, b = window.offsets[0] / 1000, window.offsets[1] / 1000
    taken = [(float(g0), float(g1)) for g0, g1 in gaps]
    out: list[InsideHole] = []
    for k in _pick_trials(np.flatnonzero(np.isfinite(align)), rng):
        lo_len = 0.04 if not out else INSIDE_GAP_S[0]
        length = rng.uniform(lo_len, INSIDE_GAP_S[1])
        if rng.random() < INSIDE_FORWARD_SHARE and out:
            r0, r1 = align[k] + b + 0.002, align[k] + b + FORWARD_MS / 1000 - 0.002
        else:  # a bin (up to 20 ms) clear of the window's edges, so both edge bins are in the window
            r0, r1 = align[k] + a + 0.025, align[k] + b - 0.025
        g0 = _off_grid(rng.uniform(r0, r1 - length))
        g1 = _off_grid(g0 + length)
        if not _overlaps(g0, g1, taken):
            taken.append((g0, g1))
            out.append(InsideHole("gap", int(k), float(g0), float(g1)))
    return out


def _nans_in_lag_strips(spec: DatasetSpec, trials: dict[str, np.ndarray], series: list[str],
                        rng: np.random.Generator) -> list[InsideHole]:
    """Behaviour NaN in the lead of a negatively lagged behaviour window, before the spike window starts.

    nlb_tools cuts behaviour with NaN allowed but drops NaN bins from spike windows; with lag < 0 the
    behaviour window starts |lag| ms before the train window, a strip only the behaviour tensors see.
    NaN covers whole milliseconds in [start + lag, start), so no train-window bin is touched.
    """
    window, lag = spec.train_window, spec.lag_ms or 0
    if lag >= 0 or not series or window.offsets is None:
        return []
    align = trials[window.align_field or "start_time"]
    split = trials["split"].astype(str)
    decoded = spec.behavior_fields[0]
    others = [s for s in series if s != decoded] or [decoded]
    out: list[InsideHole] = []
    picks = [k for s in ("train", "val") for k in _pick_trials(np.flatnonzero((split == s) & np.isfinite(align)), rng)]
    for j, k in enumerate(picks):
        start_ms = align[k] * 1000 + window.offsets[0]
        s1 = np.floor(start_ms - 0.01) + 1 - rng.integers(0, 2)  # last NaN ms < window start
        s0 = np.ceil(start_ms + lag) + rng.integers(0, 3)
        first_20 = np.ceil((start_ms + lag) / 20) * 20  # keep the 20 ms bin there NaN too (files join on 100 ms)
        if first_20 < s1:
            s0 = min(s0, first_20)
        which = ("*", decoded, others[int(rng.integers(len(others)))])[j % 3]
        if s1 > s0:
            out.append(InsideHole("nan", int(k), s0 / 1000, s1 / 1000, which))
    return out


def _add_inside(gaps: np.ndarray, nans: list, inside: list[InsideHole]) -> tuple[np.ndarray, list]:
    """Gaps and NaN stretches with the inside holes added (gaps sorted; a gap also NaNs behaviour)."""
    new_gaps = [(h.t0, h.t1) for h in inside if h.kind == "gap"]
    all_gaps = np.array(sorted([tuple(g) for g in gaps] + new_gaps)).reshape(-1, 2)
    extra = [(np.floor(h.t0 * 1000) / 1000, np.ceil(h.t1 * 1000) / 1000, "*") if h.kind == "gap"
             else (h.t0, h.t1, h.series) for h in inside]
    return all_gaps, nans + extra


def _snap_alignment(starts: np.ndarray, align_rel: np.ndarray, quirks: bool,
                    rng: np.random.Generator) -> np.ndarray:
    """Shift whole trials so alignments sit on the 1 ms grid (no quirks) or mix 5 ms / 1 ms / off-grid."""
    align = starts + np.nan_to_num(align_rel)
    grid = np.full(len(starts), 0.001)
    if quirks:
        grid = np.where(rng.random(len(starts)) < 0.3, 0.005, np.where(rng.random(len(starts)) < 0.4, 0.001, 0))
    snapped = np.where(grid > 0, np.round(align / np.where(grid > 0, grid, 1)) * grid, align)
    # off grid, but never within 2 us after a millisecond: nlb_tools' window end (align + offset - 1 us) would
    # then fall before the bin its start opens, one bin short, and no tensor of the file could be stacked
    frac_us = (snapped * 1e6) % 1000
    snapped = np.where((grid == 0) & (frac_us < 2.0), snapped + 5e-6, snapped)
    return starts + (snapped - align)


def make_plan(name: str, spec: DatasetSpec, n_main: int, n_none: int, test: bool, quirks: bool,
              rng: np.random.Generator, cond_rng_seed: int) -> Plan:
    """Schedule one file: `n_main` train/val (or test) trials plus `n_none` trials with split 'none'."""
    family = FAMILIES[name]
    split = _splits(n_main, n_none, "test" if test else "train", rng)
    if family == "maze":
        conds = maze_conditions(name, np.random.default_rng(cond_rng_seed))  # same in train and test
        rel, fields, prot = _maze_rel(conds, spec, split, quirks, rng)
        align_key = "move_onset_time"
    elif family == "bump":
        rel, fields, prot = _bump_rel(spec, split, quirks, rng)
        align_key = "move_onset_time"
    elif family == "rsg":
        rel, fields, prot = _rsg_rel(split, test, quirks, rng)
        align_key = "go_time"
    else:
        rel, fields, prot = _rtt_rel(spec, split, rng)
        align_key = None
    series = [] if test else [s for s, _ in spec.series]
    holes = _holes(len(split), quirks, with_nan=bool(series), rng=rng)
    starts, gaps, nans, end = _layout(rel, prot, holes, series or ["*"], family, quirks, rng, split)
    align_rel = rel[align_key] if align_key else np.zeros(len(starts))
    starts = _snap_alignment(starts, align_rel, quirks, rng)
    trials: dict[str, np.ndarray] = {"start_time": starts, "stop_time": starts + rel["stop"], "split": split}
    for key, val in rel.items():
        if key.endswith("_time"):
            trials[key] = starts + val
    hidden_keys = {"goal", "via", "cond", "tp_s"}
    for key, val in fields.items():
        (trials if key not in hidden_keys else {})[key] = val
    hidden = {k: v for k, v in fields.items() if k in hidden_keys}
    protected = starts[:, None] + prot
    protected[split == "none"] = np.nan
    start = float(np.round(rng.uniform(0.0, 0.02), 7)) if quirks else 0.0
    inside: list[InsideHole] = []
    if quirks:
        inside = _gaps_in_test_windows(spec, trials, gaps, rng) if test else _nans_in_lag_strips(spec, trials, series, rng)
    gaps, nans = _add_inside(gaps, nans, inside)
    plan = Plan(family, trials, hidden, protected, gaps, [s for s in nans if not test], start, end, inside=inside)
    if family == "rtt":
        plan.events = _rtt_reaches(end, rng)
    return plan


def _rtt_reaches(end: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Self-paced reaches to random targets: target onset, movement (neural) time and target position."""
    n = int(end / 0.5) + 2
    t = 0.25 + np.cumsum(rng.uniform(0.55, 1.05, n))
    t = t[t < end]
    targets = np.empty((len(t), 2))
    prev = np.zeros(2)
    for i in range(len(t)):
        for _ in range(20):
            cand = rng.uniform(-90, 90, 2)
            if np.hypot(*(cand - prev)) > 30:
                break
        targets[i] = prev = cand
    onset = t - rng.uniform(0.15, 0.3, len(t))
    return {"reach": t, "target_on": onset, "target": targets}
