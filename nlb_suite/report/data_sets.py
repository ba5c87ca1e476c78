"""The mean over data sets: each configuration on several synthetic data sets of one generator (data seeds).

A group holds the runs on one data set, and its differences are judged on that set's eval trials (and, for arms,
its fits). Whether a model beats another on the generator, not on one draw of it, takes the data sets as the
units: the mean over sets of each configuration's value (at each set its arm's mean over fits), and each
configuration's difference to the top with a t interval over the per-set differences (`Difference.across_sets`),
so everything that moves a difference from one set to the next (the data, the fits at each set) is inside it.
Groups pool when they are synthetic data of one dataset, bin width, phase, trial count and generator (its sources
and settings, as ground_truth.h5 records them), each at its own data seed; a single fit per set is judged here,
as each set's fit is a draw.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from .arm_tables import ArmCell, mean_sd
from .arms import ArmComparison, ArmRun, best_co_bps_first, config_key, find_arms, label_arms, rank, seedless
from .build import METRICS, GroupData, arm_runs, data_origin, group_trial_count
from .paired import GAP_FLOOR, LOWER_IS_BETTER, REFERENCES, Difference, gap_share
from .summary import difference_cells

ENSEMBLE_CHOICES = ("members", "size", "rule")  # an ensemble's config fields that its data set's runs decide
FAMILY_NOTE = (
    "mean over data sets: each configuration (baseline, device and resolved config, any model seed) on synthetic "
    "data sets of one dataset, bin width, phase, trial count and generator, each at its own data seed; at each set "
    "its value is the mean over its fits there, and the table gives the mean over sets (SD over sets). Each "
    "configuration's difference to the top has a t interval over the per-set differences (the sets as the units, "
    "sets - 1 degrees of freedom: wide with few sets), which holds the data's and the fits' variation from set to "
    "set, where a set's own intervals hold its data fixed. Only configurations with a value on every set are "
    "judged; an ensemble is matched across sets by its recipe: its candidates' baselines and configs and its size "
    "rule")


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
    trials: int  # train + eval trials of each set
    bin_ms: int
    phase: str
    groups: list[GroupData]
    seeds: list[int]
    metrics: list[str]
    generator_tag: str = ""  # "generator 1a2b3c4d" where other families share the rest of its title
    rows: list[Pooled] = field(default_factory=list)  # ordered by co-bps mean (missing last), then references
    floor: Optional[Pooled] = None  # the gap's floor: the first smoothing configuration on every set
    comparison: dict[str, ArmComparison] = field(default_factory=dict)  # per metric: top row, diffs, ties
    notes: list[str] = field(default_factory=list)

    @property
    def ceiling(self) -> Optional[Pooled]:
        """The true rates' row (each set's ceiling), where every set has one."""
        return next((r for r in self.rows if r.baseline == "oracle"), None)

    @property
    def title(self) -> str:
        seeds = ", ".join(map(str, self.seeds))
        made = f", {self.generator_tag}" if self.generator_tag else ""
        return (f"{self.dataset} ({self.trials} train+eval trials{made}), {self.bin_ms} ms bins, phase {self.phase} "
                f"(synthetic): mean over {len(self.groups)} data sets (data seeds {seeds})")

    @property
    def anchor(self) -> str:
        tag = "-" + self.generator_tag.split()[-1] if self.generator_tag else ""
        return f"data-sets-{self.dataset}-{self.trials}-{self.bin_ms}ms-{self.phase}{tag}"


def find_families(groups: list[GroupData]) -> tuple[list[Family], list[str]]:
    """The families among the groups (two or more data sets of one generator at distinct data seeds) with their
    pooled configurations and comparisons, and notes on data sets that could have been pooled but were not."""
    synthetic = [(g, group_trial_count(g)) for g in groups if g.synthetic and g.has_metrics]
    kind_counts = Counter((g.dataset, trials, g.bin_ms, g.phase) for g, trials in synthetic)
    buckets: dict[tuple, list[tuple[GroupData, int]]] = {}
    notes = []
    for g, trials in synthetic:
        if trials is None or kind_counts[(g.dataset, trials, g.bin_ms, g.phase)] < 2:
            continue  # no other data set it could be pooled with (a run without trial counts is its own kind)
        origin = data_origin(g)
        if origin is None:
            notes.append(f"{g.title}: not pooled with other data sets: its data seed could not be read (the data "
                         "folder, its checksums or its ground_truth.h5)")
            continue
        buckets.setdefault((g.dataset, trials, g.bin_ms, g.phase, origin[1]), []).append((g, origin[0]))
    generators: dict[tuple, list[Optional[str]]] = {}
    for key in buckets:
        generators.setdefault(key[:4], []).append(key[4])
    for (dataset, trials, bin_ms, phase), made_by in generators.items():
        if len(made_by) > 1:
            older = " (some made before ground_truth.h5 recorded its generator)" if None in made_by else ""
            notes.append(f"{_where(dataset, trials, bin_ms, phase)}: its data sets come from {len(made_by)} "
                         f"generators{older}; each family pools one generator's data sets (its tag in the title)")
    families = []
    for (dataset, trials, bin_ms, phase, generator), members in buckets.items():
        if len(members) < 2:
            continue
        seeds = [s for _, s in members]
        if len(set(seeds)) < len(seeds):
            twice = min(s for s in seeds if seeds.count(s) > 1)
            cause = "the same generator on another kind of CPU" if generator else \
                "other generator versions or settings, or another kind of CPU"
            notes.append(f"{_where(dataset, trials, bin_ms, phase)}: data sets not pooled: several hold data seed "
                         f"{twice} with other data ({cause})")
            continue
        members.sort(key=lambda m: m[1])
        tag = ("generator " + (generator[:8] if generator else "not recorded")) if len(
            generators[(dataset, trials, bin_ms, phase)]) > 1 else ""
        family = Family(dataset, trials, bin_ms, phase, [g for g, _ in members], sorted(seeds),
                        [k for k in METRICS if all(k in g.metric_names for g, _ in members)], tag)
        _pool(family)
        if generator is None:
            family.notes.append("these data sets were made before ground_truth.h5 recorded its generator: that they "
                                "are one generator's draws (its version and settings) is taken on trust")
        families.append(family)
    return families, notes


def _where(dataset: str, trials: int, bin_ms: int, phase: str) -> str:
    return f"{dataset} ({trials} train+eval trials) at {bin_ms} ms, phase {phase}"


def pooling_config(baseline: str, config: Optional[Mapping[str, Any]],
                   info: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The config a run is matched by across data sets: its resolved config, but for an ensemble its recipe: its
    size rule (the size itself when it was given) and its candidates' baselines and resolved configs (read from
    their run folders) without what each set's runs decide (`ENSEMBLE_CHOICES`); None (a configuration of its
    own) when a candidate's config cannot be read."""
    if baseline != "ensemble" or not isinstance(config, Mapping):
        return config
    ranking = (info.get("ensemble") or {}).get("ranking") or []
    candidates = []
    for entry in ranking:
        run = entry.get("run") if isinstance(entry, Mapping) else None
        candidate = _candidate_config(Path(run)) if isinstance(run, str) else None
        if candidate is None:
            return None
        candidates.append(f"{entry.get('baseline', '?')} {candidate}")
    decided = ENSEMBLE_CHOICES if not config.get("size_given") else ("members", "rule")
    recipe = {k: v for k, v in config.items() if k not in decided}
    counted = {c: candidates.count(c) for c in sorted(candidates)}
    return {**recipe, "candidates": ", ".join(f"{c} x{n}" for c, n in counted.items())}


