"""The mean over data sets: each configuration on several synthetic data sets of one generator (data seeds).

A group holds the runs on one data set, and its differences are judged on that set's eval trials (and, for arms,
its fits). Whether a model beats another on the generator, not on one draw of it, takes the data sets as the
units: the mean over sets of each configuration's value (at each set its arm's mean over fits), and each
configuration's difference to the top with a t interval over the per-set differences (`Difference.across_sets`),
so everything that moves a difference from one set to the next (the data, the fits at each set) is inside it.
Groups pool when they are synthetic data of one dataset, bin width, phase and trial count, each at its own data
seed (read from the set's ground_truth.h5); a single fit per set is judged here, as each set's fit is a draw.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Optional

import h5py
import numpy as np

from .arm_tables import ArmCell
from .arms import Arm, ArmComparison, config_key, find_arms, label_arms
from .build import METRICS, GroupData, arm_runs
from .paired import LOWER_IS_BETTER, REFERENCES, Difference, better_sign, gap_share
from .summary import difference_cells, gap_terms

FAMILY_NOTE = ("mean over data sets: each configuration (baseline, device and resolved config, any model seed) on "
               "synthetic data sets of one dataset, bin width, phase and trial count, each at its own data seed; at "
               "each set its value is the mean over its fits there, and the table gives the mean over sets (SD over "
               "sets). Each configuration's difference to the top has a t interval over the per-set differences "
               "(the sets as the units, sets - 1 degrees of freedom: wide with few sets), which holds the data's "
               "and the fits' variation from set to set, where a set's own intervals hold its data fixed. Only "
               "configurations run on every set are judged; gap closed = (mean - smoothing's mean) / (true rates' "
               "mean - smoothing's mean)")


@dataclass
class Pooled:
    """One configuration (or a reference) across a family's data sets, in the family's set order."""

    label: str
    baseline: str
    values: dict[str, list[Optional[float]]]  # per metric, per set: the arm's mean over fits (None: not there)
    fits: list[int]  # per set: the fits of the configuration there (0: not run there)
    reference: bool = False  # the true rates or the true PSTH: shown, never judged

    def everywhere(self, metric: str) -> bool:
        """Has the configuration a value of `metric` on every data set?"""
        values = self.values.get(metric)
        return bool(values) and all(v is not None for v in values)

    def mean(self, metric: str) -> Optional[float]:
        """The mean over data sets (None unless every set has a value)."""
        return float(np.mean(self.values[metric])) if self.everywhere(metric) else None


@dataclass
class Family:
    """Groups that are one generator's data sets at distinct data seeds, with their pooled configurations."""

    dataset: str
    bin_ms: int
    phase: str
    groups: list[GroupData]
    seeds: list[int]
    metrics: list[str]
    rows: list[Pooled] = field(default_factory=list)  # judged by co-bps mean, then the rest, then references
    comparison: dict[str, ArmComparison] = field(default_factory=dict)  # per metric: top row, diffs, ties
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        seeds = ", ".join(map(str, self.seeds))
        return (f"{self.dataset}, {self.bin_ms} ms bins, phase {self.phase} (synthetic): mean over "
                f"{len(self.groups)} data sets (data seeds {seeds})")

    @property
    def anchor(self) -> str:
        return f"{self.dataset}-{self.bin_ms}ms-{self.phase}-data-sets"


def data_seed(group: GroupData) -> Optional[int]:
    """The data seed of a synthetic group's data (ground_truth.h5's `seed`), or None when it cannot be read."""
    from ..datasets.truth import find_truth

    path = find_truth(group.data_dir) if group.synthetic and group.data_dir and group.data_dir.exists() else None
    if path is None:
        return None
    try:
        with h5py.File(path, "r") as f:
            seed = f.attrs.get("seed")
    except OSError:
        return None
    return None if seed is None else int(seed)


def _family_key(group: GroupData) -> Optional[tuple]:
    """What pooled groups share (synthetic groups with metrics only): dataset, bin width, phase, trial counts."""
    if not group.synthetic or not group.has_metrics:
        return None
    counts = frozenset((r.record.info.get("n_train_trials"), r.record.info.get("n_eval_trials")) for r in group.runs)
    return group.dataset, group.bin_ms, group.phase, counts


