"""Runs of one configuration at several model seeds, compared as arms.

A paired difference between two single fits holds each fitted model fixed, and identical configurations at
two model seeds often "resolve" (benchmarks/RESULTS.md, "Fit-to-fit noise"). Runs in one group that share a
baseline, device and resolved config (config.yaml's `config`) but not the model seed are one arm: its mean over
fits, the fits' spread, and differences between arms whose Welch t interval adds the fits' spread to the eval
trials' (`Difference.between_arms`), paired by seed when two arms of one baseline hold the same seeds.

A run alone is an arm of one fit. For a baseline with no random draw (smoothing, GPFA; its `uses_seed` is False)
that is exact, and its runs at other seeds are the same draw. For a trained model one fit has no estimate of its
own noise, so such an arm is shown but not judged (no best mark, no difference); so is an ensemble, one draw of
its members' fits whatever its seed (that of its bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .paired import LEVEL, ArmPart, Difference, better_sign, finite

SEED_FIELD = "seed"  # a config field holding the model seed would be the one field an arm's fits differ in


@dataclass(frozen=True)
class ArmRun:
    """What grouping runs into arms needs of one run: `id` is what the arm's `members` hold (e.g. an index)."""

    id: Hashable
    name: str  # the run folder, for notes and labels
    baseline: str
    config: Optional[Mapping[str, Any]]  # the resolved config (None: not recorded)
    seed: Optional[int]  # the model seed (None: not recorded)
    device: str
    uses_seed: bool  # False: its runs at other seeds are the same draw (no random draw, or an ensemble's seed)
    exact: bool  # one run is the configuration's exact value (no random draw at all: smoothing, GPFA)
    metrics: Mapping[str, float]
    boot: Optional[Mapping[str, np.ndarray]] = None  # its metrics on the shared resamples of the eval trials
    validation: Optional[Mapping[str, Any]] = None  # run.json `internal_validation`


@dataclass
class Arm:
    """One configuration's runs in a group, ordered by model seed."""

    label: str
    baseline: str
    members: tuple[Hashable, ...]  # the runs' ids
    seeds: tuple[Optional[int], ...]
    exact: bool  # its one run is exact (a baseline with no random draw)
    fits: dict[str, tuple[float, ...]]  # each fit's value of a metric every fit has (finite)
    boot: Optional[dict[str, np.ndarray]]  # the mean over fits on the shared resamples (None: no paired data)
    validation: Optional[tuple[float, ...]]  # each fit's internal-validation co-bps, all on the same trials
    validation_ids: Optional[tuple] = None  # those trials
    left_out: list[str] = field(default_factory=list)  # runs that are the same draw as one the arm holds

    @property
    def size(self) -> int:
        """The number of fits (distinct draws) in the arm."""
        return len(self.members)

    @property
    def judged(self) -> bool:
        """Can the arm be compared: several fits, or the one run of a baseline with no random draw?"""
        return self.size > 1 or self.exact

    def mean(self, metric: str) -> Optional[float]:
        """The mean of `metric` over the arm's fits (None: some fit lacks it)."""
        values = self.fits.get(metric)
        return float(np.mean(values)) if values else None


@dataclass
class ArmComparison:
    """One metric across a group's arms: the top judged arm by mean, each judged arm's difference to it, and the
    arms tied with it (arms that cannot be judged get neither)."""

    metric: str
    top: Optional[int]
    diffs: list[Optional[Difference]]
    tied: set[int]


def exact_alone(uses_seed: bool, ensemble: bool) -> bool:
    """Is one run of a configuration its exact value? Only without a random draw (smoothing, GPFA): not a trained
    model, and not an ensemble, whose members are draws whatever its own seed."""
    return not uses_seed and not ensemble


def config_key(run: ArmRun) -> tuple:
    """What makes runs one configuration: the baseline, device and resolved config but the model seed. A run that
    recorded no config or no seed is a configuration of its own."""
    if not isinstance(run.config, Mapping) or run.seed is None:
        return ("own", run.id)
    return ("config", run.baseline, run.device, seedless(run.config))


