"""Synthetic sets with known latent dynamics in the NLB layout: lorenz, rossler, arneodo and chaotic_rnn.

Time: 1 step of the system = 1 bin of 5 ms. An attractor trial is 70 consecutive steps (350 ms) of one long
trajectory (the NODE-SAE paper's 2000 trials x 70 steps); trials follow each other without a gap, so a
trial's 200 ms forward window (40 steps) is the start of the next trial, and each file ends with 40 extra
steps. The train file holds the train + val trials (80/20, the paper's 1280/320 of 1600), the test file the
next stretch of the same trajectory (400 test trials). A chaotic-RNN trial is 1 s (200 bins, as in LFADS)
of the RNN started at its condition's initial state, followed by 200 ms forward and 300 ms before the next
trial; 80 conditions x 10 trials (all splits). Spikes are Poisson counts per 5 ms bin placed inside the
bin; the behaviour series `latent_state` is the true state (the RNN's 3 leading principal components),
and ground_truth.h5 holds the expected counts of every unit and the full true latents per 5 ms bin.
"""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from tqdm import tqdm

from ..errors import NLBInputError
from ..h5io import atomic_path
from .known_systems import (
    ATTRACTORS,
    RNN_UNITS,
    RNN_X0_SD,
    attractor_trajectory,
    chaotic_rnn,
    poisson_readout,
    rnn_rates_per_bin,
)
from .specs import FORWARD_MS, KNOWN_DYNAMICS, DatasetSpec, get_dataset
from .synthetic_cache import generator_identity
from .synthetic_nwb import write_ground_truth, write_nwb
from .synthetic_tasks import Plan

if TYPE_CHECKING:
    from .synthetic import SyntheticDataset

STEP_MS = 5  # one step of the system = one 5 ms bin
VAL_SHARE = 0.2  # of the train-file trials (the paper's 320 of 1600)
TEST_SHARE = 0.25  # test trials per train+val trial (the paper's 400 per 1600)
RNN_ITI_MS = 300  # chaotic RNN: from the end of a trial's forward window to the next trial
RNN_TRIALS_PER_CONDITION = 10
MIN_TRIALS, MAX_TRIALS = 4, 20000


def _streams(name: str, seed: int) -> list[np.random.Generator]:
    """Independent seeded streams: dynamics, readout, train spikes, test spikes, split labels."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(name.encode()), 13])
    return [np.random.default_rng(s) for s in ss.spawn(5)]


def _check_trials(trials: Any, spec: DatasetSpec) -> int:
    if trials is None:
        return spec.n_train_val
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or not MIN_TRIALS <= trials <= MAX_TRIALS:
        raise NLBInputError(f"--trials: bad trial count {trials!r} (expected an integer from {MIN_TRIALS} "
                            f"to {MAX_TRIALS})")
    return int(trials)


def _spike_times(counts: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Per unit, sorted spike times (s) inside their 5 ms bins (1-4 ms in, clear of the bin edges)."""
    out = []
    for u in range(counts.shape[1]):
        bins = np.repeat(np.arange(counts.shape[0]), counts[:, u])
        out.append(np.sort((bins + rng.uniform(0.2, 0.8, len(bins))) * (STEP_MS / 1000.0)))
    return out


def _behaviour_ms(states: np.ndarray, n_ms: int) -> np.ndarray:
    """A per-bin state on the 1 kHz grid of the NWB behaviour series: bin k's state at ms 5k (where the 5 ms
    decimation samples it), linear in between."""
    knots = np.arange(len(states)) * STEP_MS
    ms = np.arange(n_ms)
    return np.stack([np.interp(ms, knots, c) for c in states.T], axis=1).astype(np.float32)


def _plan(starts_s: np.ndarray, window_s: float, split: np.ndarray, end_s: float,
          fields: Optional[dict[str, np.ndarray]] = None) -> Plan:
    trials = {"start_time": starts_s, "stop_time": starts_s + window_s, "split": split.astype(object)}
    trials.update(fields or {})
    return Plan(family="known_dynamics", trials=trials, hidden={}, protected=np.zeros((0, 2)),
                gaps=np.zeros((0, 2)), start=0.0, end=float(end_s))


