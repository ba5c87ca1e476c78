"""Ensembles: the average of the rates of several runs of one dataset, bin and phase, as a new run folder.

Top NLB entries are ensembles (STNDT ranks checkpoints by validation co-bps and averages the top k). Here
the members and the ensemble size are chosen from the runs' internal validation split only (run.json
`internal_validation`, written by `nlb-eval run` for baselines that hold trials back), never from the eval
trials:

1. rank the runs by their own internal-validation co-bps (best first; ties keep the command-line order);
2. size: `size` if given (the top `size` runs); otherwise, on the validation trials every run held back
   (runs of NDT/STNDT share them across seeds, as do LFADS/GNOCCHI runs given one `valid_seed`: the split then
   has its own seed), the co-bps of the average of
   the top k rates for every k from `min_size` to `max_size` (default: 1 to all runs), and the best k (the
   smallest on a tie). Runs that share fewer than `MIN_SHARED` validation trials cannot be sized this way:
   give `size`.

A run refitted on all train trials (`refit: true`) has trained on its validation trials: it is ranked by its
selection fit's score (run.json `selection_fit`, the same trials held back), holds back no trial for the
size choice, so an ensemble with such a member needs `size`, and gets no validation score of its own.

Rates are averaged arithmetically, every array of the submission group (forward rates when every member
has them). The new folder holds what a run holds (submission.h5, metrics/intervals/per-neuron co-bps in
phase val, config.yaml, run.json with `ensemble`: members, ranking, the size table and the rule), so
compare, report and package take it like any run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from .baseline_api import Rates, TrialSet
from .errors import NLBInputError, input_error
from .h5io import sha256_file
from .internal_validation import FIELD, SELECTION_FIELD, score_trials
from .jsonio import write_json
from .outputs import replace_folder
from .runs import (
    FILES_FIELD,
    SUBMISSION_FIELD,
    RunRecord,
    claim_run_dir,
    data_checksums,
    plain_metrics,
    provenance,
    read_run,
    written_files,
)

MIN_SHARED = 5  # validation trials the runs must share to choose the size on them
MATCH_FIELDS = ("dataset", "bin_ms", "phase", "result_key", "n_train_trials", "n_eval_trials", "data_sha256")
BASELINE = "ensemble"


@dataclass
class Member:
    """One run of the ensemble: its record, its internal validation score and its submission group."""

    record: RunRecord
    score: float  # internal-validation co-bps (a refit run: its selection fit's)
    valid_ids: list[int]  # the train trials its rates have not seen (none for a refit run)
    rates: dict[str, np.ndarray]
    refit: bool = False  # trained again on every train trial after its selection fit

    @property
    def path(self) -> Path:
        return self.record.path


@dataclass
class Selection:
    """Members in rank order, the chosen size and how it was chosen."""

    ranked: list[Member]
    size: int
    rule: str
    table: list[dict[str, Any]]  # per candidate size k: {"k", "co-bps"} on the shared validation trials
    shared_ids: list[int]  # validation trials held back by every ranked run

    @property
    def members(self) -> list[Member]:
        return self.ranked[: self.size]


def read_member(path: str | Path) -> Member:
    """A run folder with an internal validation score; one-line errors otherwise."""
    from .submission import read_submission

    record = read_run(path)
    run_json = record.path / "run.json"
    lacking = [f for f in MATCH_FIELDS if record.info.get(f) is None]
    if lacking:  # the members must be shown to match on these, and the ensemble's run.json repeats them
        raise NLBInputError(f"{run_json}: {', '.join(lacking)}: missing (expected the run.json of a current "
                            "`nlb-eval run`, which records them)")
    val = record.info.get(FIELD)
    refit = val is None and record.info.get(SELECTION_FIELD) is not None
    field = SELECTION_FIELD if refit else FIELD
    if refit:
        val = record.info[SELECTION_FIELD]
    score = val.get("co-bps") if isinstance(val, dict) else None
    ids = val.get("trial_ids") if isinstance(val, dict) else None
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not np.isfinite(score) \
            or not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise NLBInputError(f"{run_json}: {field}: missing or malformed (expected {{\"co-bps\": number, "
                            "\"trial_ids\": [int, ...]}, which `nlb-eval run` records for baselines with an "
                            "internal validation split: ndt, stndt, lfads, gnocchi)")
    groups = read_submission(record.path / "submission.h5")
    key = record.info.get("result_key")
    if key not in groups:
        raise NLBInputError(f"{record.path / 'submission.h5'}: no group {key!r} (run.json result_key)")
    return Member(record, float(score), [] if refit else ids, groups[key], refit)


def check_sizable(members: list[Member]) -> None:
    """Choosing the size needs trials no member trained on: one line naming a refit member otherwise."""
    refit = next((m for m in members if m.refit), None)
    if refit is not None:
        raise NLBInputError(f"{refit.path}: refitted on all train trials (refit: true), so its rates have seen "
                            "the validation trials the ensemble size is chosen on: give --size K to average the "
                            "top K runs by their (selection fits') validation co-bps")


def check_compatible(members: list[Member]) -> None:
    """Every member must be a run of the same dataset, bin, phase and trials (one-line error naming the field)."""
    if len(members) < 2:
        raise NLBInputError(f"an ensemble needs at least 2 runs (got {len(members)})")
    seen: dict[Path, Path] = {}
    first = members[0]
    for m in members:
        real = m.path.resolve()
        if real in seen:
            raise NLBInputError(f"{m.path}: given twice (same folder as {seen[real]})")
        seen[real] = m.path
        for name in MATCH_FIELDS:
            a, b = first.record.info.get(name), m.record.info.get(name)
            if a != b:
                what = "data checksums differ" if name == "data_sha256" else f"{name} {b!r} differs"
                ref = "" if name == "data_sha256" else f" {a!r}"
                raise NLBInputError(f"{m.path}/run.json: {what} from {first.path}'s{ref} (an ensemble "
                                    "averages runs of one dataset, bin, phase and trials)")
        for arr, value in first.rates.items():
            if arr in m.rates and m.rates[arr].shape != value.shape:
                raise NLBInputError(f"{m.path}/submission.h5: {arr} has shape {m.rates[arr].shape} "
                                    f"(expected {value.shape}, as in {first.path})")
        missing = sorted(a for a in first.rates if a not in m.rates and not a.endswith("_forward"))
        if missing:
            raise NLBInputError(f"{m.path}/submission.h5: missing {', '.join(missing)}")


def average_rates(members: list[Member]) -> dict[str, np.ndarray]:
    """The mean of every array the members all have (forward rates only when every member has them)."""
    names = [a for a in members[0].rates if all(a in m.rates for m in members)]
    return {a: np.mean([m.rates[a].astype(np.float64) for m in members], axis=0).astype(np.float32) for a in names}


def rank(members: list[Member]) -> list[Member]:
    """Best internal-validation co-bps first; ties keep the given order."""
    return sorted(members, key=lambda m: -m.score)


def validation_score(members: list[Member], train: TrialSet, rows: np.ndarray) -> float:
    """co-bps of the members' averaged train rates on the train trials at `rows`."""
    avg = average_rates(members)
    rates = Rates(heldin=avg["train_rates_heldin"], heldout=avg["train_rates_heldout"])
    return float(score_trials(rates, train, rows)["co-bps"])


