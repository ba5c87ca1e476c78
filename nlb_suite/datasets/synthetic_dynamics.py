"""Latent dynamics, spikes and behaviour of the synthetic sessions (the proving ground's generator).

The neurons are driven by an input-driven nonlinear RNN teacher (as in the LFADS paper's synthetic
data), not by the kinematics. Per 5 ms bin:

- task drivers (preparatory states that track each condition's target, sensory/context signals,
  the motor command that launches the reach) evolve linearly: x[k+1] = A x[k] + u[k] + noise, with
  event kicks;
- the RNN state h (N units, time constant `tau_rnn`, recurrent gain `rnn_gain`) integrates the drivers:
  h += dt/tau (-h + J tanh(h) + B drivers) + noise, so its trajectory after movement onset is set by
  the preparatory state it starts from (condition-specific rotational transients);
- a condition-invariant signal rises over tens of ms around a neural onset that jitters from trial to
  trial relative to the recorded movement onset;
- firing rates are a nonlinear (softplus) readout of [tanh(h), condition-invariant, slow drift], so
  neither log-linear (smoothing GLM) nor linear-Gaussian (GPFA) models are well specified;
- spikes are Poisson given the rate times a private, fast log-normal gain per neuron (spike-count
  variability beyond Poisson that no population model can predict); the ground truth is the expected
  count given the shared latents, the best prediction any model can make;
- behaviour comes from a separate kinematic plant launched by the same motor events; its trial-to-trial
  variability is mostly set by the preparatory state (a reach's path bends with it), plus a small unplanned
  velocity (an OU motor-noise plant) that the neurons express only weakly (`potent_sd`; zero: they never see
  it): velocity is decoded better from rates that infer the single-trial state than from smoothed counts,
  as in real motor cortex; the hand's position and velocity are never inputs to the neurons.
"""


from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.linalg import expm
from scipy.signal import lfilter

from .specs import DatasetSpec
from .synthetic_tasks import Plan

DT = 0.005  # latent / ground-truth bin (s)
BIN_MS = 5
REACH_TAU = 0.07  # reach generator time constant (s): bell-shaped speed peaking ~70 ms after the kick
MAX_RATE_HZ = 200.0  # firing rates saturate smoothly towards this
EDGE_SNAP_FRACTION = 0.01  # quirk: share of spikes moved onto the lower edge of their 5 ms bin
CHUNK_BINS = 4096
MOTOR_NOISE_TAU = 1.0  # s: slow leak that keeps the motor-noise displacement bounded

Event = Callable[[np.ndarray], None]

LAYOUTS = {  # block name -> size (task drivers, plant, motor noise, condition-invariant, slow drift)
    "maze": (("prep", 6), ("ci", 1), ("z1", 2), ("z2", 2), ("p", 2), ("e1", 2), ("e2", 2), ("pe", 2),
             ("slow", 1)),
    "rtt": (("q", 2), ("ci", 1), ("z1", 2), ("z2", 2), ("p", 2), ("e1", 2), ("e2", 2), ("pe", 2), ("slow", 1)),
    "bump": (("f", 2), ("rot", 4), ("ci", 1), ("z1", 2), ("z2", 2), ("p", 2), ("e1", 2), ("e2", 2), ("pe", 2),
             ("slow", 1)),
    "rsg": (("c", 2), ("m", 2), ("pp", 3), ("ci", 2), ("slow", 1)),
}
TRACK_TAU = {"prep": 0.08, "q": 0.08, "f": 0.02, "c": 0.1, "m": 0.05, "pp": 0.05, "ci": 0.05}
PLANTS = (("z1", "z2", "p"), ("e1", "e2", "pe"))  # reach generator; unplanned motor noise (velocity e2)
READOUT_BLOCKS = ("ci", "slow", "e2", "trial")  # read out directly besides tanh(h); other non-plant blocks drive h


