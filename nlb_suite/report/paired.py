"""Paired comparison of runs scored on the same eval trials: differences with bootstrap intervals and ties.

Every run's metrics are recomputed on the same resamples of eval trials, so the interval of a difference
is paired (trial-to-trial noise shared by both runs cancels). A difference whose interval includes 0 is a
tie: the eval trials do not resolve it. The best mark of a metric goes to the top run and every run tied
with it, so it never singles out one of several tied runs. Reference models (the true rates, the true
PSTH) are shown and compared but never marked best.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..metrics_bootstrap import paired_interval

# Baselines that read the ground truth: references to measure models against, never "best" themselves.
REFERENCES = {"oracle": "true rates", "true_psth": "true PSTH"}
CEILING_METRICS = ("co-bps", "fp-bps")  # the true rates are a ceiling (in expectation) only for these
GAP_FLOOR = "smoothing"  # the floor of "share of the gap closed"
# tp corr (dmfc_rsg): faster neural dynamics go with shorter produced intervals, so the better a model captures
# that relation the more negative its correlation (on the stand-ins the true rates give the most negative values).
LOWER_IS_BETTER = frozenset({"tp corr"})
PAIRED_RESAMPLES = 1000
PAIRED_SEED = 0
LEVEL = 0.95


def is_reference(baseline: str) -> bool:
    """Does this baseline read the ground truth (a reference, not a model)?"""
    return baseline in REFERENCES


def is_tie(lo: float, hi: float) -> bool:
    """A difference is a tie when its interval includes 0 (an interval with NaN ends resolves nothing)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return True
    return lo <= 0.0 <= hi


def gap_share(model: Optional[float], floor: Optional[float], ceiling: Optional[float]) -> Optional[float]:
    """(model - floor) / (ceiling - floor): the share of the floor-to-ceiling gap a model closes."""
    vals = (model, floor, ceiling)
    if any(v is None or not math.isfinite(v) for v in vals) or ceiling - floor <= 0:
        return None
    return (model - floor) / (ceiling - floor)


@dataclass(frozen=True)
class ArmPart:
    """One data set's pieces of a difference between arms (an arm: one configuration at several model seeds):
    a - b of the arm means on all eval trials, each fit's value there, and each arm's mean over its fits on
    the shared resamples of the eval trials. `paired`: the arms hold the same model seeds in the same order, so
    fit i of a and fit i of b share their first draws and the fits' term is the spread of their differences."""

    value: float
    fits_a: tuple[float, ...]
    fits_b: tuple[float, ...]
    boot_a: np.ndarray
    boot_b: np.ndarray
    paired: bool = False


def fit_terms_of(fits_a: Sequence[float], fits_b: Sequence[float], paired: bool) -> list[tuple[float, int]]:
    """(variance of a mean, degrees of freedom) of two arms' fits: each arm's sample variance over its fit count,
    or, `paired` (fit i of each at one model seed), the per-seed differences'; an arm of one fit has none."""
    a, b = (np.asarray(f, dtype=np.float64) for f in (fits_a, fits_b))
    if paired and a.size != b.size:
        raise ValueError(f"paired arms need as many fits each (got {a.size} and {b.size})")
    spreads = [a - b] if paired else [a, b]
    return [(float(np.var(x, ddof=1)) / x.size, x.size - 1) for x in spreads if x.size > 1]


