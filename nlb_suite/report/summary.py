"""The summary table of one dataset group as plain cells (shared by the HTML and Markdown outputs)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .build import GroupData
from .published import SOURCE


@dataclass
class Cell:
    """One metric cell: value, interval, and whether it is the best model value of its column."""

    value: Optional[float]
    interval: Optional[list[float]] = None
    best: bool = False

    def text(self) -> str:
        if self.value is None or not math.isfinite(self.value):
            return "–"
        return f"{self.value:.4f}"

    def ci_text(self) -> str:
        if not self.interval or not all(math.isfinite(v) for v in self.interval):
            return ""
        return f"[{self.interval[0]:.3f}, {self.interval[1]:.3f}]"


@dataclass
class Row:
    """One row: a run, the ground-truth ceiling, or a published leaderboard entry."""

    name: str
    kind: str  # "run", "ceiling" or "published"
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


def summarize(group: GroupData) -> Summary:
    """Every metric per run with intervals (best marked), the ceiling, and published rows when real data."""
    names = group.metric_names
    ceiling = group.ceiling
    notes: list[str] = []
    if not group.has_metrics:
        notes.append(f"phase {group.phase}: no local target (held-out data are hidden), so no metrics; "
                     "the table shows what each run folder holds")
        rows = [Row(r.label, "run", [], _test_extra(r), r.color) for r in group.runs]
        return Summary([], ["eval trials", "forward rates", "submission", "fit time", "predict time"], rows, notes)
    rows = []
    for r in group.runs:
        m, iv = r.record.metrics or {}, r.record.intervals or {}
        cells = [Cell(m.get(k), iv.get(k)) for k in names]
        share = "–"
        if ceiling and ceiling.metrics.get("co-bps") and "co-bps" in m:
            share = f"{100 * m['co-bps'] / ceiling.metrics['co-bps']:.1f}%"
        kind = "ceiling" if r.is_oracle else "run"
        rows.append(Row(r.label, kind, cells, [share, _secs(r.record.info, "fit_s")], r.color,
                        "ground-truth ceiling" if r.is_oracle else ("no metrics" if not m else "")))
    for j, _ in enumerate(names):
        vals = [row.cells[j].value for row in rows if row.kind == "run" and row.cells[j].value is not None
                and math.isfinite(row.cells[j].value)]
        if len(vals) >= 1:
            best = max(vals)
            for row in rows:
                if row.kind == "run" and row.cells[j].value == best:
                    row.cells[j].best = True
    if ceiling and not any(r.is_oracle for r in group.runs):
        rows.append(Row("true rates", "ceiling", [Cell(ceiling.metrics.get(k), ceiling.intervals.get(k)) for k in names],
                        ["100%", "–"], note="ground-truth ceiling, " + ceiling.source))
    elif group.synthetic and not ceiling:
        notes.append("no ground-truth ceiling: the data folder or its ground_truth.h5 is not available")
    for p in group.published:
        rows.append(Row(p.model, "published", [Cell(p.metrics.get(k)) for k in names], ["–", "–"],
                        note="published" + (f"; {p.note}" if p.note else "")))
    if group.published:
        notes.append(f"published rows: {SOURCE}. They were scored on the hidden test split; runs here are "
                     f"phase {group.phase}, so compare them as a rough guide only")
    elif not group.synthetic:
        notes.append(f"no published leaderboard rows on file for {group.dataset} at {group.bin_ms} ms")
    if ceiling:
        return Summary(names, ["co-bps % of ceiling", "fit time"], rows, notes)
    return Summary(names, ["fit time"], [_drop_share(r) for r in rows], notes)


def _drop_share(row: Row) -> Row:
    row.extra = row.extra[1:]
    return row


def _secs(info: dict, key: str) -> str:
    v = (info.get("timings") or {}).get(key)
    return f"{v:.1f} s" if isinstance(v, (int, float)) else "–"


def _test_extra(run) -> list[str]:
    info = run.record.info
    size = (run.record.path / "submission.h5").stat().st_size
    return [str(info.get("n_eval_trials", "–")), "yes" if info.get("has_forward") else "no",
            f"submission.h5 ({size / 1e6:.1f} MB)", _secs(info, "fit_s"), _secs(info, "predict_s")]
