"""A tiny GNOCCHI (networks, schedule, epochs) and its data shape, shared by GNOCCHI's and its bench's tests."""

from __future__ import annotations

from baselines.gnocchi import GnocchiBaseline, GnocchiConfig
from nlb_suite.baseline_api import RunContext

TINY = dict(code_dim=3, enc_width=8, enc_pool=2, latent_dim=4, latent_stride=2, ae_width=8, ae_kernel=3, ae_max_epochs=2,
            unet_widths=[8, 16], emb_dim=8, n_steps=50, ddim_steps=5, n_samples=2, batch_size=8, max_epochs=3,
            patience=3, warmup_epochs=1)
N_IN, N_OUT, T, FWD = 5, 3, 12, 4  # held-in and held-out neurons, window and forward bins


def context(seed: int = 0, run_dir=None) -> RunContext:
    return RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=N_IN, n_heldout=N_OUT, n_forward_bins=FWD,
                      seed=seed, run_dir=run_dir)


def baseline(seed: int = 0, run_dir=None, **overrides) -> GnocchiBaseline:
    return GnocchiBaseline(GnocchiConfig(**{**TINY, **overrides}), context(seed, run_dir))