def shared_validation(members: list[Member]) -> list[int]:
    """Ids of the validation trials every member held back."""
    shared = set(members[0].valid_ids)
    for m in members[1:]:
        shared &= set(m.valid_ids)
    return sorted(shared)


def check_shared(members: list[Member]) -> None:
    """Choosing the size needs at least MIN_SHARED validation trials common to all runs (one-line error)."""
    n = len(shared_validation(members))
    if n < MIN_SHARED:
        raise NLBInputError(f"the runs share {n} internal validation trials (need at least {MIN_SHARED} to choose "
                            "the ensemble size on them): give --size K to average the top K runs by their own "
                            "validation co-bps")


def size_range(n: int, size: Optional[int] = None, min_size: Optional[int] = None,
               max_size: Optional[int] = None) -> tuple[int, int]:
    """The candidate sizes (lowest, highest) for `n` runs; one-line errors for sizes the runs cannot give."""
    if size is not None:
        if min_size is not None or max_size is not None:
            raise NLBInputError("--size: give either --size or --min-size/--max-size, not both")
        if not 1 <= size <= n:
            raise NLBInputError(f"--size: {size} is not between 1 and the {n} runs given")
        return size, size
    for flag, value in (("--min-size", min_size), ("--max-size", max_size)):
        if value is not None and not 1 <= value <= n:
            raise NLBInputError(f"{flag}: {value} is not between 1 and the {n} runs given")
    low = 1 if min_size is None else min_size
    high = n if max_size is None else max_size
    if low > high:
        raise NLBInputError(f"--min-size: {low} is above --max-size {high}")
    return low, high


