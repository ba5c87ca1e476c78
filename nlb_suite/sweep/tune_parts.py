"""Ray Tune pieces of a sweep: the PBT stopping rule and the per-trial progress line (imports Ray)."""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers import pbt as ray_pbt

from ..jsonio import write_json
from ..table import short

logger = logging.getLogger(__name__)


class PlateauStopper(tune.Stopper):
    """Stops the whole PBT run when the population's best validation score has not improved by
    `min_improvement` (relative) over the last `generations` completed generations (AutoLFADS' rule). Ray keeps
    this object in its experiment state, so a --resume restores it as last saved; trials then replay the epochs
    since their last checkpoint, so a generation is complete when every trial (counted once) has reached it."""

    def __init__(self, n_trials: int, interval: int, burn_in: int, generations: int, min_improvement: float):
        self.n_trials, self.interval, self.burn_in = n_trials, interval, burn_in
        self.generations, self.min_improvement = generations, min_improvement
        self.reached: dict[int, set[str]] = {}  # a generation's epoch -> the trials that reported it so far
        self.best = math.inf
        self.history: dict[int, float] = {}  # a completed generation's epoch -> the population's best score then

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.best = min(self.best, float(result.get("best", math.inf)))
        epoch = int(result.get("epoch", 0))
        if epoch > self.burn_in and (epoch - self.burn_in) % self.interval == 0 and epoch not in self.history:
            reached = self.reached.setdefault(epoch, set())
            reached.add(trial_id)
            if len(reached) == self.n_trials:
                self.history[epoch] = self.best
                del self.reached[epoch]
        return False

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A stopper pickled (in Ray's experiment state) before generations were keyed by epoch resumes too."""
        self.__dict__.update(state)
        if isinstance(self.history, list):
            first = self.burn_in + self.interval  # the first epoch the old rule counted
            self.history = {first + i * self.interval: best for i, best in enumerate(self.history)}
        self.__dict__.pop("counts", None)
        self.__dict__.setdefault("reached", {})

    def stop_all(self) -> bool:
        bests = list(self.history.values())  # in the order the generations completed, i.e. by epoch
        if len(bests) <= self.generations:
            return False
        before = bests[-self.generations - 1]
        recent = min(bests[-self.generations:])
        return (before - recent) <= self.min_improvement * abs(before)


GENERATIONS_FILE = "pbt_generations.json"  # in SWEEPDIR/tune: what --resume restores PBT from


class SeededPBT(PopulationBasedTraining):
    """Ray's PBT (sync mode) with both its draws seeded by the sweep's seed, and resumable.

    `explore(config, rng)` perturbs with one generator, the exploit donors come from another: Ray draws donors
    from Python's global `random`, which Tune's event loop also shuffles with on every poll (a count that follows
    the wall clock), so seeding that module would not repeat them. Ray restores a PBT experiment with a fresh
    scheduler (every trial at time 0), which perturbed off the generations' grid and then waited forever; so
    each completed generation is logged to tune/pbt_generations.json (its epoch, the next one, the scores it
    ranked, its exploits with the values they went on with, both generators' states), and a resumed sweep goes
    on from the last generation behind every trial's checkpoint, with the draws an uninterrupted sweep makes."""

    def __init__(self, *args, seed: int, explore: Callable[[dict, random.Random], dict], searched: Sequence[str],
                 **kwargs):
        self._explore_rng = random.Random(f"pbt-explore:{seed}")
        super().__init__(*args, custom_explore_fn=functools.partial(explore, rng=self._explore_rng), **kwargs)
        if not self._synch:
            raise ValueError("SeededPBT logs and restores sync-mode generations only (synch=True)")
        self._donor_rng = random.Random(f"pbt-exploit:{seed}")
        self.searched = list(searched)
        self.generations: list[dict[str, Any]] = []
        self._exploits: list[dict[str, Any]] = []  # this generation's, so far
        self._log: Optional[Path] = None
        self._restored = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A scheduler pickled (in tuner.pkl) before the log existed resumes without one."""
        self.__dict__.update(state)
        for name, empty in (("searched", list), ("generations", list), ("_exploits", list)):
            self.__dict__.setdefault(name, empty())
        self.__dict__.setdefault("_log", None)
        self.__dict__.setdefault("_restored", False)
        self.__dict__.setdefault("_explore_rng", self._custom_explore_fn.keywords["rng"])

    def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        # Ray's `random.choice(upper_quantile)` resolves `random` in its module: only that module's draws go to
        # our generator, nobody else's
        module_random, ray_pbt.random = ray_pbt.random, self._donor_rng
        try:
            super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)
        finally:
            ray_pbt.random = module_random

    def _exploit(self, tune_controller, trial: Trial, trial_to_clone: Trial) -> None:
        """Ray's exploit, noted for the log; the trial is marked for Ray's next experiment save (Ray does not
        mark it, so a paused trial's new config and checkpoint could miss a Ctrl-C and be undone on resume), and
        its run metadata's cached JSON is dropped: Ray points the trial at the donor's checkpoint inside its
        checkpoint manager, which that cache does not notice, so the save would keep the trial's own checkpoint
        beside the new config (a resume after such a save trained the donor's values on the wrong weights)."""
        super()._exploit(tune_controller, trial, trial_to_clone)
        trial.run_metadata.invalidate_cache()
        getattr(tune_controller, "_tune_controller", tune_controller)._mark_trial_to_checkpoint(trial)
        self._exploits.append({"trial": trial.trial_id, "donor": trial_to_clone.trial_id,
                               "values": {k: trial.config[k] for k in self.searched if k in trial.config}})

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        """Ray's, and the log's place: the experiment folder (Ray's restore moves it with the sweep)."""
        super().on_trial_add(tune_controller, trial)
        if self._log is None:
            self._log = Path(trial.local_experiment_path) / GENERATIONS_FILE

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        """Ray's, and a generation completed by this result is logged (Ray then moves the next one on)."""
        due = self._next_perturbation_sync
        decision = super().on_trial_result(tune_controller, trial, result)
        if self._next_perturbation_sync != due:
            self._log_generation(int(result[self._time_attr]))
        return decision

    def choose_trial_to_run(self, tune_controller) -> Optional[Trial]:
        """Ray's; its first call in a run comes before any trial (re)starts, so a resume is restored there."""
        if not self._restored:
            self._restored = True
            self._restore(tune_controller)
        return super().choose_trial_to_run(tune_controller)

    def _log_generation(self, epoch: int) -> None:
        """Append the generation just completed at `epoch` to the log (rewritten whole, atomically)."""
        scores = {t.trial_id: None if s.last_score is None else self._metric_op * s.last_score
                  for t, s in self._trial_state.items()}  # what this generation ranked the trials by
        record = {"epoch": epoch, "next": self._next_perturbation_sync, "scores": scores, "exploits": self._exploits,
                  "explore_rng": self._explore_rng.getstate(), "donor_rng": self._donor_rng.getstate()}
        self.generations.append(record)
        self._exploits = []
        if self._log is not None:
            write_json(self._log, self.generations, indent=None)

    def _restore(self, tune_controller) -> None:
        """Put the scheduler where the restored trials stand: each restarts from its latest checkpoint, so the
        generations at or before the earliest of those epochs are past, later ones in the log are replayed."""
        trials = [t for t in tune_controller.get_trials() if not t.is_finished()]
        at = {t: int((t.latest_checkpoint_result.metrics if t.latest_checkpoint_result else {}).get(
            self._time_attr, 0)) for t in trials}
        if not any(at.values()):
            return  # a new sweep, or one stopped before any checkpoint
        self._restore_generations(min(at.values()))
        self._restore_trials(tune_controller, at)

    def _restore_generations(self, earliest: int) -> None:
        """Keep the logged generations at or before `earliest`; the draws and the next generation as they left
        the last of them."""
        logged = json.loads(self._log.read_text()) if self._log is not None and self._log.is_file() else []
        self.generations = [g for g in logged if g["epoch"] <= earliest]
        self._exploits = []
        if self.generations:
            last = self.generations[-1]
            self._explore_rng.setstate(_rng_state(last["explore_rng"]))
            self._donor_rng.setstate(_rng_state(last["donor_rng"]))
            self._next_perturbation_sync = last["next"]

    def _restore_trials(self, tune_controller, at: dict[Trial, int]) -> None:
        """Each trial's state from its checkpoint; one that was waiting at the next generation waits again (Ray
        starts every restored trial: one epoch past the generation, it would be ranked on another epoch's score),
        and when all were waiting (stopped before the generation ran) the last arrival's result completes it."""
        since = self.generations[-1]["epoch"] if self.generations else 0
        # Ray re-adds restored trials newest first; ranking breaks ties in this order, so put back the order
        # of a run that was never stopped (trials by their index)
        self._trial_state = dict(sorted(self._trial_state.items(), key=lambda item: item[0].trial_id))
        waiting = []
        for trial, epoch in at.items():
            state = self._trial_state[trial]
            state.last_perturbation_time, state.last_train_time = since, epoch
            result = trial.last_result or {}
            if epoch and result.get(self._time_attr) == epoch and self._metric in result:  # its score there
                state.last_score, state.last_result = self._metric_op * result[self._metric], result
            if epoch >= self._next_perturbation_sync:
                if state.last_score is None:  # its report at the checkpoint is not in Ray's saved state
                    logger.warning("PBT resume: trial %s has no score at epoch %d; it sits out the generation there",
                                   trial.trial_id, epoch)
                waiting.append(trial)
                if trial.status == Trial.PENDING:
                    tune_controller._set_trial_status(trial, Trial.PAUSED)  # whitelisted for schedulers
        if waiting and len(waiting) == len(at):
            arrived = max(waiting, key=lambda t: t.run_metadata.last_result_time)
            self.on_trial_result(tune_controller, arrived, arrived.last_result)


def _rng_state(saved: list) -> tuple:
    """A Random.getstate() tuple from its JSON form."""
    return saved[0], tuple(saved[1]), saved[2]


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
        from .trial import held_state, trial_record

        record = trial_record(held_state(trial.checkpoint, Path(trial.path)), r, trial.config)  # a donor's too
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