def seedless(config: Mapping[str, Any]) -> Hashable:
    """A resolved config without its model seed, as an order-free hashable key (`frozen_value`)."""
    return frozen_value({k: v for k, v in config.items() if k != SEED_FIELD})


def frozen_value(value: Any) -> Hashable:
    """A config value as a hashable, order-free key: mappings as sorted (key, value) pairs, lists as tuples."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), frozen_value(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(frozen_value(v) for v in value)
    return value if isinstance(value, Hashable) else repr(value)


def shared_validation(validations: Sequence[Optional[Mapping[str, Any]]]) -> Optional[tuple[float, ...]]:
    """Each run's internal-validation co-bps when every run validated on the same trials (run.json
    `internal_validation`), else None: scores on other trials are not one set."""
    if not validations or not all(v and finite(v.get("co-bps")) and v.get("trial_ids") for v in validations):
        return None
    if len({tuple(v["trial_ids"]) for v in validations}) != 1:
        return None
    return tuple(float(v["co-bps"]) for v in validations)


def spread_text(values: Sequence[Optional[float]]) -> str:
    """`SD (min..max)` of runs' values (the sample SD); '-' when a run lacks the value or there is one run."""
    if len(values) < 2 or not all(finite(v) for v in values):
        return "-"
    return f"{np.std(values, ddof=1):.4f} ({min(values):.4f}..{max(values):.4f})"


def arm_values(metrics: Sequence[Optional[Mapping[str, float]]], boots: Sequence[Optional[Mapping[str, np.ndarray]]],
               names: Sequence[str]) -> tuple[dict[str, tuple[float, ...]], Optional[dict[str, np.ndarray]]]:
    """(each fit's value of every metric all fits have finite, the fits' mean on each shared resample of those
    metrics, or None when a fit has no resamples): an arm's numbers from its fits'."""
    fits = {}
    for k in names:
        values = [(m or {}).get(k) for m in metrics]
        if all(finite(v) for v in values):
            fits[k] = tuple(float(v) for v in values)
    if not boots or any(b is None for b in boots):
        return fits, None
    return fits, {k: np.mean([b[k] for b in boots], axis=0) for k in fits if all(k in b for b in boots)}


def pairs_by_seed(baseline_a: str, seeds_a: Sequence, baseline_b: str, seeds_b: Sequence) -> bool:
    """Are two arms paired by seed: several fits of one baseline at the same model seeds, in order? Fit i of each
    then shares its first draws (on area2_bump GNOCCHI the autoencoder), and the fits' term is the spread of the
    per-seed differences. Other baselines share nothing at one seed, so pairing them would only cost degrees of
    freedom."""
    return baseline_a == baseline_b and len(seeds_a) > 1 and tuple(seeds_a) == tuple(seeds_b)


def find_arms(runs: Sequence[ArmRun], names: Sequence[str]) -> list[Arm]:
    """The arms of a group's model runs (give no references), in order of first appearance. A run at a seed the arm
    holds, or of a baseline whose rates do not depend on the seed, is the same draw as the one kept: left out."""
    keyed: dict[tuple, list[ArmRun]] = {}
    for run in runs:
        keyed.setdefault(config_key(run), []).append(run)
    arms = []
    for members in keyed.values():
        kept: list[ArmRun] = []
        left_out = []
        for run in members:
            if any(run.seed == k.seed or not run.uses_seed for k in kept):
                left_out.append(run.name)
            else:
                kept.append(run)
        kept.sort(key=lambda r: r.seed)
        fits, boot = arm_values([r.metrics for r in kept], [r.boot for r in kept], names)
        valid = shared_validation([r.validation for r in kept])
        arms.append(Arm("", kept[0].baseline, tuple(r.id for r in kept), tuple(r.seed for r in kept),
                        kept[0].exact, fits, boot, valid,
                        tuple(kept[0].validation["trial_ids"]) if valid else None, left_out))
    label_arms(arms, [next(r for r in runs if r.id == a.members[0]) for a in arms])
    return arms