def _splits(n: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.full(n, "train", dtype=object)
    labels[rng.permutation(n)[: int(round(VAL_SHARE * n))]] = "val"
    return labels


def _attractor_files(name: str, n_tv: int, n_test: int, n_units: int, window_bins: int, fwd_bins: int,
                     rngs: list) -> dict[str, dict[str, Any]]:
    """Per file: trial plan, expected counts (steps, units) and true latents (steps, 3)."""
    rng_dyn, rng_read, _, _, rng_split = rngs
    sizes = {"train": n_tv * window_bins + fwd_bins, "test": n_test * window_bins + fwd_bins}
    latents = attractor_trajectory(name, sum(sizes.values()), rng_dyn)
    rates = poisson_readout(latents, n_units, rng_read)
    files, start = {}, 0
    for kind, n_trials in (("train", n_tv), ("test", n_test)):
        stop = start + sizes[kind]
        split = _splits(n_trials, rng_split) if kind == "train" else np.full(n_trials, "test", dtype=object)
        starts = np.arange(n_trials) * window_bins * STEP_MS / 1000.0
        plan = _plan(starts, window_bins * STEP_MS / 1000.0, split, sizes[kind] * STEP_MS / 1000.0)
        files[kind] = {"plan": plan, "rates": rates[start:stop], "latents": latents[start:stop],
                       "behaviour": latents[start:stop]}
        start = stop
    return files


def _rnn_files(n_tv: int, n_test: int, window_bins: int, fwd_bins: int, rngs: list) -> dict[str, dict[str, Any]]:
    """The chaotic RNN: per file its trials (condition each), expected counts, states and their 3 PCs."""
    rng_dyn, rng_read, _, _, rng_split = rngs
    total = n_tv + n_test
    n_cond = max(1, total // RNN_TRIALS_PER_CONDITION)
    x0 = RNN_X0_SD * rng_dyn.standard_normal((n_cond, RNN_UNITS))
    trial_ms = (window_bins + fwd_bins) * STEP_MS + RNN_ITI_MS
    states = chaotic_rnn(x0, trial_ms, rng_dyn)  # (conditions, ms, units): the network is deterministic
    cond_rates = rnn_rates_per_bin(states, STEP_MS)
    cond_latents = states.reshape(n_cond, trial_ms // STEP_MS, STEP_MS, -1).mean(axis=2)
    flat = cond_latents.reshape(-1, cond_latents.shape[-1])
    _, _, vt = np.linalg.svd(flat - flat.mean(axis=0), full_matrices=False)
    cond_pcs = (cond_latents - flat.mean(axis=0)) @ vt[:3].T
    conditions = rng_read.permutation(np.arange(total) % n_cond)
    files, offset = {}, 0
    for kind, n_trials in (("train", n_tv), ("test", n_test)):
        cond = conditions[offset:offset + n_trials]
        offset += n_trials
        split = _splits(n_trials, rng_split) if kind == "train" else np.full(n_trials, "test", dtype=object)
        starts = np.arange(n_trials) * trial_ms / 1000.0
        plan = _plan(starts, window_bins * STEP_MS / 1000.0, split, n_trials * trial_ms / 1000.0,
                     {"condition": cond.astype(np.int64)})
        files[kind] = {"plan": plan, "rates": cond_rates[cond].reshape(-1, cond_rates.shape[-1]),
                       "latents": cond_latents[cond].reshape(-1, cond_latents.shape[-1]),
                       "behaviour": cond_pcs[cond].reshape(-1, 3)}
    return files


def write_known_dynamics(name: str, out_dir: str | Path, seed: int = 0, trials: Optional[int] = None,
                         progress: bool = False) -> SyntheticDataset:
    """Write the NWB folder + ground_truth.h5 of known-dynamics set `name`; same seed -> identical arrays."""
    from .synthetic import SyntheticDataset

    spec = get_dataset(name)
    if name not in KNOWN_DYNAMICS:
        raise NLBInputError(f"{name}: not a known-dynamics set (expected one of {', '.join(KNOWN_DYNAMICS)})")
    n_tv = _check_trials(trials, spec)
    n_test = max(1, int(round(TEST_SHARE * n_tv)))
    n_units = spec.n_heldin + spec.n_heldout
    window_bins = spec.n_bins(STEP_MS)
    fwd_bins = FORWARD_MS // STEP_MS
    rngs = _streams(name, seed)
    if name in ATTRACTORS:
        files = _attractor_files(name, n_tv, n_test, n_units, window_bins, fwd_bins, rngs)
    else:
        files = _rnn_files(n_tv, n_test, window_bins, fwd_bins, rngs)
    heldout = np.zeros(n_units, dtype=bool)
    heldout[rngs[1].permutation(n_units)[: spec.n_heldout]] = True
    out = Path(out_dir)
    # ground_truth.h5 first in, so last renamed into place: it marks a complete folder (`cached_synthetic`)
    paths = {"gt": out / "ground_truth.h5", "train": out / spec.train_file, "test": out / spec.test_file}
    stats: dict[str, dict[str, Any]] = {}
    with tqdm(total=2, unit="file", desc=f"synth {name}", disable=None if progress else True, leave=False) as bar, \
            contextlib.ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_path(p)) for k, p in paths.items()}
        gt: dict[str, dict[str, Any]] = {}
        for kind, rng in (("train", rngs[2]), ("test", rngs[3])):
            f = files[kind]
            plan: Plan = f["plan"]
            counts = rng.poisson(f["rates"])
            spikes = _spike_times(counts, rng)
            keep = np.arange(n_units) if kind == "train" else np.flatnonzero(~heldout)
            series = {"latent_state": _behaviour_ms(f["behaviour"], plan.n_ms)} if kind == "train" else {}
            write_nwb(tmp[kind], spec, plan, [spikes[u] for u in keep], heldout[keep], keep, series, kind, seed)
            gt[kind] = {"rates": f["rates"][:, keep], "heldout": heldout[keep],
                        "latents": f["latents"].astype(np.float32)}
            if kind == "test":
                gt[kind]["heldout_rates"] = f["rates"][:, heldout]
                gt[kind]["heldout_spike_times"] = [spikes[u] for u in np.flatnonzero(heldout)]
            split_counts = {s: int(np.sum(plan.trials["split"] == s)) for s in ("train", "val", "test", "none")}
            stats[kind] = {"trials": split_counts, "units": len(keep), "duration_s": plan.end,
                           "rate_hz": float(counts[:, keep].sum() / len(keep) / plan.end), "gaps": 0}
            bar.update(1)
        write_ground_truth(tmp["gt"], gt, name, seed, generator_identity(name, quirks=False))
    n_val = int(np.sum(files["train"]["plan"].trials["split"] == "val"))
    return SyntheticDataset(out, paths["train"], paths["test"], paths["gt"], spec, int(seed), False,
                            n_tv - n_val, n_val, n_test, 0, stats=stats)
