"""Command groups of `nlb-eval`, one module each (data layer, scoring)."""
