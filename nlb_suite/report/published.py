"""Published NLB'21 test-phase scores, shown (marked test phase) next to runs on real data, never synthetic."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("MC_Maze, 5 ms, test phase, as collected in the project's reference notes "
          "(shared/reference/nlb.md); each row names its own source")


@dataclass(frozen=True)
class PublishedRow:
    """One published model's scores on one dataset, bin width and phase (None: not reported)."""

    model: str
    metrics: dict[str, float]
    note: str = ""


# Values exactly as in shared/reference/nlb.md "Reported scores"; none is averaged or rounded here.
PUBLISHED: dict[tuple[str, int], tuple[PublishedRow, ...]] = {
    ("mc_maze", 5): (
        PublishedRow("STNDT ensemble", {"co-bps": 0.3862, "vel R2": 0.910}, "second-hand copy of the leaderboard"),
        PublishedRow("AE Studio ensemble", {"co-bps": 0.3676}, "phase-1 winner; second-hand"),
        PublishedRow("iLQR-VAE", {"co-bps": 0.356, "vel R2": 0.884, "psth R2": 0.606}, "LaDyS README"),
        PublishedRow("AutoLFADS (KubeFlow)", {"co-bps": 0.3510, "vel R2": 0.9099, "psth R2": 0.6339, "fp-bps": 0.2405},
                     "autolfads-deploy JOSS paper"),
        PublishedRow("AutoLFADS (Ray, the NLB baseline)",
                     {"co-bps": 0.3364, "vel R2": 0.9097, "psth R2": 0.6360, "fp-bps": 0.2349},
                     "autolfads-deploy JOSS paper"),
        PublishedRow("MINT", {"co-bps": 0.330}, "second-hand"),
        PublishedRow("NDT", {"co-bps": 0.3229}, "second-hand"),
        PublishedRow("Smoothing", {"co-bps": 0.21, "vel R2": 0.62}, "reported as ≈ 0.21 and ≈ 0.62; second-hand"),
    ),
}


def published_rows(dataset: str, bin_ms: int) -> tuple[PublishedRow, ...]:
    """The published rows on file for a dataset and bin width (empty when none are on file)."""
    return PUBLISHED.get((dataset, bin_ms), ())
