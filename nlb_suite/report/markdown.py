"""The Markdown companion of the report: summary tables, notes and provenance (plots stay in the HTML)."""

from __future__ import annotations

from .arm_tables import ArmCell, arm_differences, arm_notes, arm_table
from .build import GroupData
from .data_sets import Family, family_differences, family_table
from .summary import differences, summarize


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _rows(headers: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            + ["| " + " | ".join(_cell(x) for x in r) + " |" for r in rows] + [""])


def _bold_best(rows: list[list[ArmCell]]) -> list[list[str]]:
    """Cell texts, the best in bold as in the run table ("(tie)" when the mark is shared)."""
    return [[f"**{c.text}**" + (" (tie)" if c.tie else "") if c.best else c.text for c in r] for r in rows]


def families_markdown(families: list[Family], notes: list[str]) -> list[str]:
    """"Means over data sets": per family each configuration's mean over the data sets, its differences to the top
    with t intervals over the sets, and the notes; the notes alone where data sets were not pooled."""
    if not families and not notes:
        return []
    lines = ["## Means over data sets", ""]
    for f in families:
        headers, rows = family_table(f)
        lines += [f"### {f.title}", ""] + _rows(headers, _bold_best(rows))
        d_headers, d_rows = family_differences(f)
        if d_rows:
            lines += ["Differences to the top configuration of each metric, mean over data sets (value [95% t "
                      "interval over the sets]; tie: includes 0):", ""] + _rows(d_headers, d_rows)
        lines += [f"- {n}" for n in f.notes] + [""]
    return lines + ([f"- {n}" for n in notes] + [""] if notes else [])


def arms_markdown(group: GroupData) -> list[str]:
    """The arm tables, the best arm in bold as in the run table; none without arms."""
    headers, rows = arm_table(group)
    if not rows:
        return []
    lines = ["Arms: one configuration at several model seeds, mean over fits (SD over fits):", ""]
    lines += _rows(headers, _bold_best(rows))
    d_headers, d_rows = arm_differences(group)
    if d_rows:
        lines += ["Differences to the top arm of each metric (value [95% Welch t interval, fits and trials]; tie: "
                  "includes 0):", ""] + _rows(d_headers, d_rows)
    return lines


def group_markdown(group: GroupData) -> list[str]:
    """One dataset's summary table, notes and provenance lines."""
    s = summarize(group)
    lines = [f"## {group.title}", "", f"Data folder: `{group.data_dir}`" + (f" ({group.data_check})" if group.data_check else ""), ""]
    headers = ["run"] + s.metrics + s.extra_headers
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in s.rows:
        name = row.name + (f" *({row.note})*" if row.note else "")
        cells = []
        for c in row.cells:
            text = f"**{c.text()}**" + (" (tie)" if c.tie else "") if c.best else c.text()
            cells.append(text + (f" {c.ci_text()}" if c.ci_text() else ""))
        lines.append("| " + " | ".join(_cell(x) for x in [name] + cells + row.extra) + " |")
    lines.append("")
    d_headers, d_rows = differences(group)
    if d_rows:
        lines += ["Paired differences to the top run of each metric (value [95% interval]; tie: includes 0):", ""]
        lines += _rows(d_headers, d_rows)
    lines += arms_markdown(group)
    run_notes = [f"{r.label}: {n}" for r in group.runs for n in r.notes]
    lines += [f"- {n}" for n in s.notes + arm_notes(group) + group.notes + run_notes]
    lines += ["", "Provenance:", ""]
    for r in group.runs:
        info = r.record.info
        versions = ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())
        lines.append(f"- `{r.record.path}`: {r.baseline}, seed {info.get('seed', '–')}, {versions}; "
                     f"fit {(info.get('timings') or {}).get('fit_s', float('nan')):.1f} s; "
                     f"{r.curves_note or 'training curve in curves.csv'}")
    return lines + [""]


GENERATOR_COMMENT = "<!-- generator: nlb-eval report -->"  # how `report --overwrite` knows its own file


def render(groups: list[GroupData], title: str, families: list[Family] = (), notes: list[str] = ()) -> str:
    """The whole Markdown document; `families` and `notes` as `data_sets.find_families` gives them."""
    lines = [GENERATOR_COMMENT, f"# {title}", "", "Metrics are values on the eval trials with 95% bootstrap intervals in brackets; "
             "the best run per metric is in bold, marked (tie) when other runs are tied with it. Plots are in "
             "the HTML report.", ""]
    for g in groups:
        lines += group_markdown(g)
    return "\n".join(lines + families_markdown(list(families), list(notes)))
