"""Baseline comparison reports: one self-contained HTML page (and optional Markdown) from run folders."""

from __future__ import annotations

import contextlib
import datetime as _dt
from pathlib import Path
from typing import Optional

from .. import __version__
from ..errors import NLBInputError
from ..h5io import atomic_path

__all__ = ["build_report", "render_report"]


def _check_out(path: Path, suffixes: tuple[str, ...], flag: str) -> None:
    if path.is_dir():
        raise NLBInputError(f"{path}: is a folder ({flag} expects a file name ending in {' or '.join(suffixes)})")
    if path.suffix.lower() not in suffixes:
        raise NLBInputError(f"{path}: {flag} should end in {' or '.join(suffixes)}")


def build_report(run_dirs: list[str | Path], out: str | Path, markdown: Optional[str | Path] = None,
                 title: str = "NLB baseline comparison") -> Path:
    """Read run folders, group them by dataset, and write the HTML report (and Markdown) atomically."""
    from .build import gather

    _check_outputs(out, markdown)
    return render_report(gather(run_dirs), out, markdown, title)


def _check_outputs(out: str | Path, markdown: Optional[str | Path]) -> None:
    _check_out(Path(out), (".html", ".htm"), "--out")
    if markdown is not None:
        _check_out(Path(markdown), (".md", ".markdown"), "--markdown")


def render_report(groups: list, out: str | Path, markdown: Optional[str | Path] = None,
                  title: str = "NLB baseline comparison") -> Path:
    """Write the HTML report (and Markdown) of already gathered groups (`build.gather`) atomically."""
    from . import content, html
    from . import markdown as md
    from .data_sets import find_families

    out = Path(out)
    _check_outputs(out, markdown)
    families, notes = find_families(groups)
    pooled = content.families_section(families, notes)
    sections = [content.summary_section(groups)] + ([pooled] if pooled else []) + \
        [content.group_section(g) for g in groups]
    n_runs = sum(len(g.runs) for g in groups)
    datasets = ", ".join(dict.fromkeys(g.dataset for g in groups))
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    subtitle = f"{n_runs} run(s) on {datasets}; made {when} by nlb_suite {__version__} (`nlb-eval report`)."
    footer = ("Self-contained page: plots are inline SVG drawn with matplotlib; no scripts or network assets. "
              "Metrics follow nlb_tools' definitions; intervals are percentile bootstraps over eval trials, "
              "differences between runs paired over the same resamples.")
    document = html.page(title, subtitle, sections, footer)
    texts = {out: document} | ({} if markdown is None else {Path(markdown): md.render(groups, title, families, notes)})
    with contextlib.ExitStack() as stack:  # both rendered, both temp files made, before either is renamed
        for path, text in texts.items():
            stack.enter_context(atomic_path(path)).write_text(text, encoding="utf-8")
    return out
