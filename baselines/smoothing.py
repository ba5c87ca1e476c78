"""The NLB'21 spike-smoothing baseline: Gaussian-smoothed held-in spikes, Poisson GLM to held-out units.

Recipe of nlb_tools `examples/baselines/smoothing/run_smoothing.py`: each trial's held-in counts are
convolved along time with a normalised Gaussian window of int(6·sd/bin) samples and standard deviation
int(sd/bin) bins (nlb_tools truncates both; numpy 'same' mode). Held-in rates are the smoothed counts.
Held-out rates are exp(GLM) on log(smoothed + log_offset), one Poisson GLM per held-out unit fitted on
the train trials with scikit-learn's `PoissonRegressor(alpha)` objective, clipped to [1e-9, 1e20].
Here all held-out units are fitted together (baselines.glm). NaN input bins (padding) count as no
spikes and are left out of the fit. The published baseline makes no forward prediction
(`forward: none`); `forward: hold` repeats each trial's last-bin rates over the forward window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage, signal

from nlb_suite.baseline_api import Baseline, Rates, RunContext, TrialSet
from nlb_suite.blas_threads import blas_threads
from nlb_suite.errors import ConfigFieldError, NLBInputError, check_choice, check_field

from .glm import PoissonGLM, fit_poisson_glm

FORWARD_MODES = ("none", "hold")
RATE_CLIP = (1e-9, 1e20)  # the recipe's clip of GLM rates


MAX_KERN_SD_MS = 10_000.0  # a window this long already spans every NLB trial many times over


@dataclass
class SmoothingConfig:
    """Kernel SD (ms) and GLM ridge `alpha` are the published per-dataset settings; the rest are solver knobs."""

    kern_sd_ms: float = 50.0
    alpha: float = 0.01
    log_offset: float = 1e-4
    max_iter: int = 1000
    tol: float = 1e-7
    forward: str = "none"
    cpu_threads: int = 1  # BLAS threads of the GLM's fit and prediction

    def __post_init__(self) -> None:
        checks = (
            ("kern_sd_ms", f"> 0 and <= {MAX_KERN_SD_MS:g} ms (longer than any trial; its window is 6 SDs long)",
             lambda v: 0 < v <= MAX_KERN_SD_MS),
            ("alpha", ">= 0", lambda v: v >= 0),
            ("log_offset", "> 0", lambda v: v > 0),
            ("max_iter", ">= 1", lambda v: v >= 1),
            ("tol", "> 0", lambda v: v > 0),
            ("cpu_threads", ">= 1", lambda v: v >= 1),
        )
        for key, expected, ok in checks:
            check_field(getattr(self, key), "smoothing", key, expected, ok)
        check_choice(self.forward, "smoothing", "forward", FORWARD_MODES)


def smoothing_window(kern_sd_ms: float, bin_ms: int) -> np.ndarray:
    """nlb_tools' normalised Gaussian window: int(6·sd/bin) samples, SD int(sd/bin) bins."""
    length, sd = int(6 * kern_sd_ms / bin_ms), int(kern_sd_ms / bin_ms)
    if sd < 1:
        raise ConfigFieldError("smoothing", "kern_sd_ms", f"={kern_sd_ms:g} is under one {bin_ms} ms bin "
                               "(nlb_tools' window would be empty)")
    win = signal.windows.gaussian(length, sd, sym=True)
    return win / win.sum()


def smooth_spikes(spikes: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Convolve (trials, bins, units) counts along bins like np.convolve(..., 'same'); NaN counts as 0.

    Output keeps the input's length (np.convolve would return the window's length for shorter trials).
    """
    x = np.nan_to_num(np.asarray(spikes, dtype=np.float64), nan=0.0)
    origin = -1 if len(window) % 2 == 0 else 0  # numpy 'same' centres even windows one sample late
    return ndimage.convolve1d(x, window, axis=1, mode="constant", cval=0.0, origin=origin)


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])


class SmoothingBaseline(Baseline):
    name = "smoothing"
    uses_seed = False  # no random draw: every seed gives the same rates
    description = "Gaussian-smoothed held-in spikes + Poisson GLM to held-out units (NLB'21 smoothing baseline)"
    Config = SmoothingConfig

    def __init__(self, config: SmoothingConfig, context: RunContext):
        super().__init__(config, context)
        self.window = smoothing_window(config.kern_sd_ms, context.bin_ms)
        self.glm: Optional[PoissonGLM] = None

    def _features(self, smoothed: np.ndarray) -> np.ndarray:
        """GLM inputs: log(smoothed held-in counts + log_offset), one row per bin."""
        return np.log(_flat(smoothed) + self.config.log_offset)

    def fit(self, train: TrialSet) -> None:
        """Fit the held-out GLM on every train bin whose held-in and held-out counts are known."""
        if train.spikes_heldout is None:
            raise NLBInputError("baseline smoothing: the train trials carry no held-out spikes to fit")
        self.fit_glm(smooth_spikes(train.spikes_heldin, self.window), train.spikes_heldin, train.spikes_heldout)

    def fit_glm(self, heldin: np.ndarray, heldin_spikes: np.ndarray, heldout_spikes: np.ndarray) -> None:
        """The held-out GLM on log(heldin + log_offset): smoothed counts in the recipe, any held-in rates in
        a diagnostic (benchmarks/bench_realism.py --decompose); bins with NaN spikes are left out."""
        X = self._features(heldin)
        Y = _flat(np.asarray(heldout_spikes, dtype=np.float64))
        rows = ~(np.isnan(_flat(heldin_spikes)).any(axis=1) | np.isnan(Y).any(axis=1))
        if not rows.any():
            raise NLBInputError("baseline smoothing: no train bin without NaN spikes to fit on")
        cfg = self.config
        with blas_threads(cfg.cpu_threads):
            self.glm = fit_poisson_glm(X[rows], Y[rows], cfg.alpha, max_iter=cfg.max_iter, tol=cfg.tol)

    def predict_heldout(self, heldin: np.ndarray) -> np.ndarray:
        """(trials, bins, held-out units) rates of the fitted GLM from held-in inputs like fit_glm's."""
        with blas_threads(self.config.cpu_threads):
            heldout = np.clip(self.glm.predict(self._features(heldin)), *RATE_CLIP)
        return heldout.reshape(heldin.shape[:2] + (-1,)).astype(np.float32)

    def predict(self, trials: TrialSet) -> Rates:
        """Held-in rates = smoothed counts; held-out rates = GLM on their log; optional held forward rates."""
        if self.glm is None:
            raise NLBInputError("baseline smoothing: predict() before fit()")
        smoothed = smooth_spikes(trials.spikes_heldin, self.window)
        heldin = np.maximum(smoothed, 0.0).astype(np.float32)
        heldout = self.predict_heldout(smoothed)
        rates = Rates(heldin=heldin, heldout=heldout)
        if self.config.forward == "hold":
            n_fwd = trials.forward_bins.shape[1]
            rates.heldin_forward = np.repeat(heldin[:, -1:], n_fwd, axis=1)
            rates.heldout_forward = np.repeat(heldout[:, -1:], n_fwd, axis=1)
        return rates