@dataclass(frozen=True)
class Realism:
    """The knobs that set how hard a family's data are (calibrated with benchmarks/bench_realism.py
    against nlb_tools' end-to-end recipe on real mc_maze_large; see benchmarks/RESULTS.md)."""

    n_rnn: int = 40  # RNN teacher units
    tau_rnn: float = 0.025  # s
    rnn_gain: float = 1.3  # recurrent gain g (chaotic above ~1 when undriven)
    input_gain: float = 2.0  # drivers -> RNN
    motor_gain: float = 1.5  # motor command (reach generator) -> RNN
    rnn_noise: float = 0.05  # RNN process noise (shared, not locked to the condition)
    readout_gain: float = 1.3  # weight scale of tanh(h) in the rate drive
    ci_gain: float = 2.0  # mean weight of the condition-invariant signal
    ci_spread: float = 0.6  # sd of those weights over ci_gain (above ~0.6 some neurons fall at onset)
    offset_mean: float = 0.5  # softplus offset c_n ~ N(mean, sd): linear (c >> 0) to exponential (c << 0)
    offset_sd: float = 1.0
    base_hz: float = 10.0  # median rest rate
    base_spread: float = 0.5  # sd of log rest rates over neurons (cortex: wide, lognormal; sparse units inform
    #                           a 50 ms window little but a model of the whole trial still pools them)
    base_floor_hz: float = 1.0  # lowest rest rate
    private_sd: float = 0.6  # private log-gain per neuron (fast, unpredictable)
    private_tau: float = 0.01  # s
    onset_jitter_s: float = 0.03  # neural (and hand) onset vs the recorded movement onset (sd)
    ci_rise_s: float = 0.012  # logistic scale of the condition-invariant rise (10-90 % in ~50 ms)
    prep_noise: float = 0.75  # trial-to-trial preparatory-state noise (condition spread ~1)
    motor_noise_vel: float = 10.0  # sd of the hand-velocity variability not planned by the condition (mm/s)
    endpoint_coupling: float = 25.0  # mm of reach-endpoint shift per unit of preparatory noise
    path_coupling: float = 0.0  # mm of first-segment path deviation per unit of preparatory noise (maze; the
    #                             hand then corrects to the endpoint: trial-specific curvature set before onset)
    neural_drive: float = 0.5  # RNN output -> plant while the movement signal is on
    potent_sd: float = 0.0  # readout weight sd of that velocity variability: expressed weakly by the neurons
    trial_dims: int = 0  # slow shared states (OU, sd 1, tau trial_tau) read out directly: a trial-long state that
    #                      a 50 ms window sees through spike noise and a model of the whole trial pools (probe)
    trial_tau: float = 2.0  # s
    trial_sd: float = 0.5  # readout weight sd of each slow state


# maze: trial-to-trial hand variability is mostly set by the neural state before onset (each reach's first
# segment bends by `path_coupling` mm per unit of preparatory noise, endpoints scatter with sd ~8 mm), with a small
# unplanned motor noise (sd 30 mm/s) that the neurons express weakly: calibrated so nlb_tools' end-to-end recipe
# on smoothed spikes decodes velocity about as poorly as on real mc_maze_large while a model that infers
# single-trial states from the whole trial (LFADS) decodes it better (benchmarks/RESULTS.md, "Proving ground")
REALISM = {"maze": Realism(motor_noise_vel=30.0, potent_sd=0.5, endpoint_coupling=10.0, path_coupling=100.0,
                           motor_gain=1.0), "rtt": Realism(), "bump": Realism(),
           "rsg": Realism(tau_rnn=0.06)}


@dataclass
class LatentModel:
    """A dataset's fixed generative model: drivers, RNN teacher, nonlinear readout, plant, held-out units."""

    family: str
    blocks: dict[str, slice]
    A: np.ndarray
    noise_sd: np.ndarray
    scale: np.ndarray
    C: np.ndarray  # (n_units, n_rnn + n_direct) readout weights of [tanh(h), direct latents]
    offset: np.ndarray  # (n_units,) softplus offsets
    log_base: np.ndarray  # (n_units,) log Hz at rest (drive 0)
    heldout: np.ndarray  # (n_units,) bool, in unit-table order
    lag_s: float
    J: np.ndarray  # (n_rnn, n_rnn) recurrent weights
    B: np.ndarray  # (n_rnn, n_drivers) driver weights
    drivers: np.ndarray  # indices into x of the RNN's inputs
    direct: np.ndarray  # indices into x read out directly
    knobs: Realism
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.A.shape[0]

    @property
    def n_rnn(self) -> int:
        return self.J.shape[0]

    def gain(self, name: str) -> np.ndarray:
        """Per-step input gain of a first-order tracking block (exact for a piecewise-constant target)."""
        return 1.0 - np.exp(-DT / TRACK_TAU[name])


def _blocks(family: str, trial_dims: int = 0) -> dict[str, slice]:
    out, i = {}, 0
    for name, size in LAYOUTS[family] + ((("trial", trial_dims),) if trial_dims else ()):
        out[name] = slice(i, i + size)
        i += size
    return out


