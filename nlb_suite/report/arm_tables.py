"""The arm tables of one group as plain cells (shared by `compare`, the HTML and the Markdown outputs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .build import GroupData
from .paired import gap_share
from .summary import difference_cells, gap_terms

ARMS_NOTE = ("arms: runs with one baseline, device and resolved config at several model seeds, each metric the mean "
             "over its fits with their SD; each arm's difference to the top arm has a Welch t interval that adds the "
             "fits' spread to the eval trials' (wide with few fits; paired by seed when two arms of one baseline hold "
             "the same seeds), where a run's paired interval holds its fitted model fixed. An arm of one fit is exact "
             "for a baseline whose rates do not depend on the seed (smoothing, GPFA); one fit of a trained model has "
             "no estimate of its own noise and is shown, not judged (no mark, no difference): fit it at more seeds")


@dataclass
class ArmCell:
    """One cell of the arm table: its text and whether it carries the best mark, shared with tied arms."""

    text: str
    best: bool = False
    tie: bool = False

    def marked(self, star: str) -> str:
        """The text with the best mark `star` after it (`star` tie when the mark is shared)."""
        return self.text + ((f" {star} tie" if self.tie else f" {star}") if self.best else "")


def mean_sd(values: Sequence[float]) -> str:
    """`mean (SD)` of values (the sample SD), the mean alone for one value."""
    mean = f"{np.mean(values):.4f}"
    return mean if len(values) < 2 else f"{mean} ({np.std(values, ddof=1):.4f})"


def shared_validation_column(group: GroupData) -> bool:
    """Show the validation co-bps column: some arm validated, and every arm that did held back the same trials."""
    ids = {a.validation_ids for a in group.arms if a.validation}
    return len(ids) == 1


def arm_table(group: GroupData) -> tuple[list[str], list[list[ArmCell]]]:
    """One row per arm (`group.arms`): fits, model seeds, each metric's mean over fits (SD) with the best marks
    of `group.arm_comparison`, the share of the smoothing-to-ceiling gap its mean closes, and the
    internal-validation co-bps when the arms' fits validated on one set of trials."""
    if not group.arms:
        return [], []
    names = group.metric_names
    floor_run, _, gap_metrics = gap_terms(group)
    floor = floor_run.record.metrics if floor_run else {}
    ceiling = group.ceiling.metrics if group.ceiling else {}
    valid = shared_validation_column(group)
    rows = []
    for i, arm in enumerate(group.arms):
        size = f"{arm.size}" + ("" if arm.judged else " (not judged)")
        seeds = ", ".join("–" if x is None else str(x) for x in arm.seeds)
        cells = [ArmCell(arm.label), ArmCell(size), ArmCell(seeds)]
        for k in names:
            comp = group.arm_comparison.get(k)
            best = bool(comp and i in comp.tied)
            fits = arm.fits.get(k)
            cells.append(ArmCell(mean_sd(fits) if fits else "–", best, best and len(comp.tied) > 1))
        for k in gap_metrics:
            share = gap_share(arm.mean(k), floor.get(k), ceiling.get(k))
            cells.append(ArmCell("–" if share is None else f"{100 * share:.1f}%"))
        if valid:
            cells.append(ArmCell(mean_sd(arm.validation) if arm.validation else "–"))
        rows.append(cells)
    headers = ["arm", "fits", "model seeds"] + [f"{k} mean (SD)" for k in names] + \
        [f"{k} gap closed" for k in gap_metrics]
    return headers + (["validation co-bps mean (SD)"] if valid else []), rows


def arm_differences(group: GroupData) -> tuple[list[str], list[list[str]]]:
    """Each arm's difference to the top arm of every metric (Welch t interval; "tie" if it holds 0); empty
    unless some metric has two arms to compare."""
    names = [k for k in group.metric_names if (c := group.arm_comparison.get(k)) and c.top is not None]
    if not any(any(d is not None for d in group.arm_comparison[k].diffs) for k in names):
        return [], []
    rows = [[arm.label] + difference_cells([group.arm_comparison[k] for k in names], i)
            for i, arm in enumerate(group.arms)]
    return ["arm"] + [f"{k} - top arm" for k in names], rows


def arm_notes(group: GroupData) -> list[str]:
    """What the arm tables mean, which arms were not judged and why, and the runs left out of an arm."""
    if not group.arms:
        return []
    out = [ARMS_NOTE]
    unpaired = [a.label for a in group.arms if a.judged and a.boot is None]
    if unpaired:
        out.append("not judged for want of the paired resamples of each fit (the runs' data and target, --ci above "
                   "0): " + ", ".join(unpaired))
    if any(a.validation for a in group.arms) and not shared_validation_column(group):
        out.append("validation co-bps not shown: the arms held back different trials, so their scores are not on "
                   "one set")
    for arm in group.arms:
        if arm.left_out:
            out.append(f"{arm.label}: left out of the arm as the same draw as a run it holds (the same model seed, "
                       "or a baseline whose rates do not depend on the seed): " + ", ".join(arm.left_out))
    return out
