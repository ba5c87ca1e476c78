"""Synthetic NLB datasets: DANDI-style NWB folders with known ground-truth rates (for demos and parity tests).

`write_synthetic(name, out_dir)` writes `out_dir/<spec.train_file>`, `out_dir/<spec.test_file>` and
`out_dir/ground_truth.h5`. Spikes are Poisson draws from rates driven by low-dimensional latent
dynamics (synthetic_dynamics); trial schedules and the awkward cases nlb_tools must survive
(off-grid alignments, obs gaps, NaN stretches, split 'none') come from synthetic_tasks.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import NLBInputError
from ..h5io import atomic_path
from .specs import KNOWN_DYNAMICS, DatasetSpec, get_dataset
from .synthetic_cache import generator_identity
from .synthetic_dynamics import LatentModel, behaviour, build_model, draw_spikes, simulate
from .synthetic_nwb import write_ground_truth, write_nwb
from .synthetic_tasks import FAMILIES, Plan, make_plan

DEMO_TRIALS = {"mc_maze": 300, "mc_rtt": 300, "dmfc_rsg": 300}  # others: the registry's real count
MAX_TRIALS = 20000
VAL_FRACTION = 0.25


@dataclass(frozen=True)
class SyntheticDataset:
    """What `write_synthetic` wrote: the folder, its files, and the trial counts per split."""

    path: Path
    train_file: Path
    test_file: Path
    ground_truth: Path
    spec: DatasetSpec
    seed: int
    quirks: bool
    n_train: int
    n_val: int
    n_test: int
    n_none: int
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # per file: units, duration_s, rate_hz

    @property
    def files(self) -> dict[str, Path]:
        return {"train": self.train_file, "test": self.test_file, "ground_truth": self.ground_truth}

    @property
    def nwb_dir(self) -> Path:
        """The folder holding both NWB files (what nlb_tools' `NWBDataset(folder)` is given)."""
        return self.train_file.parent


def default_trials(spec: DatasetSpec) -> int:
    """Train+val trials when none are requested: the real count, or ~300 for the three big sets."""
    return DEMO_TRIALS.get(spec.name, spec.n_train_val)


def _check_trials(trials: Any, spec: DatasetSpec) -> int:
    if trials is None:
        return default_trials(spec)
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or not 4 <= trials <= MAX_TRIALS:
        raise NLBInputError(f"--trials: bad trial count {trials!r} (expected an integer from 4 to {MAX_TRIALS})")
    return int(trials)


def _counts(spec: DatasetSpec, n: int) -> tuple[int, int, int, int]:
    """(train, val, test, none) trial counts for `n` train+val trials."""
    n_val = int(round(VAL_FRACTION * n))
    n_test = max(1, int(round(n * spec.n_test / spec.n_train_val)))
    n_none = max(2, int(round(0.03 * n)))
    return n - n_val, n_val, n_test, n_none


def _streams(name: str, seed: int) -> list[np.random.Generator]:
    """Independent seeded streams: model, conditions, train file, test file (stable across trial counts)."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())])
    return [np.random.default_rng(s) for s in ss.spawn(4)]


def _session(model: LatentModel, spec: DatasetSpec, plan: Plan, quirks: bool, rng: np.random.Generator,
             bar: tqdm) -> dict[str, Any]:
    """Simulate one file: latents, spikes of every unit, expected counts and (train) behaviour."""
    latents = simulate(model, plan, rng)
    bar.update(len(latents))
    units = np.arange(len(model.heldout))
    spikes, expected = draw_spikes(model, latents, plan, units, quirks, rng, tick=bar.update)
    series = behaviour(model, spec, plan, latents, rng) if plan.trials["split"][0] != "test" else {}
    return {"latents": latents, "spikes": spikes, "expected": expected, "series": series}


def _stats(plan: Plan, spikes: list[np.ndarray]) -> dict[str, Any]:
    obs = plan.obs_intervals()
    observed = float(np.sum(obs[:, 1] - obs[:, 0]))
    splits = {s: int(np.sum(plan.trials["split"] == s)) for s in ("train", "val", "test", "none")}
    rate = sum(len(s) for s in spikes) / max(len(spikes), 1) / observed
    return {"trials": splits, "units": len(spikes), "duration_s": plan.end, "rate_hz": rate,
            "gaps": len(plan.gaps)}


def write_synthetic(name: str, out_dir: str | Path, seed: int = 0, trials: int | None = None,
                    quirks: bool = True, progress: bool = False) -> SyntheticDataset:
    """Write a synthetic DANDI-style folder for dataset `name`; same seed -> identical arrays."""
    if name in KNOWN_DYNAMICS:  # lorenz, rossler, arneodo, chaotic_rnn: their own generator, no quirks
        from .known_dynamics import write_known_dynamics

        return write_known_dynamics(name, out_dir, seed=seed, trials=trials, progress=progress)
    spec = get_dataset(name)
    n = _check_trials(trials, spec)
    n_train, n_val, n_test, n_none = _counts(spec, n)
    out = Path(out_dir)
    rng_model, rng_cond, rng_train, rng_test = _streams(name, seed)
    family = FAMILIES[name]
    model = build_model(family, spec, rng_model)
    cond_seed = int(rng_cond.integers(2**32))
    plans = {
        "train": make_plan(name, spec, n, n_none, False, quirks, rng_train, cond_seed),
        "test": make_plan(name, spec, n_test, 0, True, quirks, rng_test, cond_seed),
    }
    total = 2 * sum(-(-p.n_ms // 5) for p in plans.values())
    heldin = ~model.heldout
    # ground_truth.h5 first in, so last renamed into place: it marks a complete folder (`cached_synthetic`)
    paths = {"gt": out / "ground_truth.h5", "train": out / spec.train_file, "test": out / spec.test_file}
    stats: dict[str, dict[str, Any]] = {}
    with tqdm(total=total, unit="bin", desc=f"synth {name}", disable=None if progress else True, leave=False) as bar, \
            contextlib.ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_path(p)) for k, p in paths.items()}
        gt: dict[str, dict[str, Any]] = {}
        for kind, rng in (("train", rng_train), ("test", rng_test)):
            plan = plans[kind]
            sim = _session(model, spec, plan, quirks, rng, bar)
            keep = np.arange(len(heldin)) if kind == "train" else np.flatnonzero(heldin)
            spikes = [sim["spikes"][u] for u in keep]
            ho = model.heldout[keep]
            write_nwb(tmp[kind], spec, plan, spikes, ho, keep, sim["series"], kind, seed)
            gt[kind] = {"rates": sim["expected"][:, keep], "heldout": ho,
                        "latents": sim["latents"].astype(np.float32)}
            if kind == "test":  # hidden held-out units of the test trials (absent from the test NWB)
                gt[kind]["heldout_rates"] = sim["expected"][:, model.heldout]
                gt[kind]["heldout_spike_times"] = [s for s, h in zip(sim["spikes"], model.heldout) if h]
            stats[kind] = _stats(plan, spikes)
        write_ground_truth(tmp["gt"], gt, name, seed, generator_identity(name, quirks))
    counts = (n_train, n_val, n_test, n_none)
    return SyntheticDataset(out, paths["train"], paths["test"], paths["gt"], spec, int(seed), quirks,
                            *counts, stats=stats)
