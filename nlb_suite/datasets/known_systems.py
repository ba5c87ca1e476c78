"""Latent trajectories of the systems with known dynamics: three dysts attractors and the LFADS chaotic RNN.

Attractors follow the NODE-SAE paper (Sedler, Versteeg & Pandarinath 2023): one long trajectory from dysts,
resampled at `pts_per_period` points per dominant period (Lorenz 100, Rossler and Arneodo 35), integrated by
LSODA at rtol = atol = 1e-9 (dysts' default Radau at 1e-12 is ~10x slower for the same curve), under one fixed
OpenBLAS kernel on x86-64 (`pinned_blas`: LSODA's stiff steps call BLAS, whose AVX-512 kernels round
differently, and the flow turns one ulp into another trajectory: lorenz seed 0 did on AVX-512 CPUs). The chaotic
RNN follows the LFADS paper's synthetic set: 50 units, tau dx/dt = -x + g W tanh(x), g = 1.5, tau = 25 ms,
one fixed initial state per condition, rates 30 Hz (tanh + 1) / 2. dysts is an optional extra (`dynamics`):
importing it costs ~1.2 s and ~190 MB RSS over numpy + scipy + h5py (it imports gluonts and
pandas), so it is imported only here.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import NLBInputError
from .pinned_blas import call_pinned

# name -> (dysts class, points per dominant period)
ATTRACTORS = {"lorenz": ("Lorenz", 100), "rossler": ("Rossler", 35), "arneodo": ("Arneodo", 35)}
BURN_IN_PERIODS = 10  # discarded before the first trial: leaves the seeded initial condition's transient
IC_JITTER = 0.05  # relative seeded perturbation of dysts' default initial condition (one per data seed)
SOLVER = {"method": "LSODA", "rtol": 1e-9, "atol": 1e-9}

RNN_UNITS = 50
RNN_GAIN = 1.5
RNN_TAU_MS = 25.0
RNN_MAX_RATE_HZ = 30.0
RNN_X0_SD = 1.0


def _dysts_flows():
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Nn]umba.*")  # dysts warns when numba is absent
            from dysts import flows
    except ImportError:
        raise NLBInputError("the attractor datasets need the optional package dysts: "
                            "pip install 'nlb_suite[dynamics]'") from None
    return flows


def integrate_attractor(name: str, n_points: int, init_cond: np.ndarray) -> np.ndarray:
    """(n_points, 3) dysts trajectory of attractor `name` from `init_cond`, in this process.

    dysts reseeds numpy's global RNG to 0 on every trajectory; the caller's global state is put back.
    """
    system = _system(name)
    global_rng = np.random.get_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traj = system.make_trajectory(int(n_points), resample=True, pts_per_period=ATTRACTORS[name][1],
                                          init_cond=np.asarray(init_cond, dtype=np.float64), **SOLVER)
    finally:
        np.random.set_state(global_rng)
    if traj is None or not np.all(np.isfinite(traj)) or len(traj) != n_points:
        raise NLBInputError(f"{name}: dysts integration failed (no finite trajectory of {n_points} points)")
    return np.asarray(traj, dtype=np.float64)


def _system(name: str):
    """A fresh dysts instance of attractor `name`; one line if the name is not one of ATTRACTORS."""
    if name not in ATTRACTORS:
        raise NLBInputError(f"unknown attractor {name!r}; expected one of {', '.join(ATTRACTORS)}")
    return getattr(_dysts_flows(), ATTRACTORS[name][0])()


def burn_in_points(name: str) -> int:
    """Points integrated and dropped before the first trial of attractor `name` (BURN_IN_PERIODS periods)."""
    return BURN_IN_PERIODS * ATTRACTORS[name][1]


def seeded_start(name: str, rng: np.random.Generator) -> np.ndarray:
    """dysts' default initial condition of attractor `name`, each coordinate scaled by 1 + IC_JITTER * N(0, 1)."""
    ic = np.asarray(_system(name).ic, dtype=np.float64)
    return ic * (1.0 + IC_JITTER * rng.standard_normal(len(ic)))


def attractor_trajectory(name: str, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """(n_steps, 3) states of attractor `name` on its dysts time grid, after a burn-in, from a seeded start.

    On x86-64 the integration runs under one fixed OpenBLAS kernel (pinned_blas), so a seed gives the same
    trajectory on every CPU: LSODA's stiff steps call BLAS, and the flow is chaotic.
    """
    burn = burn_in_points(name)
    args = {"name": name, "n_points": burn + n_steps, "init_cond": seeded_start(name, rng)}
    return call_pinned(__name__, "integrate_attractor", args)[burn:]


def chaotic_rnn(x0: np.ndarray, n_ms: int, rng: np.random.Generator) -> np.ndarray:
    """(trials, n_ms, units) states of the chaotic RNN from initial states `x0`, Euler steps of 1 ms.

    The connectivity W ~ N(0, 1/N) is drawn from `rng` first, so one seed gives one network.
    """
    n = x0.shape[1]
    w = rng.standard_normal((n, n)) / np.sqrt(n)
    alpha = 1.0 / RNN_TAU_MS
    out = np.empty((x0.shape[0], n_ms, n))
    x = np.array(x0, dtype=np.float64)
    for t in range(n_ms):
        out[:, t] = x
        x = x + alpha * (-x + RNN_GAIN * np.tanh(x) @ w.T)
    return out


def rnn_rates_per_bin(states: np.ndarray, bin_ms: int = 5) -> np.ndarray:
    """Expected spike counts per `bin_ms` bin: 30 Hz (tanh(x) + 1) / 2 averaged over each bin's 1 ms steps."""
    hz = RNN_MAX_RATE_HZ * (np.tanh(states) + 1.0) / 2.0
    n, t, u = hz.shape
    return hz.reshape(n, t // bin_ms, bin_ms, u).mean(axis=2) * (bin_ms / 1000.0)


def poisson_readout(latents: np.ndarray, n_units: int, rng: np.random.Generator) -> np.ndarray:
    """Expected counts per step: log-rates = latents @ W, W ~ U(-0.5, 0.5), z-scored per neuron, then exp."""
    w = rng.uniform(-0.5, 0.5, (latents.shape[1], n_units))
    log_rates = latents @ w
    log_rates = (log_rates - log_rates.mean(axis=0)) / log_rates.std(axis=0)
    return np.exp(log_rates)
