"""A PBT model's lineage: which trial trained which stretch of its epochs with which searched values.

It travels inside every checkpoint (key LINEAGE_KEY), so a PBT exploit hands the donor's history on with
its weights, and lands in sweep.json and best_run/run.json for the chosen model. No Ray here: the report
reads it too.
"""

from __future__ import annotations

from typing import Any, Optional

LINEAGE_KEY = "lineage"  # in a checkpoint: [{trial, from_epoch, config}], the values each stretch trained with


def lineage_after_start(sampled: dict[str, Any], resume: Optional[dict], trial_id: str) -> list[dict[str, Any]]:
    """The hyperparameter schedule of the model this (re)start trains: the resumed checkpoint's lineage plus
    this start's values from the epoch it resumes at (a restart with unchanged values adds nothing).

    The lineage travels inside every checkpoint, so a PBT exploit hands the donor's history on with its
    weights. (Files in a trial's folder are no record: Ray keeps a trial's working folder in more than one
    place and syncs them over each other, and rewrites result.json when PBT restarts a trial.)
    """
    lineage = list(resume.get(LINEAGE_KEY, [])) if resume else []
    if not lineage or lineage[-1]["config"] != sampled:
        lineage.append({"trial": trial_id, "from_epoch": len(resume["curves"]) if resume else 0,
                        "config": dict(sampled)})
    return lineage


def kept_values(state: dict) -> Optional[dict[str, Any]]:
    """The searched values the kept (best) weights of a checkpoint last trained with: those of the lineage
    stretch holding its best epoch (None for a checkpoint without a lineage, as sweeps before the lineage
    wrote). Neither the trial's config (Ray rewrites that on a PBT exploit at a trial's last epoch, whose new
    values never train) nor the lineage's last stretch (a PBT model keeps its best epoch, often generations
    before its last, and later values never touched those weights)."""
    lineage = state.get(LINEAGE_KEY)
    if not lineage:
        return None
    return stretch_at(lineage, state["best_epoch"])["config"]


def stretch_at(lineage: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    """The lineage entry that trained `epoch` (counted from 0; the first entry for an epoch before any)."""
    return ([entry for entry in lineage if entry["from_epoch"] <= epoch] or lineage[:1])[-1]


def stretch_ends(lineage: list[dict[str, Any]], epochs: Any) -> list[Any]:
    """The epoch count at which each stretch of a lineage hands over (the last: the model's `epochs`)."""
    return [e["from_epoch"] for e in lineage[1:]] + [epochs]


def stretches(lineage: list[dict[str, Any]], epochs: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(epochs as "first-last", 1-based; trial; values) per stretch of a lineage whose model ran `epochs`."""
    return [(f"{e['from_epoch'] + 1}-{end}", e["trial"], e["config"])
            for e, end in zip(lineage, stretch_ends(lineage, epochs))]


def lineage_problem(lineage: Any, epochs: int) -> Optional[str]:
    """What makes `lineage` no schedule of a model that trained `epochs` epochs (None when it is one): entries
    {trial, from_epoch, config}, the first from epoch 0, each later one from a later epoch, all before `epochs`."""
    if not isinstance(lineage, list) or not lineage:
        return "not a non-empty list"
    last = -1
    for i, entry in enumerate(lineage):
        if not (isinstance(entry, dict) and isinstance(entry.get("config"), dict) and "trial" in entry
                and isinstance(entry.get("from_epoch"), int)):
            return f"[{i}] is not {{trial, from_epoch, config}}"
        start = entry["from_epoch"]
        if (i == 0 and start != 0) or (i and start <= last) or start >= epochs:
            return (f"[{i}].from_epoch is {start} (expected 0 for the first stretch, then increasing epochs below "
                    f"the model's {epochs})")
        last = start
    return None