def find_families(groups: list[GroupData]) -> tuple[list[Family], list[str]]:
    """The families among the groups (two or more data sets at distinct, known data seeds) with their pooled
    configurations and comparisons, and notes on groups that looked like one but are not pooled."""
    buckets: dict[tuple, list[GroupData]] = {}
    for g in groups:
        if (key := _family_key(g)) is not None:
            buckets.setdefault(key, []).append(g)
    families, notes = [], []
    for (dataset, bin_ms, phase, _), members in buckets.items():
        if len(members) < 2:
            continue
        seeds = [data_seed(g) for g in members]
        where = f"{dataset} at {bin_ms} ms, phase {phase}"
        if None in seeds:
            unknown = ", ".join(str(g.data_dir) for g, s in zip(members, seeds) if s is None)
            notes.append(f"{where}: data sets not pooled over data seeds: no data seed could be read for {unknown} "
                         "(its ground_truth.h5 is not at hand)")
            continue
        if len(set(seeds)) < len(seeds):
            notes.append(f"{where}: data sets not pooled over data seeds: several hold data seed "
                         f"{min(s for s in seeds if seeds.count(s) > 1)} with other data, so they were made with "
                         "other generator settings")
            continue
        order = sorted(range(len(members)), key=lambda i: seeds[i])
        family = Family(dataset, bin_ms, phase, [members[i] for i in order], [seeds[i] for i in order],
                        [k for k in METRICS if all(k in g.metric_names for g in members)])
        _pool(family)
        families.append(family)
    return families, notes


def _pool(family: Family) -> None:
    """The family's configurations and references across its sets, their order and comparison, and notes."""
    n = len(family.groups)
    found: dict[Hashable, tuple[Arm, object, list[Optional[Arm]]]] = {}  # key: (an arm, its first run, per set)
    own = []
    for s, group in enumerate(family.groups):
        runs = arm_runs(group)
        for arm in find_arms(runs, family.metrics):
            first = next(r for r in runs if r.id == arm.members[0])
            key = config_key(first)
            if key[0] == "own":
                own.append(f"{first.name} (data seed {family.seeds[s]})")
                continue
            found.setdefault(key, (arm, first, [None] * n))[2][s] = arm
    label_arms([a for a, _, _ in found.values()], [r for _, r, _ in found.values()])
    rows = [Pooled(arm.label, arm.baseline,
                   {k: [None if a is None else a.mean(k) for a in per_set] for k in family.metrics},
                   [0 if a is None else a.size for a in per_set]) for arm, _, per_set in found.values()]
    co_bps = [r.mean("co-bps") for r in rows]
    order = sorted(range(len(rows)), key=lambda i: -co_bps[i] if co_bps[i] is not None else math.inf)
    family.rows = [rows[i] for i in order] + _references(family)
    family.comparison = compare_pooled(family.rows, family.metrics)
    family.notes = [FAMILY_NOTE]
    if any(k in LOWER_IS_BETTER for k in family.metrics):
        family.notes.append("tp corr: more negative is better, so the top configuration is the most negative and a "
                            "worse one's difference to it is positive")
    partial = [f"{r.label} ({sum(f > 0 for f in r.fits)} of {n})" for r in family.rows if not r.reference
               and 0 in r.fits]
    if partial:
        family.notes.append("not judged, as not run on every data set: " + ", ".join(partial))
    if own:
        family.notes.append("runs that recorded no config or seed are not matched across data sets: " + ", ".join(own))


def _references(family: Family) -> list[Pooled]:
    """The true rates (each set's ceiling) and the true PSTH (its runs), where every set has them."""
    out = []
    ceilings = [g.ceiling.metrics if g.ceiling else None for g in family.groups]
    if all(ceilings):
        out.append(Pooled(REFERENCES["oracle"], "oracle", {k: [c.get(k) for c in ceilings] for k in family.metrics},
                          [1] * len(ceilings), reference=True))
    psth = [next((r.record.metrics for r in g.runs if r.baseline == "true_psth" and r.record.metrics), None)
            for g in family.groups]
    if all(psth):
        out.append(Pooled(REFERENCES["true_psth"], "true_psth", {k: [m.get(k) for m in psth] for k in family.metrics},
                          [1] * len(psth), reference=True))
    return out