@dataclass(frozen=True)
class Difference:
    """A difference between runs (or arms of runs, or means over data sets) with its 95 % interval: paired
    bootstrap, Welch t or t over sets, as each constructor says."""

    value: float
    lo: float
    hi: float

    @classmethod
    def paired(cls, value: float, boot_a: Sequence[float], boot_b: Sequence[float],
               level: float = LEVEL) -> Difference:
        """`value` = a - b on all trials, with the bias-corrected interval of a - b over shared resamples."""
        lo, hi, _ = paired_interval(np.asarray(boot_a), np.asarray(boot_b), level, observed=value)
        return cls(value, lo, hi)

    @classmethod
    def mean_over_sets(cls, parts: Sequence[tuple[float, Sequence[float], Sequence[float]]],
                       seed: int = PAIRED_SEED, level: float = LEVEL) -> Difference:
        """The mean of a - b over independent data sets (e.g. data seeds), each given as (a - b on all its
        trials, a's and b's values on its shared resamples), with a stratified bootstrap interval.

        Each set keeps its own paired resamples, but their order is shuffled per set (a seeded permutation,
        the same for a and b), so that one resample of the mean draws each set's trials independently: sets
        whose resamples came from one seed's counts would otherwise be resampled in lockstep. With one set this
        is exactly `Difference.paired`. A NaN resample of any set makes that resample of the mean NaN, and it is
        left out of the interval (as `paired_interval` leaves out NaN differences).
        """
        if not parts:
            raise ValueError("mean_over_sets needs at least one data set")
        n_boot = {len(a) for _, a, _ in parts} | {len(b) for _, _, b in parts}
        if len(n_boot) != 1:
            raise ValueError(f"mean_over_sets: every set needs the same number of resamples (got {sorted(n_boot)})")
        rng = np.random.default_rng(seed)
        a_sum = b_sum = 0.0
        for i, (_, a, b) in enumerate(parts):
            order = np.arange(len(a)) if i == 0 else rng.permutation(len(a))
            a_sum = a_sum + np.asarray(a, dtype=np.float64)[order]
            b_sum = b_sum + np.asarray(b, dtype=np.float64)[order]
        value = float(np.mean([v for v, _, _ in parts]))
        return cls.paired(value, a_sum / len(parts), b_sum / len(parts), level)

    @classmethod
    def between_arms(cls, parts: Sequence[ArmPart], level: float = LEVEL) -> Difference:
        """The mean over data sets of (arm a's mean over its fits - arm b's), where an arm is one configuration
        fitted at several model seeds (a single run is an arm of one fit), with a Welch t interval.

        A paired interval of two single fits holds each fitted model fixed; here the variance of each set's
        difference adds the fits' spread (each arm's sample variance over its fits, over its fit count) to the
        trials' (the variance over shared resamples of the difference of the arm means, fits held fixed), and
        the mean over sets averages them. The degrees of freedom are Welch-Satterthwaite's, with the trials' term
        taken as exact: with few fits the t quantile widens the interval as a bootstrap over 2 or 3 fits
        cannot. Arms of one fit each give the normal interval of the trial resamples (NaN ends, a tie, when no
        variance is left to go on). A `paired` part (the same model seeds in both arms) counts the spread of the
        per-seed differences instead of each arm's: fits at one seed share their first draws (on area2_bump
        GNOCCHI the autoencoder), and that noise cancels.
        """
        if not parts:
            raise ValueError("between_arms needs at least one data set")
        n_sets = len(parts)
        value = float(np.mean([p.value for p in parts]))
        trials = 0.0
        fit_terms = []  # (variance term of the mean over sets, its degrees of freedom)
        for p in parts:
            d = np.asarray(p.boot_a, dtype=np.float64) - np.asarray(p.boot_b, dtype=np.float64)
            d = d[np.isfinite(d)]
            trials += (float(np.var(d, ddof=1)) if d.size > 1 else float("nan")) / n_sets**2
            fit_terms += [(term / n_sets**2, df) for term, df in fit_terms_of(p.fits_a, p.fits_b, p.paired)]
        return cls.welch_satterthwaite(value, trials, fit_terms, level)

    @classmethod
    def welch(cls, fits_a: Sequence[float], fits_b: Sequence[float], level: float = LEVEL,
              paired: bool = False) -> Difference:
        """Mean of fits a - mean of fits b, each fit's score measured on one shared set of trials (e.g. the internal
        validation trials every fit held back), with Welch's t interval over the fits: the set is held fixed, the
        fits are the draws (what a profile choice on those trials rests on). `paired` (fit i of each at one model
        seed): the t interval of the per-seed differences instead."""
        value = float(np.mean(fits_a) - np.mean(fits_b))
        return cls.welch_satterthwaite(value, 0.0, fit_terms_of(fits_a, fits_b, paired), level)

    @classmethod
    def welch_satterthwaite(cls, value: float, exact: float, terms: Sequence[tuple[float, int]],
                            level: float = LEVEL) -> Difference:
        """`value` with a t interval whose variance is `exact` (known, infinite degrees of freedom) plus each
        (variance, degrees of freedom) of `terms`, the degrees of freedom Welch-Satterthwaite's; normal when no
        term has variance; NaN ends when the variance is not finite or is 0."""
        from scipy.stats import t as student_t  # here: scipy.stats costs a command's start otherwise

        total = exact + sum(term for term, _ in terms)
        if not np.isfinite(total) or total <= 0:
            return cls(value, float("nan"), float("nan"))
        denominator = sum(term**2 / df for term, df in terms)
        df = total**2 / denominator if denominator > 0 else math.inf
        half = float(student_t.ppf(0.5 + level / 2, df)) * math.sqrt(total)
        return cls(value, value - half, value + half)

    @classmethod
    def across_sets(cls, values: Sequence[float], level: float = LEVEL) -> Difference:
        """The mean of a - b over independent data sets (data seeds) with a t interval from the spread of the
        per-set differences: each set is one unit, so everything that moves a difference from set to set (the
        data, and a fit at another draw) is inside it, where the stratified interval (`mean_over_sets`) holds
        each set's fitted models fixed. Wide with few sets (t with sets - 1 degrees of freedom); one set: NaN."""
        v = np.asarray(values, dtype=np.float64)
        value = float(v.mean()) if v.size else float("nan")
        if v.size < 2 or not np.all(np.isfinite(v)):
            return cls(value, float("nan"), float("nan"))
        return cls.welch_satterthwaite(value, 0.0, [(float(np.var(v, ddof=1)) / v.size, v.size - 1)], level)

    @property
    def tie(self) -> bool:
        return is_tie(self.lo, self.hi)

    def text(self, digits: int = 4) -> str:
        """`+d.dddd [lo, hi]`, then ` tie` when the interval includes 0."""
        v, lo, hi = (f"{x:+.{digits}f}" for x in (self.value, self.lo, self.hi))
        return f"{v} [{lo}, {hi}]" + (" tie" if self.tie else "")


