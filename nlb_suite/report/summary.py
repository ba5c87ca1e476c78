"""The summary table of one dataset group as plain cells (shared by the HTML and Markdown outputs)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .arms import ArmComparison
from .build import GroupData, RunData
from .paired import CEILING_METRICS, GAP_FLOOR, LOWER_IS_BETTER, MetricComparison, gap_share
from .published import SOURCE


@dataclass
class Cell:
    """One metric cell: value, interval, whether it is marked best, and whether that mark is shared (tie)."""

    value: Optional[float]
    interval: Optional[list[float]] = None
    best: bool = False
    tie: bool = False  # marked best together with other runs it is tied with

    def text(self) -> str:
        if self.value is None or not math.isfinite(self.value):
            return "–"
        return f"{self.value:.4f}"

    def ci_text(self) -> str:
        if not self.interval or not all(math.isfinite(v) for v in self.interval):
            return ""
        return f"[{self.interval[0]:.3f}, {self.interval[1]:.3f}]"

    def mark(self) -> str:
        """'★' for the best run, '★ tie' for each of several runs tied for best."""
        return ("★ tie" if self.tie else "★") if self.best else ""


@dataclass
class Row:
    """One row: a run, a reference (true rates, true PSTH), or a published leaderboard entry."""

    name: str
    kind: str  # "run", "reference" or "published"
    cells: list[Cell]
    extra: list[str] = field(default_factory=list)
    color: str = ""
    note: str = ""


@dataclass
class Summary:
    metrics: list[str]
    extra_headers: list[str]
    rows: list[Row]
    notes: list[str]


REFERENCE_NOTES = {"oracle": "true rates: the ceiling for co-bps and fp-bps only",
                   "true_psth": "true PSTH: condition mean of the true rates over train trials"}


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _shares(m: dict, ceiling: Optional[dict], floor: Optional[dict], metric: str) -> tuple[str, str]:
    """(% of ceiling, share of the smoothing-to-ceiling gap closed) of one run on one metric."""
    c = (ceiling or {}).get(metric)
    v = m.get(metric)
    pct = _pct(v / c) if v is not None and c and math.isfinite(v) and math.isfinite(c) and c > 0 else "–"
    return pct, _pct(gap_share(v, (floor or {}).get(metric), c))


def gap_terms(group: GroupData) -> tuple[Optional[RunData], list[str], list[str]]:
    """The floor run of "share of the gap closed" (smoothing), the metrics the true rates are a ceiling for
    (% of ceiling), and those of them the floor run has too (gap closed)."""
    ceiling = group.ceiling.metrics if group.ceiling else None
    floor_run = next((r for r in group.runs if r.baseline == GAP_FLOOR and r.record.metrics), None)
    floor = floor_run.record.metrics if floor_run else None
    share_metrics = [k for k in CEILING_METRICS if k in group.metric_names and ceiling and ceiling.get(k)]
    return floor_run, share_metrics, [k for k in share_metrics if floor and floor.get(k) is not None]


def summarize(group: GroupData, sort: bool = False) -> Summary:
    """Every metric per run with intervals, best marks shared by tied runs, references, % of ceiling and
    the share of the smoothing-to-ceiling gap closed; published rows (test phase) on real data.
    `sort`: runs by co-bps, best first."""
    names = group.metric_names
    ceiling = group.ceiling.metrics if group.ceiling else None
    notes: list[str] = []
    if not group.has_metrics:
        notes.append(f"phase {group.phase}: no local target (held-out data are hidden), so no metrics; "
                     "the table shows what each run folder holds")
        truth = _truth_headers(group)
        rows = [Row(r.label, "run", [], _test_extra(r) + _truth_cells(r, truth), r.color) for r in group.runs]
        return Summary([], ["eval trials", "forward rates", "submission", "fit time", "predict time"] + truth,
                       rows, notes + _truth_notes(truth))
    floor_run, share_metrics, gap_metrics = gap_terms(group)
    floor = floor_run.record.metrics if floor_run else None
    truth = _truth_headers(group)
    indexed = []
    for i, r in enumerate(group.runs):
        m, iv = r.record.metrics or {}, r.record.intervals or {}
        cells = []
        for k in names:
            comp = group.comparison.get(k)
            best = bool(comp and i in comp.tied)
            cells.append(Cell(m.get(k), iv.get(k), best, best and len(comp.tied) > 1))
        extra = []
        for k in share_metrics:
            pct, gap = _shares(m, ceiling, floor, k)
            extra += [pct] + ([gap] if k in gap_metrics else [])
        note = REFERENCE_NOTES.get(r.baseline, "reference") if r.is_reference else ("no metrics" if not m else "")
        extra += _truth_cells(r, truth)
        indexed.append((m.get("co-bps"), Row(r.label, "reference" if r.is_reference else "run", cells,
                                              extra + [_secs(r.record.info, "fit_s")], r.color, note)))
    if sort:
        indexed.sort(key=lambda p: -p[0] if p[0] is not None and math.isfinite(p[0]) else math.inf)
    rows = [row for _, row in indexed]
    if ceiling and not any(r.is_oracle for r in group.runs):
        extra = []
        for k in share_metrics:
            extra += ["100.0%"] + (["100.0%"] if k in gap_metrics else [])
        extra += ["1.0000", "–"] if truth else []
        rows.append(Row("true rates", "reference", [Cell(ceiling.get(k), group.ceiling.intervals.get(k)) for k in names],
                        extra + ["–"], note=f"{REFERENCE_NOTES['oracle']}; {group.ceiling.source}"))
    elif group.synthetic and not ceiling:
        notes.append("no ground-truth ceiling: the data folder or its ground_truth.h5 is not available")
    n_extra = len(rows[0].extra) - 1 if rows else 0
    for p in group.published:
        rows.append(Row(p.model, "published", [Cell(p.metrics.get(k)) for k in names], ["–"] * (n_extra + 1),
                        note="published, test phase" + (f"; {p.note}" if p.note else "")))
    if group.published:
        notes.append(f"published rows: {SOURCE}. They are test-phase scores on the hidden test split"
                     + ("" if group.phase == "test" else f"; the runs here are phase {group.phase} (other trials), "
                        "so the two are not a like-for-like comparison"))
    elif not group.synthetic:
        notes.append(f"no published leaderboard rows on file for {group.dataset} at {group.bin_ms} ms")
    if any(len(c.tied) > 1 for c in group.comparison.values()):
        notes.append("★ tie: the best value and every run whose difference to it is not resolved by the eval "
                     "trials share the mark")
    if group.paired_note:
        notes.append(group.paired_note)
    if any(k in LOWER_IS_BETTER for k in names):
        notes.append("tp corr: more negative is better (faster neural dynamics, shorter produced intervals), so the "
                     "top run is the most negative and a worse run's difference to it is positive")
    if share_metrics:
        what = (f"share of the gap closed = (run - {floor_run.label}) / (true rates - {floor_run.label})"
                if gap_metrics else "")
        notes.append("% of ceiling: run / true rates, for co-bps and fp-bps only (the true rates are not a "
                     "ceiling for vel R2 or psth R2)" + (f"; {what}" if what else ""))
    headers = []
    for k in share_metrics:
        headers += [f"{k} % of ceiling"] + ([f"{k} gap closed"] if k in gap_metrics else [])
    return Summary(names, headers + truth + ["fit time"], rows, notes + _truth_notes(truth))


TRUTH_HEADERS = ["rate R2 (truth)", "state R2 (truth)"]


def _truth_headers(group: GroupData) -> list[str]:
    """The ground-truth columns, when any run of the group was scored against the truth (synthetic data)."""
    return TRUTH_HEADERS if any(r.record.truth for r in group.runs) else []


def _truth_cells(run, headers: list[str]) -> list[str]:
    """Rate R2 and state R2 (with the model's latent count) of a run, or dashes."""
    if not headers:
        return []
    t = run.record.truth or {}

    def num(v) -> str:
        return f"{v:.4f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"
    state = num(t.get("state R2"))
    if state != "–" and t.get("latent dims"):
        state += f" ({t['latent dims']} dims)"
    return [num(t.get("rate R2")), state]


def _truth_notes(headers: list[str]) -> list[str]:
    if not headers:
        return []
    return ["rate R2 (truth): predicted vs true rates of every unit on the eval trials, mean over units; state "
            "R2 (truth): affine map from the true latents to the model's, fitted on the train trials, R2 of each "
            "inferred dimension on the eval trials (floor -10), mean over dimensions ('–': the model exposes no "
            "latents)"]


def differences(group: GroupData) -> tuple[list[str], list[list[str]]]:
    """Each run's difference to the top run of every metric, with its paired interval ("tie" if it has 0)."""
    names = [k for k in group.metric_names if group.comparison.get(k) and group.comparison[k].top is not None]
    if not names or not any(group.comparison[k].paired for k in names):
        return [], []
    rows = []
    for i, r in enumerate(group.runs):
        if not r.record.metrics:
            continue
        rows.append([r.label] + difference_cells([group.comparison[k] for k in names], i))
    return ["run"] + [f"{k} - top" for k in names], rows


def difference_cells(comparisons: list[MetricComparison | ArmComparison], i: int) -> list[str]:
    """Row i's difference to the top of each comparison (a run's or an arm's): "top", the value with its interval,
    or "–" where it has none."""
    return ["top" if i == c.top else (c.diffs[i].text() if c.diffs[i] is not None else "–") for c in comparisons]


def _secs(info: dict, key: str) -> str:
    v = (info.get("timings") or {}).get(key)
    return f"{v:.1f} s" if isinstance(v, (int, float)) else "–"


def _test_extra(run) -> list[str]:
    info = run.record.info
    size = (run.record.path / "submission.h5").stat().st_size
    return [str(info.get("n_eval_trials", "–")), "yes" if info.get("has_forward") else "no",
            f"submission.h5 ({size / 1e6:.1f} MB)", _secs(info, "fit_s"), _secs(info, "predict_s")]
