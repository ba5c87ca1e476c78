"""Runs of one configuration at several model seeds, compared as arms.

A paired difference between two single fits holds each fitted model fixed, and identical configurations at
two model seeds often "resolve" (benchmarks/RESULTS.md, "Fit-to-fit noise"). Runs in one group that share a
baseline and its whole resolved config (config.yaml) but the seed are one arm: its mean over fits, the fits'
spread, and differences between arms whose Welch t interval adds the fits' spread to the eval trials'
(`Difference.between_arms`), paired by seed when two arms hold the same model seeds. A run alone is an arm of one
fit: exact for a deterministic model (smoothing), while a trained model's single fit brings no spread to add.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .paired import LEVEL, ArmPart, Difference


@dataclass
class Arm:
    """One configuration's runs in a group, ordered by model seed."""

    label: str
    baseline: str
    members: tuple[int, ...]  # indices into the group's runs
    seeds: tuple[int, ...]
    fits: dict[str, tuple[float, ...]]  # each fit's value of a metric every fit has (finite)
    boot: Optional[dict[str, np.ndarray]]  # the mean over fits on the shared resamples (None: no paired data)
    validation: Optional[tuple[float, ...]]  # each fit's internal-validation co-bps, all on the same trials
    left_out: list[str] = field(default_factory=list)  # runs at a seed the arm already holds (the same draw)

    @property
    def size(self) -> int:
        return len(self.members)

    def mean(self, metric: str) -> Optional[float]:
        values = self.fits.get(metric)
        return float(np.mean(values)) if values else None


@dataclass
class ArmComparison:
    """One metric across a group's arms: the top arm by mean, each arm's difference to it, and the tied arms."""

    metric: str
    top: Optional[int]
    diffs: list[Optional[Difference]]
    tied: set[int]


SEED_FIELD = "seed"  # a config field holding the model seed would be the one field an arm's fits differ in


def config_key(baseline: str, config: Optional[Mapping[str, Any]], index: int) -> str:
    """What makes two runs one configuration: the baseline and its whole resolved config but the model seed
    (config.yaml's `config`). A run that recorded no config is a configuration of its own (`index`)."""
    if not isinstance(config, Mapping):
        return json.dumps(["no config", index])
    rest = {k: v for k, v in config.items() if k != SEED_FIELD}
    return json.dumps([baseline, rest], sort_keys=True, default=str)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def shared_validation(validations: Sequence[Optional[Mapping[str, Any]]]) -> Optional[tuple[float, ...]]:
    """Each run's internal-validation co-bps when every run validated on the same trials (run.json
    `internal_validation`), else None: scores on other trials are not one set."""
    if not validations or not all(v and _finite(v.get("co-bps")) and v.get("trial_ids") for v in validations):
        return None
    if len({tuple(v["trial_ids"]) for v in validations}) != 1:
        return None
    return tuple(float(v["co-bps"]) for v in validations)


def spread_text(values: Sequence[Optional[float]]) -> str:
    """`SD (min..max)` of runs' values (the sample SD); '-' when a run lacks the value or there is one run."""
    if len(values) < 2 or not all(_finite(v) for v in values):
        return "-"
    return f"{np.std(values, ddof=1):.4f} ({min(values):.4f}..{max(values):.4f})"


