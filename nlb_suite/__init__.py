"""nlb_suite: the Neural Latents Benchmark toolkit (NWB -> tensors -> baselines -> exact scores -> submission)."""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate"]


def __getattr__(name: str) -> Any:
    """Import heavy parts only when used, so `import nlb_suite` stays cheap."""
    if name == "evaluate":
        from .metrics_evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'nlb_suite' has no attribute {name!r}")
