"""The page itself: one self-contained HTML document (inline CSS and SVG, no scripts, no network)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

CSS = """
:root { --ink: #1b1b1b; --muted: #5b5b5b; --line: #d9d9d9; --bg-alt: #f6f6f4; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 15px/1.45 "DejaVu Sans", "Segoe UI",
  Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 36px 0 8px; padding-top: 8px; border-top: 2px solid var(--ink); }
h3 { font-size: 1.08em; margin: 26px 0 4px; }
p { margin: 6px 0; }
.sub { color: var(--muted); margin: 0 0 14px; }
.how { color: var(--muted); font-size: 0.92em; margin: 2px 0 10px; }
.how::before { content: "How to read: "; font-weight: bold; color: var(--ink); }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 6px 10px; margin: 8px 0;
  font-size: 0.93em; }
.empty { background: var(--bg-alt); border: 1px dashed #bbb; padding: 14px; color: var(--muted);
  text-align: center; margin: 8px 0; }
nav.toc { background: var(--bg-alt); padding: 10px 16px; margin: 12px 0 18px; font-size: 0.93em; }
nav.toc ul { margin: 4px 0; padding-left: 18px; }
nav.toc a, a { color: var(--accent); }
.table-wrap { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; font-size: 0.88em; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; white-space: nowrap; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td .ci { color: var(--muted); font-size: 0.9em; }
td.best { font-weight: bold; background: #e8f2e1; }
tr.reference td { background: #f0f0f0; font-style: italic; }
tr.published td { color: #555; font-style: italic; }
.tag { display: inline-block; font-size: 0.78em; font-style: normal; padding: 0 5px; border-radius: 3px;
  background: #e4e4e4; color: #333; margin-left: 4px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }
figure { margin: 10px 0 18px; page-break-inside: avoid; break-inside: avoid; }
figure svg.plot { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.88em; margin-top: 2px; }
pre { background: var(--bg-alt); padding: 8px; font-size: 0.8em; overflow: auto; max-height: 260px;
  white-space: pre-wrap; word-break: break-all; margin: 4px 0; }
.prov { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px; }
.prov > div { border: 1px solid var(--line); padding: 8px 10px; min-width: 0; }
.prov h4 { margin: 0 0 4px; font-size: 1em; }
.prov table { font-size: 0.82em; }
.prov td:first-child { white-space: nowrap; color: var(--muted); }
code { font-size: 0.92em; word-break: break-all; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85em; }
@media print {
  body { font-size: 11px; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2 { break-before: page; }
  section.summary h2, h2:first-of-type { break-before: auto; }
  pre { max-height: none; overflow: visible; }
  .table-wrap { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""


@dataclass
class Section:
    """A titled part of the page with a "how to read" line and HTML body."""

    title: str
    anchor: str
    body: str
    how: str = ""
    level: int = 3
    children: list[Section] = field(default_factory=list)


def esc(text: object) -> str:
    """HTML-escape any value's string form."""
    return escape(str(text), quote=True)


def figure(svg: str, caption: str) -> str:
    """An inline SVG plot with its caption."""
    return f'<figure class="fig">{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def empty(text: str) -> str:
    """A visible placeholder where a plot cannot be drawn, saying why."""
    return f'<div class="empty" data-empty="1">{esc(text)}</div>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def table(headers: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    """A table from pre-rendered cell HTML (cells are trusted: callers escape text)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(row) + "</tr>")
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _render(section: Section) -> str:
    level = section.level
    out = [f'<section id="{esc(section.anchor)}" data-section="{esc(section.title)}" class="level{level}">',
           f"<h{level}>{esc(section.title)}</h{level}>"]
    if section.how:
        out.append(f'<p class="how">{esc(section.how)}</p>')
    out.append(section.body)
    out.extend(_render(c) for c in section.children)
    out.append("</section>")
    return "\n".join(out)


def _toc(sections: list[Section]) -> str:
    items = []
    for s in sections:
        sub = "".join(f'<li><a href="#{esc(c.anchor)}">{esc(c.title)}</a></li>' for c in s.children)
        items.append(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a>' + (f"<ul>{sub}</ul>" if sub else "") + "</li>")
    return f'<nav class="toc"><strong>Contents</strong><ul>{"".join(items)}</ul></nav>'


GENERATOR_META = '<meta name="generator" content="nlb-eval report">'  # how `report --overwrite` knows its own page


def page(title: str, subtitle: str, sections: list[Section], footer: str) -> str:
    """The whole HTML document."""
    body = "\n".join(_render(s) for s in sections)
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{GENERATOR_META}\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{esc(title)}</h1>\n<p class=\"sub\">{esc(subtitle)}</p>\n{_toc(sections)}\n{body}\n"
        f"<footer>{esc(footer)}</footer>\n</main>\n</body>\n</html>\n"
    )