def _candidate_config(run_dir: Path) -> Optional[str]:
    """A short digest of an ensemble candidate's resolved config without its seed (config.yaml), or None."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()).get("config")
    except (OSError, yaml.YAMLError, AttributeError, UnicodeDecodeError):
        return None
    if not isinstance(config, Mapping):
        return None
    return hashlib.sha256(repr(seedless(config)).encode()).hexdigest()[:8]


def _pool(family: Family) -> None:
    """The family's configurations and references across its sets, their order and comparison, and notes."""
    n = len(family.groups)
    found: dict[Hashable, tuple[ArmRun, list]] = {}  # config key: (the first run seen, the arm at each set)
    own, left_out = [], []
    for s, group in enumerate(family.groups):
        runs = [dataclasses.replace(r, config=pooling_config(r.baseline, r.config, group.runs[r.id].record.info))
                for r in arm_runs(group)]
        for arm in find_arms(runs, family.metrics):
            first = next(r for r in runs if r.id == arm.members[0])
            key = config_key(first)
            if key[0] == "own":
                own.append(f"{first.name} (data seed {family.seeds[s]})")
                continue
            found.setdefault(key, (first, [None] * n))[1][s] = arm
            left_out += [f"{name} (data seed {family.seeds[s]})" for name in arm.left_out]
    representatives = [next(a for a in per_set if a is not None) for _, per_set in found.values()]
    label_arms(representatives, [first for first, _ in found.values()])
    rows = [Pooled(arm.label, arm.baseline,
                   {k: [None if a is None else a.mean(k) for a in per_set] for k in family.metrics},
                   [0 if a is None else a.size for a in per_set]) for arm, (_, per_set) in zip(representatives,
                                                                                             found.values())]
    family.floor = next((r for r in rows if r.baseline == GAP_FLOOR and 0 not in r.fits), None)
    rows = [rows[i] for i in best_co_bps_first([r.mean("co-bps") for r in rows])]
    family.rows = rows + _references(family)
    family.comparison = compare_pooled(family.rows, family.metrics)
    family.notes = [FAMILY_NOTE] + _judging_notes(family, own, left_out)