def _plant(a: np.ndarray, b: dict[str, slice], names: tuple[str, str, str]) -> None:
    """Second-order reach generator: z1 -> z2 -> position (bell-shaped velocity after a kick of z1)."""
    z1, z2, p = (np.arange(b[k].start, b[k].stop) for k in names)
    a[z1, z1] = -1 / REACH_TAU
    a[z2, z2] = -1 / REACH_TAU
    a[z2, z1] = 1 / REACH_TAU
    a[p, z2] = 1.0


def _continuous_a(family: str, b: dict[str, slice], trial_tau: float = 2.0) -> np.ndarray:
    """Continuous-time dynamics of the linear part: tracking blocks, rotations, plants, slow drift."""
    d = max(s.stop for s in b.values())
    a = np.zeros((d, d))
    for name, sl in b.items():
        if name in TRACK_TAU:
            a[sl, sl] = -np.eye(sl.stop - sl.start) / TRACK_TAU[name]
    if "rot" in b:
        for j, (freq, tau) in enumerate(((1.6, 0.35), (2.6, 0.25))):
            i = b["rot"].start + 2 * j
            w = 2 * np.pi * freq
            a[i:i + 2, i:i + 2] = [[-1 / tau, -w], [w, -1 / tau]]
    for names in PLANTS:
        if names[0] in b:
            _plant(a, b, names)
    if "pe" in b:
        pe = np.arange(b["pe"].start, b["pe"].stop)
        a[pe, pe] = -1 / MOTOR_NOISE_TAU  # the motor-noise displacement wanders around the planned path
    if "q" in b:
        q, p = np.arange(b["q"].start, b["q"].stop), np.arange(b["p"].start, b["p"].stop)
        a[q, p] = -1 / (100.0 * TRACK_TAU["q"])  # q tracks (target - hand) / 100 mm
    a[b["slow"], b["slow"]] = -1 / 2.0
    if "trial" in b:
        tr = np.arange(b["trial"].start, b["trial"].stop)
        a[tr, tr] = -1 / trial_tau
    return a


def _indices(b: dict[str, slice], names) -> np.ndarray:
    return np.concatenate([np.arange(b[n].start, b[n].stop) for n in names if n in b] or [np.zeros(0, int)])