@dataclass
class MetricComparison:
    """One metric across a group's runs: the top run, the runs tied with it, each run's difference to it."""

    metric: str
    top: Optional[int]
    tied: set[int]  # eligible runs marked best: the top run and every run tied with it
    diffs: list[Optional[Difference]]  # run - top run (None: no paired data for that run)
    paired: bool  # ties judged by paired intervals (else by overlapping marginal intervals)


def better_sign(metric: str) -> float:
    """+1 where higher is better, -1 where lower is (`LOWER_IS_BETTER`): the best value maximises sign * value."""
    return -1.0 if metric in LOWER_IS_BETTER else 1.0


def finite(v: Any) -> bool:
    """Is `v` a finite number (not a bool, None or NaN)?"""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def compare_metric(metric: str, values: Sequence[Optional[float]], eligible: Sequence[bool],
                   boot: Optional[Sequence[Optional[np.ndarray]]] = None,
                   intervals: Optional[Sequence[Optional[Sequence[float]]]] = None,
                   level: float = LEVEL) -> MetricComparison:
    """Top eligible run (the highest value, the lowest for `LOWER_IS_BETTER`), its ties and each run's
    difference to it.

    `boot[i]` are run i's values on shared resamples (paired); without them for the top run, ties fall back
    to overlapping marginal `intervals` (conservative: overlap is never reported as a win).
    """
    ok = [i for i, v in enumerate(values) if eligible[i] and finite(v)]
    n = len(values)
    if not ok:
        return MetricComparison(metric, None, set(), [None] * n, False)
    top = max(ok, key=lambda i: better_sign(metric) * values[i])
    diffs: list[Optional[Difference]] = [None] * n
    paired = boot is not None and boot[top] is not None
    if paired:
        for i in range(n):
            if boot[i] is not None and finite(values[i]):
                diff = 0.0 if i == top else values[i] - values[top]
                diffs[i] = Difference.paired(diff, boot[i], boot[top], level)
        tied = {i for i in ok if i == top or (diffs[i] is not None and diffs[i].tie)}
    else:
        top_iv = (intervals or [None] * n)[top]
        tied = {top}
        for i in ok:
            iv = (intervals or [None] * n)[i]
            if i != top and (not iv or not top_iv or not all(finite(x) for x in (*iv, *top_iv))
                             or (iv[1] >= top_iv[0] and iv[0] <= top_iv[1])):  # the intervals overlap
                tied.add(i)
    return MetricComparison(metric, top, tied, diffs, paired)


def paired_boot(target: Mapping, submissions: Sequence[Optional[Mapping]], n_boot: int = PAIRED_RESAMPLES,
                seed: int = PAIRED_SEED, names: Optional[Sequence[str]] = None) -> list[Optional[dict[str, np.ndarray]]]:
    """Every metric of each submission on the same `n_boot` resamples of eval trials (None stays None);
    `names`: what an error calls each submission (its file)."""
    from ..metrics_evaluate import bootstrap_values, evaluate_report

    out: list[Optional[dict[str, np.ndarray]]] = []
    for i, sub in enumerate(submissions):
        if sub is None:
            out.append(None)
            continue
        (group,) = evaluate_report(target, sub, submission_name=names[i] if names else None).groups.values()
        out.append(bootstrap_values(group, n_boot, seed))
    return out


def compare_runs(metrics: Sequence[Optional[Mapping[str, float]]], intervals: Sequence[Optional[Mapping]],
                 baselines: Sequence[str], names: Sequence[str],
                 boot: Optional[Sequence[Optional[Mapping[str, np.ndarray]]]] = None,
                 level: float = LEVEL) -> dict[str, MetricComparison]:
    """Per metric name: the comparison of a group's runs (references compared, never marked best)."""
    eligible = [bool(m) and not is_reference(b) for m, b in zip(metrics, baselines)]
    out = {}
    for name in names:
        values = [(m or {}).get(name) for m in metrics]
        ivs = [(iv or {}).get(name) for iv in intervals]
        arrays = None if boot is None else [None if b is None else b.get(name) for b in boot]
        out[name] = compare_metric(name, values, eligible, arrays, ivs, level)
    return out