def _judging_notes(family: Family, own: list[str], left_out: list[str]) -> list[str]:
    """What is not judged and why, which runs were left out, and how tp corr and gap closed read."""
    notes = []
    n = len(family.groups)
    models = [r for r in family.rows if not r.reference]
    partial = [f"{r.label} ({sum(f > 0 for f in r.fits)} of {n})" for r in models if 0 in r.fits]
    if partial:
        notes.append("not judged, as not run on every data set: " + ", ".join(partial))
    for k in family.metrics:
        lacking = [r.label for r in models if 0 not in r.fits and not r.everywhere(k)]
        if lacking:
            notes.append(f"not judged on {k}, which they lack on some or every data set: " + ", ".join(lacking))
    if own:
        notes.append("left out of this table, as they recorded no config or seed to be matched across data sets by: "
                     + ", ".join(own))
    if left_out:
        notes.append("left out as the same draw as a run their configuration holds at that data set (the same "
                     "model seed, or a baseline whose rates do not depend on the seed): " + ", ".join(left_out))
    if any(family.comparison[k].top is not None for k in family.metrics if k in LOWER_IS_BETTER):
        notes.append("tp corr: more negative is better, so the top configuration is the most negative and a worse "
                     "one's difference to it is positive")
    if gap := gap_metrics(family):
        notes.append(f"gap closed = (mean - {family.floor.label}'s mean) / (true rates' mean - "
                     f"{family.floor.label}'s mean): the gap of the means over data sets, for {' and '.join(gap)}")
    return notes


def gap_metrics(family: Family) -> list[str]:
    """The metrics a gap closed is given for: co-bps and fp-bps where the floor (smoothing) and the true rates
    have them on every data set."""
    ceiling = family.ceiling
    return [k for k in ("co-bps", "fp-bps") if k in family.metrics and family.floor and ceiling
            and family.floor.everywhere(k) and ceiling.everywhere(k)]


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
        out.append(Pooled(REFERENCES["true_psth"], "true_psth",
                          {k: [m.get(k) for m in psth] for k in family.metrics}, [1] * len(psth), reference=True))
    return out


def compare_pooled(rows: list[Pooled], metrics: list[str]) -> dict[str, ArmComparison]:
    """Per metric, `rank` of the configurations with a value on every data set (no references), each difference
    to the top the t interval over the per-set differences (`Difference.across_sets`)."""
    out = {}
    for k in metrics:
        ok = [i for i, r in enumerate(rows) if not r.reference and r.everywhere(k)]
        out[k] = rank(k, ok, len(rows), lambda i, k=k: rows[i].mean(k),
                      lambda i, top, k=k: Difference.across_sets(
                          [a - b for a, b in zip(rows[i].values[k], rows[top].values[k])]))
    return out


def family_table(family: Family) -> tuple[list[str], list[list[ArmCell]]]:
    """One row per configuration, then the references: data sets run, fits per set, each metric's mean over
    sets (SD over sets) with the best marks, the share of the smoothing-to-ceiling gap its mean closes, and its
    co-bps at each set."""
    n = len(family.groups)
    gap = gap_metrics(family)
    rows = []
    for i, row in enumerate(family.rows):
        name = row.label + (" (reference)" if row.reference else "")
        cells = [ArmCell(name), ArmCell(f"{sum(f > 0 for f in row.fits)} of {n}"),
                 ArmCell("–" if row.reference else ", ".join(str(f) for f in row.fits))]
        for k in family.metrics:
            comp = family.comparison[k]
            best = i in comp.tied
            text = mean_sd(row.values[k]) if row.everywhere(k) else "–"
            cells.append(ArmCell(text, best, best and len(comp.tied) > 1))
        for k in gap:
            share = gap_share(row.mean(k), family.floor.mean(k), family.ceiling.mean(k))
            cells.append(ArmCell("–" if share is None else f"{100 * share:.1f}%"))
        co = row.values.get("co-bps") or [None] * n
        cells.append(ArmCell(" / ".join("–" if v is None else f"{v:.4f}" for v in co)))
        rows.append(cells)
    seeds = ", ".join(map(str, family.seeds))
    headers = (["configuration", "data sets", "fits per set"] + [f"{k} mean (SD over sets)" for k in family.metrics]
               + [f"{k} gap closed" for k in gap] + [f"co-bps at data seeds {seeds}"])
    return headers, rows


def family_differences(family: Family) -> tuple[list[str], list[list[str]]]:
    """Each judged configuration's difference to the top of every metric (t interval over the data sets)."""
    names = [k for k in family.metrics if family.comparison[k].top is not None]
    if not names:
        return [], []
    rows = [[r.label] + difference_cells([family.comparison[k] for k in names], i)
            for i, r in enumerate(family.rows) if not r.reference]
    return ["configuration"] + [f"{k} - top" for k in names], rows
