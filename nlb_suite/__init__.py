"""nlb_suite: the Neural Latents Benchmark toolkit (NWB -> tensors -> baselines -> exact scores -> submission)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
