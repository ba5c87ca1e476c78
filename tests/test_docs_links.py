"""The documents' in-page links land: the claims index of benchmarks/RESULTS.md links each row to its
section, and a renamed heading must not leave a dead link behind."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "benchmarks/RESULTS.md")
# Inline links `](file#anchor)` only: reference-style, titled and HTML links, ~~~ fences and setext headings
# are not used in these documents and not checked.
LINK = re.compile(r"\]\((?P<file>[\w./-]*?)#(?P<anchor>[^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file, repeats numbered -1, -2, ... as GitHub does."""
    text = FENCE.sub("", path.read_text())
    seen: Counter[str] = Counter()
    found = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        base = github_anchor(heading)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def test_github_anchor_matches_githubs_rule():
    assert github_anchor("Speed: the seed's claim side by side with LFADS (CPU)") == \
        "speed-the-seeds-claim-side-by-side-with-lfads-cpu"
    assert github_anchor("Tensors: `nlb-eval tensors` vs nlb_tools (whole processes)") == \
        "tensors-nlb-eval-tensors-vs-nlb_tools-whole-processes"
    assert github_anchor("Rössler and Arneodo (3 data seeds; 2026-12-03)") == \
        "rössler-and-arneodo-3-data-seeds-2026-12-03"


def test_every_in_page_link_lands_on_a_heading():
    dead, checked, headings = [], 0, {}
    for name in DOCUMENTS:
        source = ROOT / name
        for link in LINK.finditer(FENCE.sub("", source.read_text())):
            target = (source.parent / link["file"]).resolve() if link["file"] else source
            checked += 1
            if target not in headings:  # each file's headings read once, not once per link
                headings[target] = anchors(target)
            if link["anchor"] not in headings[target]:
                dead.append(f"{name}: {link['file']}#{link['anchor']}")
    assert not dead, "links to no heading: " + ", ".join(dead)
    assert checked >= 20, f"the claims index of RESULTS.md should link its sections; found {checked} links"