def select(members: list[Member], train: TrialSet, size: Optional[int] = None, min_size: Optional[int] = None,
           max_size: Optional[int] = None) -> Selection:
    """Rank by each run's own validation co-bps; size from `size` or, among `min_size`..`max_size`, the best
    co-bps of the top-k average on the shared validation trials."""
    ranked = rank(members)
    shared_ids = shared_validation(ranked)
    low, high = size_range(len(ranked), size, min_size, max_size)
    if size is not None:
        whose = " (a refit run's: its selection fit's)" if any(m.refit for m in ranked) else ""
        return Selection(ranked, size, f"given size: the top {size} runs by their own validation co-bps{whose}",
                         [], shared_ids)
    check_sizable(members)
    check_shared(members)
    row_of = {int(t): i for i, t in enumerate(np.asarray(train.trial_ids))}
    missing = [t for t in shared_ids if t not in row_of]
    if missing:
        raise NLBInputError(f"validation trial ids {missing[:3]} of the runs are not train trials of the data")
    rows = np.array([row_of[t] for t in shared_ids])
    table = [{"k": k, "co-bps": validation_score(ranked[:k], train, rows)} for k in range(low, high + 1)]
    best = max(table, key=lambda r: (r["co-bps"], -r["k"]))
    among = "" if (low, high) == (1, len(ranked)) else f" (k from {low} to {high})"
    rule = (f"size with the best co-bps of the average of the top k runs{among} on the {len(shared_ids)} internal "
            "validation trials every run held back")
    return Selection(ranked, best["k"], rule, table, shared_ids)


def _check_data(members: list[Member], data: Optional[Path]) -> Path:
    """The data folder (run.json's or `data`), with the NWB checksums the runs recorded."""
    info = members[0].record.info
    folder = Path(data) if data is not None else Path(str(info.get("data_dir", "")))
    if not folder.exists():
        raise NLBInputError(f"{folder}: data folder of {members[0].path} not found (give --data DIR)")
    if data_checksums(folder) != info.get("data_sha256"):
        raise NLBInputError(f"{folder}: the NWB files differ from those the runs used (SHA-256 in run.json)")
    return folder