def compare_pooled(rows: list[Pooled], metrics: list[str]) -> dict[str, ArmComparison]:
    """Per metric, among configurations with a value on every set (two or more): the best mean over sets, each
    one's difference to it with the t interval over sets, and those tied with it."""
    out = {}
    for k in metrics:
        ok = [i for i, r in enumerate(rows) if not r.reference and r.everywhere(k)]
        diffs: list[Optional[Difference]] = [None] * len(rows)
        if len(ok) < 2:
            out[k] = ArmComparison(k, None, diffs, set())
            continue
        top = max(ok, key=lambda i: better_sign(k) * rows[i].mean(k))
        for i in ok:
            if i != top:
                diffs[i] = Difference.across_sets([a - b for a, b in zip(rows[i].values[k], rows[top].values[k])])
        out[k] = ArmComparison(k, top, diffs, {top} | {i for i in ok if i != top and diffs[i].tie})
    return out


def _gap_ends(family: Family, metric: str) -> Optional[tuple[float, float]]:
    """(smoothing's mean over sets, the true rates' mean over sets) of `metric`, when every set has both."""
    floors, ceilings = [], []
    for g in family.groups:
        floor_run, _, gap_metrics = gap_terms(g)
        if metric not in gap_metrics:
            return None
        floors.append(floor_run.record.metrics[metric])
        ceilings.append(g.ceiling.metrics[metric])
    return float(np.mean(floors)), float(np.mean(ceilings))


def _mean_sd(values: list[Optional[float]]) -> str:
    if any(v is None for v in values):
        return "–"
    return f"{np.mean(values):.4f} ({np.std(values, ddof=1):.4f})"


def family_table(family: Family) -> tuple[list[str], list[list[ArmCell]]]:
    """One row per configuration, then the references: data sets run, fits per set, each metric's mean over
    sets (SD over sets) with the best marks, the share of the smoothing-to-ceiling gap its mean closes, and its
    co-bps at each set."""
    n = len(family.groups)
    ends = {k: e for k in ("co-bps", "fp-bps") if k in family.metrics and (e := _gap_ends(family, k))}
    rows = []
    for i, row in enumerate(family.rows):
        name = row.label + (" (reference)" if row.reference else "")
        cells = [ArmCell(name), ArmCell(f"{sum(f > 0 for f in row.fits)} of {n}"),
                 ArmCell("–" if row.reference else ", ".join(str(f) for f in row.fits))]
        for k in family.metrics:
            comp = family.comparison[k]
            best = i in comp.tied
            cells.append(ArmCell(_mean_sd(row.values[k]), best, best and len(comp.tied) > 1))
        for k, (floor, ceiling) in ends.items():
            share = gap_share(row.mean(k), floor, ceiling)
            cells.append(ArmCell("–" if share is None else f"{100 * share:.1f}%"))
        co = row.values.get("co-bps") or [None] * n
        cells.append(ArmCell(" / ".join("–" if v is None else f"{v:.4f}" for v in co)))
        rows.append(cells)
    seeds = ", ".join(map(str, family.seeds))
    headers = (["configuration", "data sets", "fits per set"] + [f"{k} mean (SD over sets)" for k in family.metrics]
               + [f"{k} gap closed" for k in ends] + [f"co-bps at data seeds {seeds}"])
    return headers, rows


def family_differences(family: Family) -> tuple[list[str], list[list[str]]]:
    """Each judged configuration's difference to the top of every metric (t interval over the data sets)."""
    names = [k for k in family.metrics if family.comparison[k].top is not None]
    if not names:
        return [], []
    rows = [[r.label] + difference_cells([family.comparison[k] for k in names], i)
            for i, r in enumerate(family.rows) if not r.reference]
    return ["configuration"] + [f"{k} - top" for k in names], rows