def build_model(family: str, spec: DatasetSpec, rng: np.random.Generator) -> LatentModel:
    """Draw a dataset's model: dynamics, RNN teacher, readout of every unit, held-out units."""
    knobs = REALISM[family]
    b = _blocks(family, knobs.trial_dims)
    d = max(s.stop for s in b.values())
    A = expm(_continuous_a(family, b, knobs.trial_tau) * DT)
    scale = np.ones(d)
    noise = np.full(d, 0.02)
    if "z1" in b:
        for z1, z2, p in PLANTS:
            scale[b[z1]] = 100.0 / REACH_TAU
            scale[b[z2]] = 100.0 / REACH_TAU / np.e
            scale[b[p]] = 100.0
            noise[b[z2]] = noise[b[p]] = 0.0
        noise[b["z1"]] = 0.004 * scale[b["z1"]]
        # motor noise: an OU drive e1 low-passed into the velocity e2 (sd motor_noise_vel; var e2 = var e1 / 2)
        noise[b["e1"]] = np.sqrt(2.0) * knobs.motor_noise_vel * np.sqrt(2 * DT / REACH_TAU)
    noise[b["slow"]] = 0.3 * np.sqrt(1 - np.exp(-2 * DT / 2.0))
    if "trial" in b:
        noise[b["trial"]] = np.sqrt(1 - np.exp(-2 * DT / knobs.trial_tau))  # stationary sd 1
    plant = set().union(*PLANTS)
    driver_names = [n for n, _ in LAYOUTS[family] if n not in plant and n not in READOUT_BLOCKS]
    drivers = _indices(b, driver_names + (["z1"] if "z1" in b else []))
    direct = _indices(b, READOUT_BLOCKS)
    n_rnn = knobs.n_rnn
    J = rng.normal(0, knobs.rnn_gain / np.sqrt(n_rnn), (n_rnn, n_rnn))
    B = rng.normal(0, 1.0 / np.sqrt(max(len(drivers), 1)), (n_rnn, len(drivers))) * knobs.input_gain
    if "z1" in b:
        B[:, -2:] *= knobs.motor_gain / knobs.input_gain
    n_units = spec.n_heldin + spec.n_heldout
    unit_gain = rng.uniform(0.5, 1.5, (n_units, 1))
    C_rnn = rng.normal(0, knobs.readout_gain / np.sqrt(n_rnn / 4), (n_units, n_rnn)) * unit_gain
    n_ci = b["ci"].stop - b["ci"].start
    C_ci = rng.normal(knobs.ci_gain, knobs.ci_spread * knobs.ci_gain, (n_units, n_ci))
    C_slow = np.abs(rng.normal(0.3, 0.1, (n_units, 1)))
    C_parts = [C_rnn, C_ci, C_slow]
    offset = np.clip(rng.normal(knobs.offset_mean, knobs.offset_sd, n_units), -1.5, 3.0)
    log_base = np.log(np.clip(rng.lognormal(np.log(knobs.base_hz), knobs.base_spread, n_units),
                              knobs.base_floor_hz, 40.0))
    heldout = np.zeros(n_units, bool)
    heldout[rng.permutation(n_units)[: spec.n_heldout]] = True
    params = {
        "prep_mix": rng.normal(0, 1.0, (6, 6)),
        "rot_kick": rng.normal(0, 0.7, (4, 4)),
        "dir_kick": rng.normal(0, 0.8, (4, 2)),
        "force_mix": rng.normal(0, 1.0, (6, 4)),
        "joint_mix": rng.normal(0, 15.0, (7, 2)),
        "muscle_mix": rng.normal(0, 1.5, (39, 2)),
        "joint_base": rng.uniform(-40, 90, 7),
        "muscle_base": rng.uniform(3, 15, 39),
        "rsg_code": rng.normal(0, 0.3, (4, 3)),
        "endpoint_mix": rng.normal(0, knobs.endpoint_coupling / np.sqrt(6), (2, 6)),
        "motor_out": rng.normal(0, 1.0 / np.sqrt(knobs.n_rnn), (2, knobs.n_rnn)),
    }
    if "e2" in b:  # the unplanned part of hand velocity, expressed weakly (an output-potent signal)
        C_parts.append(rng.normal(0, knobs.potent_sd, (n_units, 2)))
    if knobs.path_coupling:  # drawn last: settings without it keep every other draw
        params["path_mix"] = rng.normal(0, knobs.path_coupling / np.sqrt(6), (2, 6))
    if knobs.trial_dims:  # after it, for the same reason
        C_parts.append(rng.normal(0, knobs.trial_sd, (n_units, knobs.trial_dims)))
    C = np.concatenate(C_parts, axis=1)
    return LatentModel(family, b, A, noise, scale, C, offset, log_base, heldout, (spec.lag_ms or 0) / 1000,
                       J, B, drivers, direct, knobs, params)


# ----------------------------------------------------------------------------------------------- inputs