def build_ensemble(paths: list[str | Path], out: str | Path, size: Optional[int] = None,
                   data: Optional[str | Path] = None, ci: int = 200, seed: int = 0,
                   overwrite: bool = False, progress: bool = True, tensors=None, min_size: Optional[int] = None,
                   max_size: Optional[int] = None) -> tuple[Path, Selection, Optional[dict]]:
    """Write the ensemble run folder `out`; returns (folder, selection, metrics or None in phase test).

    `tensors`: the runs' benchmark tensors if already loaded (the data folder's checksums are checked either way).
    `min_size`/`max_size`: the sizes the validation choice may pick from (default: 1 to all runs).
    """
    from .datasets.tensors import load
    from .metrics_evaluate import check_bootstrap, evaluate_report
    from .outputs import discard_temp_dir, make_temp_dir
    from .runs import trial_sets
    from .submission import write_submission

    check_bootstrap(ci, seed)
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in paths):
        raise input_error(str(out), "--out: is one of the ensemble's member runs; nothing touched",
                          "a new folder for the ensemble")
    replacing = claim_run_dir(out, overwrite)
    members = [read_member(p) for p in paths]
    check_compatible(members)
    size_range(len(members), size, min_size, max_size)  # before minutes of loading
    if size is None:  # before minutes of loading
        check_sizable(members)
        check_shared(members)
    info = members[0].record.info
    folder = _check_data(members, Path(data) if data is not None else None)
    t0 = time.perf_counter()
    if tensors is None:
        tensors = load(info["dataset"], folder, bin_ms=int(info["bin_ms"]), phase=info["phase"], progress=progress)
    train, _ = trial_sets(tensors)
    timings = {"tensors_s": time.perf_counter() - t0}
    selection = select(members, train, size, min_size, max_size)
    chosen = selection.members
    rates = average_rates(chosen)
    submission = {info["result_key"]: rates}
    own = _own_validation(chosen, train)
    work = make_temp_dir(out)
    try:
        write_submission(submission, work / "submission.h5")
        metrics = None
        if tensors.target is not None:
            t0 = time.perf_counter()
            report = evaluate_report(tensors.target_dict(), submission, ci=ci, seed=seed)
            timings["score_s"] = time.perf_counter() - t0
            write_json(work / "metrics.json", report.results)
            metrics = plain_metrics(next(iter(report.results[0].values())))
            if report.intervals:
                write_json(work / "intervals.json", report.intervals)
            score = report.groups[info["result_key"]]
            write_json(work / "per_neuron_co_bps.json", [float(v) for v in score.per_neuron_co_bps])
        record = _record(selection)
        (work / "config.yaml").write_text(yaml.safe_dump(
            {"baseline": BASELINE, "dataset": info["dataset"], "bin_ms": info["bin_ms"], "phase": info["phase"],
             "seed": seed, "device": "cpu", "config": {"members": [str(m.path) for m in chosen], "size": selection.size,
                                                       "size_given": size is not None, "min_size": min_size,
                                                       "max_size": max_size, "rule": selection.rule},
             "config_sources": ["nlb-eval ensemble"]}, sort_keys=False))
        (work / "log.txt").write_text(f"ensemble of {selection.size} of {len(selection.ranked)} runs: {selection.rule}\n")
        write_json(work / "run.json", {
            **provenance(None), "dataset": info["dataset"], "result_key": info["result_key"], "bin_ms": info["bin_ms"],
            "phase": info["phase"], "baseline": BASELINE, "seed": seed, "uses_seed": False, "device": "cpu",
            "synthetic": bool(info.get("synthetic")), "data_dir": str(folder.absolute()), "data_sha256": info["data_sha256"],
            "n_train_trials": info["n_train_trials"], "n_eval_trials": info["n_eval_trials"], "timings": timings,
            "has_forward": "eval_rates_heldin_forward" in rates, FIELD: own, "ensemble": record,
            SUBMISSION_FIELD: sha256_file(work / "submission.h5"), FILES_FIELD: written_files(work),
        })
    except BaseException:
        discard_temp_dir(work)
        raise
    try:
        replace_folder(work, out, replacing)
    except BaseException:
        discard_temp_dir(work)
        raise
    return out, selection, metrics


def _own_validation(chosen: list[Member], train: TrialSet) -> Optional[dict[str, Any]]:
    """The ensemble's internal validation score, on the validation trials all its members held back."""
    row_of = {int(t): i for i, t in enumerate(np.asarray(train.trial_ids))}
    ids = [t for t in shared_validation(chosen) if t in row_of]
    if not ids:
        return None
    rows = np.array([row_of[t] for t in ids])
    return {"co-bps": validation_score(chosen, train, rows), "fp-bps": None, "n_trials": len(ids), "trial_ids": ids}


def _record(selection: Selection) -> dict[str, Any]:
    """What run.json records about the choice."""
    return {
        "size": selection.size, "rule": selection.rule, "n_shared_validation_trials": len(selection.shared_ids),
        "members": [str(m.path) for m in selection.members],
        "ranking": [{"run": str(m.path), "baseline": m.record.info.get("baseline"), "seed": m.record.info.get("seed"),
                     "validation co-bps": m.score, "refit": m.refit, "chosen": i < selection.size}
                    for i, m in enumerate(selection.ranked)],
        "sizes": selection.table,
    }

