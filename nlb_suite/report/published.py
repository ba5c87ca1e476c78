"""Published NLB'21 leaderboard rows, shown next to runs on real data (never on synthetic stand-ins)."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("NLB'21 leaderboard, test phase (second-hand copies; as collected in the project's "
          "reference notes, shared/reference/nlb.md)")


@dataclass(frozen=True)
class PublishedRow:
    """One published model's scores on one dataset, bin width and phase (None: not reported)."""

    model: str
    metrics: dict[str, float]
    note: str = ""


# Ranges are given as their midpoint with the range in the note; "≈" values as reported.
PUBLISHED: dict[tuple[str, int], tuple[PublishedRow, ...]] = {
    ("mc_maze", 5): (
        PublishedRow("STNDT ensemble", {"co-bps": 0.386, "vel R2": 0.910}),
        PublishedRow("AE Studio ensemble", {"co-bps": 0.368}, "phase-1 winner"),
        PublishedRow("AutoLFADS", {"co-bps": 0.3435, "vel R2": 0.91}, "co-bps reported as 0.336-0.351, vel R2 ≈ 0.91"),
        PublishedRow("iLQR-VAE", {"co-bps": 0.356, "vel R2": 0.884, "psth R2": 0.606}),
        PublishedRow("MINT", {"co-bps": 0.330}),
        PublishedRow("NDT", {"co-bps": 0.323}),
        PublishedRow("Smoothing", {"co-bps": 0.21, "vel R2": 0.62}, "values reported as ≈"),
    ),
}


def published_rows(dataset: str, bin_ms: int) -> tuple[PublishedRow, ...]:
    """The published rows on file for a dataset and bin width (empty when none are on file)."""
    return PUBLISHED.get((dataset, bin_ms), ())