class Inputs:
    """Exogenous drive u[k] (n_bins x d) and state-dependent kicks at given bins."""

    def __init__(self, n_bins: int, dim: int) -> None:
        self.u = np.zeros((n_bins, dim))
        self.events: dict[int, list[Event]] = {}

    def hold(self, t0: float, t1: float, sl: slice, value: np.ndarray) -> None:
        """Add a constant drive over [t0, t1) s (bins whose start lies inside)."""
        if not (np.isfinite(t0) and np.isfinite(t1)):
            return
        k0, k1 = int(np.ceil(t0 / DT)), int(np.ceil(t1 / DT))
        self.u[max(k0, 0):max(k1, 0), sl] += value

    def kick(self, t: float, fn: Event) -> None:
        if np.isfinite(t):
            k = int(t // DT)
            if 0 <= k < len(self.u):
                self.events.setdefault(k, []).append(fn)


def _reach(m: LatentModel, goal: np.ndarray, then: Event | None = None) -> Event:
    """Kick the reach generator so the hand ends at `goal` (mm) from wherever it is and moves."""
    b = m.blocks

    def fn(x: np.ndarray) -> None:
        remaining = REACH_TAU * (x[b["z1"]] + x[b["z2"]])
        delta = (goal - x[b["p"]] - remaining) / REACH_TAU
        x[b["z1"]] += delta
        if then is not None:
            then(x)
    return fn


def _add(sl: slice, vec: np.ndarray) -> Event:
    def fn(x: np.ndarray) -> None:
        x[sl] += vec
    return fn


def _ci_pulse(m: LatentModel, inp: Inputs, onset: float, duration: float, sl: slice,
              value: np.ndarray | float = 1.0) -> None:
    """Condition-invariant drive: a logistic rise around `onset` (width ci_rise_s), held for `duration`."""
    if not np.isfinite(onset):
        return
    w = m.knobs.ci_rise_s
    k0, k1 = int(np.ceil((onset - 5 * w) / DT)), int(np.ceil((onset + duration) / DT))
    k0, k1 = max(k0, 0), min(k1, len(inp.u))
    if k1 <= k0:
        return
    t = (np.arange(k0, k1) + 0.5) * DT
    rise = 1.0 / (1.0 + np.exp(-(t - onset) / w))
    inp.u[k0:k1, sl] += m.gain("ci") * rise[:, None] * np.atleast_1d(value)


def _maze_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, tr, hid, P, kn = m.blocks, plan.trials, plan.hidden, m.params, m.knobs
    goal, via = hid["goal"] / 100.0, hid["via"] / 100.0
    ang = np.arctan2(goal[:, 1], goal[:, 0])
    feats = np.stack([np.cos(ang), np.sin(ang), np.hypot(*goal.T) - 1.0, via[:, 0], via[:, 1],
                      np.where(tr["trial_version"] == 0, -0.5, 0.5)], axis=1)
    prep = np.tanh(feats @ P["prep_mix"].T) * 1.5  # condition -> preparatory target (nonlinear)
    ic = rng.normal(0, kn.prep_noise, (plan.n_trials, 6))  # trial-specific preparatory noise
    jitter = rng.normal(0, kn.onset_jitter_s, plan.n_trials)
    # the endpoint follows the trial's preparatory state: single-trial neural variability shows in behaviour
    end_noise = rng.normal(0, 2.0, (plan.n_trials, 2, 2)) + (ic @ P["endpoint_mix"].T)[:, None, :]
    curve = ic @ P["path_mix"].T if "path_mix" in P else None  # first segment bends with the preparatory state
    g = m.gain("prep")
    for i in range(plan.n_trials):
        # neural and hand onsets jitter together around the recorded movement onset (a noisy detector)
        t0 = tr["move_onset_time"][i] - m.lag_s + jitter[i]
        neural = t0 - 0.03
        prep_end = neural + 0.02 if np.isfinite(t0) else tr["stop_time"][i]
        inp.hold(tr["target_on_time"][i] + 0.08, prep_end, b["prep"], g * (prep[i] + ic[i]))
        _ci_pulse(m, inp, neural, 0.35, b["ci"])
        straight = tr["trial_version"][i] == 0
        first = hid["goal"][i] if straight else hid["via"][i]
        # with `curve`, every reach bends on its first segment, then corrects towards the endpoint
        inp.kick(t0, _reach(m, first + (0.0 if curve is None else curve[i]) + end_noise[i, 0]))
        if curve is not None or not straight:
            inp.kick(t0 + 0.12, _reach(m, hid["goal"][i] + end_noise[i, 1]))
        inp.kick(tr["stop_time"][i] + 0.05, _reach(m, rng.normal(0, 2.0, 2)))


def _bump_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, tr, P, kn = m.blocks, plan.trials, m.params, m.knobs
    ang = np.deg2rad(tr["cond_dir"])
    dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    ic = rng.normal(0, kn.prep_noise, (plan.n_trials, 2))
    noise = rng.normal(0, 3.0, (plan.n_trials, 2))
    jitter = rng.normal(0, kn.onset_jitter_s, plan.n_trials)
    rot_a = slice(b["rot"].start, b["rot"].start + 2)
    rot_b = slice(b["rot"].start + 2, b["rot"].stop)
    for i in range(plan.n_trials):
        t0 = tr["move_onset_time"][i] - m.lag_s
        if tr["ctr_hold_bump"][i]:  # passive: a sensory response locked to the bump, no jitter
            inp.kick(t0, _reach(m, 20.0 * dirs[i] + noise[i], _add(rot_b, P["dir_kick"][2:] @ dirs[i] * 1.5 + ic[i])))
            _ci_pulse(m, inp, t0, 0.2, b["ci"], 1.6)
            inp.hold(t0, t0 + 0.125, b["f"], m.gain("f") * dirs[i])
            inp.kick(t0 + 0.125, _reach(m, noise[i] / 3))
        else:
            inp.kick(t0, _reach(m, 80.0 * dirs[i] + noise[i], _add(rot_a, P["dir_kick"][:2] @ dirs[i] + ic[i])))
            _ci_pulse(m, inp, t0 + jitter[i] - 0.03, 0.3, b["ci"])
            inp.kick(tr["stop_time"][i] + 0.05, _reach(m, rng.normal(0, 2.0, 2)))


def _rtt_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, ev, kn = m.blocks, plan.events, m.knobs
    nxt = np.append(ev["target_on"][1:], np.inf)
    noise = rng.normal(0, 3.0, (len(ev["reach"]), 2))
    jitter = rng.normal(0, kn.onset_jitter_s, len(ev["reach"]))
    for k in range(len(ev["reach"])):
        inp.hold(ev["target_on"][k], min(nxt[k], len(inp.u) * DT), b["q"], m.gain("q") * ev["target"][k] / 100)
        inp.kick(ev["reach"][k], _reach(m, ev["target"][k] + noise[k]))
        _ci_pulse(m, inp, ev["reach"][k] + jitter[k] - 0.03, 0.25, b["ci"])


def _rsg_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, tr, hid, P = m.blocks, plan.trials, plan.hidden, m.params
    ic = rng.normal(0, 0.7 * m.knobs.prep_noise, (plan.n_trials, 3))
    for i in range(plan.n_trials):
        code = np.array([1.0 if tr["is_eye"][i] else -1.0, 1.0 if tr["theta"][i] == 0 else -1.0]) * 0.8
        go, set_, ready = tr["go_time"][i], tr["set_time"][i], tr["ready_time"][i]
        end = go + 0.3 if np.isfinite(go) else tr["stop_time"][i]
        inp.hold(tr["target_on_time"][i], end, b["c"], m.gain("c") * code)
        short = bool(tr["is_short"][i])
        t_prior, g_prior = (0.64, 1.0) if short else (1.0, 0.8)
        _trajectory(inp, ready, set_, t_prior, b["m"], m.gain("m"),
                    lambda f, s=short, gp=g_prior: np.stack([f * gp, np.sin(np.pi * f) * gp
                                                             + (0.4 if s else -0.4)], axis=1))
        tp = hid["tp_s"][i] if np.isfinite(hid["tp_s"][i]) else 1.5 * tr["ts"][i] / 1000
        offset = P["rsg_code"].T @ np.append(code, [0.5 if short else -0.5, 0.0]) + ic[i]
        _trajectory(inp, set_, set_ + tp, tp, b["pp"], m.gain("pp"),
                    lambda f, o=offset: 1.2 * np.stack([np.cos(np.pi * f), np.sin(np.pi * f), 2 * f - 1],
                                                       axis=1) + o)
        flash = np.array([1.0, 0.0])
        _ci_pulse(m, inp, ready + 0.06, 0.08, b["ci"], flash)
        _ci_pulse(m, inp, set_ + 0.06, 0.08, b["ci"], flash)
        _ci_pulse(m, inp, go, 0.2, b["ci"], np.array([0.0, 1.2]))


def _trajectory(inp: Inputs, t0: float, t1: float, duration: float, sl: slice, gain: float,
                curve: Callable[[np.ndarray], np.ndarray]) -> None:
    """Drive a block along curve(phase) with phase = (t - t0) / duration over [t0, t1) (temporal scaling)."""
    if not (np.isfinite(t0) and np.isfinite(t1)):
        return
    k0, k1 = int(np.ceil(t0 / DT)), int(np.ceil(t1 / DT))
    k1 = min(k1, len(inp.u))
    phase = ((np.arange(k0, k1) + 0.5) * DT - t0) / duration
    inp.u[k0:k1, sl] += gain * curve(phase)


INPUT_BUILDERS = {"maze": _maze_inputs, "bump": _bump_inputs, "rtt": _rtt_inputs, "rsg": _rsg_inputs}


def simulate(m: LatentModel, plan: Plan, rng: np.random.Generator) -> np.ndarray:
    """Latent trajectory (n_bins_5ms, d + n_rnn) over the whole file: drivers/plants, then the RNN state."""
    n_bins = -(-plan.n_ms // BIN_MS)
    inp = Inputs(n_bins, m.dim)
    INPUT_BUILDERS[m.family](m, plan, inp, rng)
    drive = inp.u + rng.standard_normal((n_bins, m.dim)) * m.noise_sd
    alpha = DT / m.knobs.tau_rnn
    rnn_noise = rng.standard_normal((n_bins, m.n_rnn)) * (m.knobs.rnn_noise * np.sqrt(alpha))
    x = np.zeros(m.dim)
    h = np.zeros(m.n_rnn)
    out = np.empty((n_bins, m.dim + m.n_rnn))
    A, events, J = m.A, inp.events, m.J
    B = m.B / m.scale[m.drivers]  # drivers enter the RNN in their natural units
    drivers = m.drivers
    b = m.blocks
    z1 = b.get("z1")
    ci0 = b["ci"].start
    out_gain = m.params["motor_out"] * (m.knobs.neural_drive * m.scale[z1][:, None] * DT / REACH_TAU) \
        if z1 is not None else None
    for k in range(n_bins):
        x = A @ x + drive[k]
        if k in events:
            for fn in events[k]:
                fn(x)
        r = np.tanh(h)
        if out_gain is not None:  # motor cortex output moves the hand while the movement signal is on
            x[z1] += max(x[ci0], 0.0) * (out_gain @ r)
        h = h + alpha * (J @ r + B @ x[drivers] - h) + rnn_noise[k]
        out[k, :m.dim] = x
        out[k, m.dim:] = h
    return out


# ----------------------------------------------------------------------------------------------- spikes


def rates_hz(m: LatentModel, latents: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
    """Expected firing rates (Hz) given the shared latents: softplus readout of [tanh(h), direct latents],
    saturating smoothly towards MAX_RATE_HZ."""
    C = m.C if units is None else m.C[units]
    base = m.log_base if units is None else m.log_base[units]
    off = m.offset if units is None else m.offset[units]
    feats = np.concatenate([np.tanh(latents[:, m.dim:]), latents[:, m.direct] / m.scale[m.direct]], axis=1)
    drive = feats @ C.T + off
    rate = np.exp(base) * np.logaddexp(0.0, drive) / np.logaddexp(0.0, off)
    return MAX_RATE_HZ * -np.expm1(-rate / MAX_RATE_HZ)  # smooth saturation instead of a hard cap


def observed_ms(plan: Plan, n_ms: int) -> np.ndarray:
    """nlb_tools' 1 ms observation mask: samples [ceil(start), floor(end)) of every obs interval."""
    mask = np.zeros(n_ms, bool)
    for s, e in plan.obs_intervals():
        mask[int(np.ceil(round(s * 1000, 6))):int(np.floor(round(e * 1000, 6)))] = True
    return mask


def draw_spikes(m: LatentModel, latents: np.ndarray, plan: Plan, units: np.ndarray, quirks: bool,
                rng: np.random.Generator, tick: Callable[[int], None] | None = None
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """Spikes (times in s, per unit) and the expected count per 5 ms bin given the shared latents (float32).

    Counts are Poisson given rate x exp(private - sd^2/2), a fast AR(1) log-gain per neuron of mean 1, so
    the expected count is the shared rate itself while counts vary more than Poisson.
    """
    n_bins = len(latents)
    a = np.exp(-DT / m.knobs.private_tau)
    sd = m.knobs.private_sd
    private = np.zeros((1, len(units)))
    obs = np.zeros(n_bins * BIN_MS, bool)
    obs[:plan.n_ms] = observed_ms(plan, plan.n_ms)
    frac = obs.reshape(n_bins, BIN_MS).mean(axis=1)
    expected = np.empty((n_bins, len(units)), np.float32)
    times, owners = [], []
    for k0 in range(0, n_bins, CHUNK_BINS):
        k1 = min(k0 + CHUNK_BINS, n_bins)
        lam = rates_hz(m, latents[k0:k1], units) * DT
        expected[k0:k1] = lam * frac[k0:k1, None]
        shocks = rng.standard_normal((k1 - k0, len(units))) * (sd * np.sqrt(1 - a * a))
        eps, private = lfilter([1.0], [1.0, -a], shocks, axis=0, zi=a * private)
        private = eps[-1:]
        counts = rng.poisson(lam * np.exp(eps - sd * sd / 2))
        b, u = np.nonzero(counts)
        c = counts[b, u]
        b, u = np.repeat(b + k0, c), np.repeat(u, c)
        off = np.minimum(rng.random(len(b)) * BIN_MS, BIN_MS - 1e-4)
        if quirks:
            off[(rng.random(len(b)) < EDGE_SNAP_FRACTION) & (frac[b] == 1.0)] = 0.0
        keep = obs[b * BIN_MS + off.astype(np.int64)]
        times.append((b[keep] * BIN_MS + off[keep]) / 1000.0)
        owners.append(u[keep])
        if tick is not None:
            tick(k1 - k0)
    t, u = np.concatenate(times), np.concatenate(owners)
    order = np.lexsort((t, u))
    t, u = t[order], u[order]
    cuts = np.searchsorted(u, np.arange(1, len(units)))
    return np.split(t, cuts), expected


# ------------------------------------------------------------------------------------------- behaviour


def _spline_at_ms(latents: np.ndarray, n_ms: int, lag_ms: float, deriv: bool = False) -> np.ndarray:
    """Latents (5 ms bins, values at bin centres) interpolated at 1 ms sample times minus the lag."""
    knots = (np.arange(len(latents)) + 0.5) * BIN_MS
    q = np.clip(np.arange(n_ms) - lag_ms, knots[0], knots[-1])
    sp = CubicSpline(knots, latents, axis=0)
    return sp(q, 1) * 1000.0 if deriv else sp(q)


def _piecewise(n_ms: int, times: np.ndarray, values: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """A signal that jumps to values[i] at times[i] (s) on the 1 ms grid, `initial` before the first."""
    idx = np.searchsorted(np.ceil(np.round(times * 1000, 6)), np.arange(n_ms), side="right") - 1
    table = np.vstack([initial, values])
    return table[idx + 1]


def _eye(plan: Plan, n_ms: int, rng: np.random.Generator) -> np.ndarray:
    """Eye position: fixation at the centre, a saccade to the goal after target onset, back at trial end."""
    tr, goal = plan.trials, plan.hidden["goal"]
    sacc = tr["target_on_time"] + rng.uniform(0.15, 0.25, plan.n_trials)
    times = np.concatenate([sacc, tr["stop_time"]])
    vals = np.concatenate([goal + rng.normal(0, 3.0, goal.shape), np.zeros_like(goal)])
    order = np.argsort(times, kind="stable")
    eye = _piecewise(n_ms, times[order], vals[order], np.zeros(2))
    kern = np.ones(8) / 8
    eye = np.stack([np.convolve(eye[:, j], kern, mode="same") for j in range(2)], axis=1)
    return eye + rng.normal(0, 0.3, eye.shape)


def behaviour(m: LatentModel, spec: DatasetSpec, plan: Plan, latents: np.ndarray,
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every behaviour series of the train file on the 1 ms grid (NaN stretches applied)."""
    n_ms, lag = plan.n_ms, (spec.lag_ms or 0)
    if not spec.series:
        return {}
    b, P = m.blocks, m.params
    hand = latents[:, b["p"]] + latents[:, b["pe"]]  # planned path + motor noise the neurons never see
    pos = _spline_at_ms(hand, n_ms, lag)
    vel = _spline_at_ms(hand, n_ms, lag, deriv=True)
    out: dict[str, np.ndarray] = {}
    if m.family == "maze":
        hand = pos + np.array([-5.0, -35.0])
        out = {"hand_vel": vel, "hand_pos": hand, "cursor_pos": hand + np.array([0.4, -0.2]),
               "eye_pos": _eye(plan, n_ms, rng) + np.array([-5.0, -35.0])}
    elif m.family == "rtt":
        slow = _spline_at_ms(latents[:, b["slow"]], n_ms, lag)
        finger = np.concatenate([pos + np.array([10.0, 60.0]), -30.0 + 3.0 * slow], axis=1)
        ev = plan.events
        target = _piecewise(n_ms, ev["target_on"], ev["target"] + np.array([10.0, 60.0]), np.array([10.0, 60.0]))
        out = {"finger_vel": vel, "finger_pos": finger, "cursor_pos": finger[:, :2].copy(), "target_pos": target}
    elif m.family == "bump":
        f = _spline_at_ms(latents[:, b["f"]], n_ms, lag)
        acc = _spline_at_ms(latents[:, b["z1"]] / m.scale[b["z1"]], n_ms, lag)
        out = {"hand_vel": vel, "hand_pos": pos,
               "force": np.concatenate([f, acc], axis=1) @ P["force_mix"].T,
               "joint_ang": pos / 100.0 @ P["joint_mix"].T + P["joint_base"],
               "muscle_len": pos / 100.0 @ P["muscle_mix"].T + P["muscle_base"]}
    for t0, t1, which in plan.nan_spans:
        s0, s1 = int(round(t0 * 1000)), int(round(t1 * 1000))
        for name in out if which == "*" else [which]:
            out[name][s0:s1] = np.nan
    return {name: out[name] for name, _ in spec.series}

