"""The Markdown companion of the report: summary tables, notes and provenance (plots stay in the HTML)."""

from __future__ import annotations

from .build import GroupData
from .summary import arm_differences, arm_notes, arm_table, differences, summarize


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


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
        lines += ["Paired differences to the top run of each metric (value [95% interval]; tie: includes 0):", "",
                  "| " + " | ".join(d_headers) + " |", "|" + "---|" * len(d_headers)]
        lines += ["| " + " | ".join(_cell(x) for x in r) + " |" for r in d_rows]
        lines.append("")
    for caption, (headers, rows) in (("Arms: one configuration at several model seeds, mean over fits (SD over "
                                      "fits):", arm_table(group)),
                                     ("Differences to the top arm of each metric (value [95% Welch t interval, "
                                      "fits and trials]; tie: includes 0):", arm_differences(group))):
        if rows:
            lines += [caption, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(_cell(x) for x in r) + " |" for r in rows] + [""]
    lines += [f"- {n}" for n in s.notes + arm_notes(group) + group.notes + [f"{r.label}: {n}" for r in group.runs for n in r.notes]]
    lines += ["", "Provenance:", ""]
    for r in group.runs:
        info = r.record.info
        versions = ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())
        lines.append(f"- `{r.record.path}`: {r.baseline}, seed {info.get('seed', '–')}, {versions}; "
                     f"fit {(info.get('timings') or {}).get('fit_s', float('nan')):.1f} s; "
                     f"{r.curves_note or 'training curve in curves.csv'}")
    return lines + [""]


GENERATOR_COMMENT = "<!-- generator: nlb-eval report -->"  # how `report --overwrite` knows its own file


def render(groups: list[GroupData], title: str) -> str:
    """The whole Markdown document."""
    lines = [GENERATOR_COMMENT, f"# {title}", "", "Metrics are values on the eval trials with 95% bootstrap intervals in brackets; "
             "the best run per metric is in bold, marked (tie) when other runs are tied with it. Plots are in "
             "the HTML report.", ""]
    for g in groups:
        lines += group_markdown(g)
    return "\n".join(lines)
