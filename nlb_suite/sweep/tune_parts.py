"""Ray Tune pieces of a sweep: the PBT stopping rule and the per-trial progress line (imports Ray)."""

from __future__ import annotations

import functools
import math
import random
import signal
import threading
from collections.abc import Callable

from ray import tune
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers import pbt as ray_pbt

from ..table import short


class SeededPBT(PopulationBasedTraining):
    """Ray's PBT with both its draws seeded by the sweep's seed: `explore(config, rng)` perturbs with one
    generator, the exploit donors come from another. Ray draws donors from Python's global `random`, which
    Tune's event loop also shuffles with on every poll (a count that follows the wall clock), so seeding that
    module would not repeat them."""

    def __init__(self, *args, seed: int, explore: Callable[[dict, random.Random], dict], **kwargs):
        perturb = functools.partial(explore, rng=random.Random(f"pbt-explore:{seed}"))
        super().__init__(*args, custom_explore_fn=perturb, **kwargs)
        self._donor_rng = random.Random(f"pbt-exploit:{seed}")

    def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        # Ray's `random.choice(upper_quantile)` resolves `random` in its module: only that module's draws go to
        # our generator, nobody else's
        module_random, ray_pbt.random = ray_pbt.random, self._donor_rng
        try:
            super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)
        finally:
            ray_pbt.random = module_random


class PlateauStopper(tune.Stopper):
    """Stops the whole PBT run when the population's best validation score has not improved by
    `min_improvement` (relative) over the last `generations` completed generations (AutoLFADS' rule)."""

    def __init__(self, n_trials: int, interval: int, burn_in: int, generations: int, min_improvement: float):
        self.n_trials, self.interval, self.burn_in = n_trials, interval, burn_in
        self.generations, self.min_improvement = generations, min_improvement
        self.counts: dict[int, int] = {}
        self.best = math.inf
        self.history: list[float] = []  # the population's best score at the end of each generation

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.best = min(self.best, float(result.get("best", math.inf)))
        epoch = int(result.get("epoch", 0))
        if epoch > self.burn_in and (epoch - self.burn_in) % self.interval == 0:
            self.counts[epoch] = self.counts.get(epoch, 0) + 1
            if self.counts[epoch] == self.n_trials:
                self.history.append(self.best)
        return False

    def stop_all(self) -> bool:
        if len(self.history) <= self.generations:
            return False
        before = self.history[-self.generations - 1]
        recent = min(self.history[-self.generations:])
        return (before - recent) <= self.min_improvement * abs(before)


def trial_folder(trial) -> str:
    """A trial's folder name under SWEEPDIR/tune: its id (Ray's default adds every sampled value)."""
    return f"trial_{trial.trial_id}"


class SweepProgress(tune.Callback):
    """One line per finished trial: its validation score, epochs, time and searched values."""

    def __init__(self, total: int, names: list[str]):
        self.total, self.names, self.done = total, names, 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        r = trial.last_result or {}
        from .trial import trial_record

        record = trial_record(trial.checkpoint, r, trial.config)  # the model it holds, a last-epoch donor's included
        values = " ".join(f"{n}={short(record.values.get(n))}" for n in self.names)
        print(f"trial {self.done}/{self.total} ({trial.trial_id}) finished: {r.get('monitor', 'valid')} best "
              f"{record.valid_best:.5g} at epoch {record.best_epoch or '-'}, {record.epochs} epochs, "
              f"{record.fit_s:.0f} s; {values}", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"trial {self.done}/{self.total} ({trial.trial_id}) FAILED (see {trial.path}/error.txt)", flush=True)


class InterruptWatch:
    """Whether Ray Tune stopped on Ctrl-C. Tune's SIGINT handler puts back the handler it found at the start
    of the run (a marker installed here), so finding the marker afterwards means it fired. On exit the
    caller's handlers are restored (Tune leaves its own installed after a normal end)."""

    def __init__(self):
        self.interrupted = False

    @staticmethod
    def _marker(sig, frame):
        raise KeyboardInterrupt

    def __enter__(self) -> InterruptWatch:
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGUSR1)}
            signal.signal(signal.SIGINT, self._marker)
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            self.interrupted = signal.getsignal(signal.SIGINT) is self._marker and exc[0] is None
            for sig, handler in self.saved.items():
                signal.signal(sig, handler)