def label_arms(arms: list[Arm], first: list[ArmRun]) -> None:
    """The baseline's name; where several arms share it, the config values that tell them apart (the device if
    that is all), or the folder of a run that recorded no config or seed."""
    for arm, run in zip(arms, first):
        same = [r for a, r in zip(arms, first) if a.baseline == arm.baseline]
        if len(same) == 1:
            arm.label = arm.baseline
            continue
        if not isinstance(run.config, Mapping) or run.seed is None:
            arm.label = f"{arm.baseline} ({run.name})"
            continue
        configured = [r for r in same if isinstance(r.config, Mapping) and r.seed is not None]
        if len(configured) == 1:
            arm.label = arm.baseline
            continue
        configs = [r.config for r in configured]
        keys = sorted({k for c in configs for k in c
                       if k != SEED_FIELD and any(d.get(k) != c.get(k) for d in configs)})
        values = [f"{k}={run.config.get(k, '-')}" for k in keys]
        if not values or len({r.device for r in configured}) > 1:
            values.append(f"device {run.device}")
        arm.label = f"{arm.baseline} ({', '.join(values)})"


def arm_difference(a: Arm, b: Arm, metric: str, level: float = LEVEL) -> Optional[Difference]:
    """Arm a's mean - arm b's on the eval trials, with the Welch t interval of `Difference.between_arms`; None
    without paired resamples for either arm or without the metric."""
    if a.boot is None or b.boot is None or metric not in a.boot or metric not in b.boot:
        return None
    part = ArmPart(a.mean(metric) - b.mean(metric), a.fits[metric], b.fits[metric], a.boot[metric],
                   b.boot[metric], paired=pairs_by_seed(a.baseline, a.seeds, b.baseline, b.seeds))
    return Difference.between_arms([part], level)


def rank(metric: str, candidates: Sequence[int], n: int, mean: Callable[[int], float],
         difference: Callable[[int, int], Optional[Difference]]) -> ArmComparison:
    """Among `candidates` (indices of `n` rows), when there are two or more: the one with the best `mean` (the
    highest; the lowest for `LOWER_IS_BETTER`), each other's `difference(i, top)` and those tied with it (the
    interval includes 0). With one candidate there is nothing to compare it with: no top, no mark."""
    diffs: list[Optional[Difference]] = [None] * n
    if len(candidates) < 2:
        return ArmComparison(metric, None, diffs, set())
    top = max(candidates, key=lambda i: better_sign(metric) * mean(i))
    for i in candidates:
        if i != top:
            diffs[i] = difference(i, top)
    return ArmComparison(metric, top, diffs,
                         {top} | {i for i in candidates if i != top and diffs[i] is not None and diffs[i].tie})


def best_co_bps_first(means: Sequence[Optional[float]]) -> list[int]:
    """Indices of rows by their co-bps mean, the highest first and those without one last (in given order)."""
    return sorted(range(len(means)), key=lambda i: -means[i] if means[i] is not None else math.inf)


def compare_arms(arms: Sequence[Arm], names: Sequence[str], level: float = LEVEL) -> dict[str, ArmComparison]:
    """Per metric, `rank` of the arms that can be judged (`Arm.judged`, with paired resamples of the metric), each
    difference `arm_difference`."""
    out = {}
    for k in names:
        ok = [i for i, a in enumerate(arms) if a.judged and a.mean(k) is not None and a.boot and k in a.boot]
        out[k] = rank(k, ok, len(arms), lambda i, k=k: arms[i].mean(k),
                      lambda i, top, k=k: arm_difference(arms[i], arms[top], k, level))
    return out


def has_arms(arms: Sequence[Arm]) -> bool:
    """Is there an arm of several fits (else the run table says it all)?"""
    return any(a.size > 1 for a in arms)