def find_arms(baselines: Sequence[str], configs: Sequence[Optional[Mapping[str, Any]]], seeds: Sequence[int],
              metrics: Sequence[Optional[Mapping[str, float]]], names: Sequence[str],
              boot: Optional[Sequence[Optional[Mapping[str, np.ndarray]]]] = None,
              validations: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
              paths: Optional[Sequence[str]] = None) -> list[Arm]:
    """The arms of a group's model runs (references and runs without metrics left out), in order of first
    appearance. A second run at a seed an arm holds is the same draw, not another fit: it is left out (listed in
    `left_out`). `boot[i]`: run i's values on the shared resamples; an arm has paired data only when all its fits
    do."""
    keyed: dict[str, list[int]] = {}
    for i, (b, c, m) in enumerate(zip(baselines, configs, metrics)):
        if m:
            keyed.setdefault(config_key(b, c, i), []).append(i)
    arms = []
    for members in keyed.values():
        kept, left_out, held = [], [], set()
        for i in members:
            if seeds[i] in held:
                left_out.append(paths[i] if paths else str(i))
                continue
            held.add(seeds[i])
            kept.append(i)
        kept.sort(key=lambda i: seeds[i])
        fits = {}
        for k in names:
            values = [(metrics[i] or {}).get(k) for i in kept]
            if all(_finite(v) for v in values):
                fits[k] = tuple(float(v) for v in values)
        arm_boot = None
        if boot is not None and all(boot[i] is not None for i in kept):
            arm_boot = {k: np.mean([boot[i][k] for i in kept], axis=0) for k in fits
                        if all(k in boot[i] for i in kept)}
        valid = shared_validation([validations[i] for i in kept]) if validations else None
        arms.append(Arm("", baselines[kept[0]], tuple(kept), tuple(seeds[i] for i in kept), fits, arm_boot, valid,
                        left_out))
    _label(arms, [configs[a.members[0]] for a in arms])
    return arms


def _label(arms: list[Arm], configs: list[Optional[Mapping[str, Any]]]) -> None:
    """The baseline's name, and where several arms share it, the config values that tell them apart."""
    configs = [c if isinstance(c, Mapping) else {} for c in configs]
    for arm, config in zip(arms, configs):
        same = [c for a, c in zip(arms, configs) if a.baseline == arm.baseline]
        if len(same) == 1:
            arm.label = arm.baseline
            continue
        keys = sorted({k for c in same for k in c if k != SEED_FIELD and any(d.get(k) != c.get(k) for d in same)})
        values = ", ".join(f"{k}={config.get(k, '-')}" for k in keys)
        nth = [a for a in arms if a.baseline == arm.baseline].index(arm) + 1  # when no recorded value differs
        arm.label = f"{arm.baseline} ({values or f'arm {nth}, no config recorded'})"


def pairs_by_seed(a: Arm, b: Arm) -> bool:
    """Do two arms of several fits hold the same model seeds? Then fit i of each shares its first draws and the
    fits' term is the spread of the per-seed differences (`fit_terms_of`)."""
    return a.size > 1 and a.seeds == b.seeds


def arm_difference(a: Arm, b: Arm, metric: str, level: float = LEVEL) -> Optional[Difference]:
    """Arm a's mean - arm b's on the eval trials, with the Welch t interval of `Difference.between_arms`; None
    without paired resamples for either arm or without the metric."""
    if a.boot is None or b.boot is None or metric not in a.boot or metric not in b.boot:
        return None
    part = ArmPart(a.mean(metric) - b.mean(metric), a.fits[metric], b.fits[metric], a.boot[metric],
                   b.boot[metric], paired=pairs_by_seed(a, b))
    return Difference.between_arms([part], level)


def compare_arms(arms: Sequence[Arm], names: Sequence[str], level: float = LEVEL) -> dict[str, ArmComparison]:
    """Per metric: the arm with the highest mean, each arm's difference to it and the arms tied with it (the
    interval includes 0, or no interval could be computed)."""
    out = {}
    for k in names:
        ok = [i for i, a in enumerate(arms) if a.mean(k) is not None]
        if not ok:
            out[k] = ArmComparison(k, None, [None] * len(arms), set())
            continue
        top = max(ok, key=lambda i: arms[i].mean(k))
        diffs: list[Optional[Difference]] = [None] * len(arms)
        for i in ok:
            diffs[i] = arm_difference(arms[i], arms[top], k, level) if i != top else None
        tied = {top} | {i for i in ok if i != top and (diffs[i] is None or diffs[i].tie)}
        out[k] = ArmComparison(k, top, diffs, tied)
    return out


def has_arms(arms: Sequence[Arm]) -> bool:
    """Is there an arm of several fits (else the run table says it all)?"""
    return any(a.size > 1 for a in arms)
