"""Latent dynamics, Poisson spikes and behaviour of the synthetic sessions.

Latents evolve on a 5 ms grid as a linear dynamical system x[k+1] = A x[k] + u[k] + noise, with
event kicks (movement generation, rotational responses) that may depend on the current state. Firing
rates are exp(C x / scale + bias) (Hz), constant inside each 5 ms bin; behaviour is a lagged linear
readout of the latents, interpolated smoothly to 1 ms (position = integral of velocity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.linalg import expm

from .specs import DatasetSpec
from .synthetic_tasks import Plan

DT = 0.005  # latent / ground-truth bin (s)
BIN_MS = 5
REACH_TAU = 0.07  # reach generator time constant (s): bell-shaped speed peaking ~70 ms after the kick
MAX_RATE_HZ = 150.0
EDGE_SNAP_FRACTION = 0.01  # quirk: share of spikes moved onto the lower edge of their 5 ms bin
CHUNK_BINS = 4096

Event = Callable[[np.ndarray], None]

LAYOUTS = {  # block name -> size; neural blocks drive the neurons, the others are kinematic only
    "maze": (("prep", 4), ("rot", 4), ("ci", 1), ("z1", 2), ("z2", 2), ("p", 2), ("slow", 1)),
    "rtt": (("q", 2), ("rot", 4), ("ci", 1), ("z1", 2), ("z2", 2), ("p", 2), ("slow", 1)),
    "bump": (("f", 2), ("rot", 4), ("ci", 1), ("z1", 2), ("z2", 2), ("p", 2), ("slow", 1)),
    "rsg": (("c", 2), ("m", 2), ("pp", 3), ("ci", 2), ("slow", 1)),
}
TRACK_TAU = {"prep": 0.08, "q": 0.08, "f": 0.02, "c": 0.1, "m": 0.05, "pp": 0.05, "ci": 0.15}
READOUT_GAIN = {"maze": 0.42, "rtt": 0.3, "bump": 0.42, "rsg": 0.42}  # log-rate weight scale per latent
NON_NEURAL: tuple[str, ...] = ()  # hand position feeds the neurons too (posture tuning)


@dataclass
class LatentModel:
    """A dataset's fixed generative model: dynamics, neural readout and kick parameters."""

    family: str
    blocks: dict[str, slice]
    A: np.ndarray
    noise_sd: np.ndarray
    scale: np.ndarray
    neural: np.ndarray
    C: np.ndarray  # (n_units, n_neural)
    log_base: np.ndarray  # (n_units,) log Hz
    heldout: np.ndarray  # (n_units,) bool, in unit-table order
    lag_s: float
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.A.shape[0]

    def gain(self, name: str) -> np.ndarray:
        """Per-step input gain of a first-order tracking block (exact for a piecewise-constant target)."""
        return 1.0 - np.exp(-DT / TRACK_TAU[name])


def _blocks(family: str) -> dict[str, slice]:
    out, i = {}, 0
    for name, size in LAYOUTS[family]:
        out[name] = slice(i, i + size)
        i += size
    return out


def _continuous_a(family: str, b: dict[str, slice]) -> np.ndarray:
    """Continuous-time dynamics matrix: tracking blocks, rotations, reach generator, slow drift."""
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
    if "z1" in b:
        z1, z2, p = (np.arange(b[k].start, b[k].stop) for k in ("z1", "z2", "p"))
        a[z1, z1] = -1 / REACH_TAU
        a[z2, z2] = -1 / REACH_TAU
        a[z2, z1] = 1 / REACH_TAU
        a[p, z2] = 1.0
    if "q" in b:
        q, p = np.arange(b["q"].start, b["q"].stop), np.arange(b["p"].start, b["p"].stop)
        a[q, p] = -1 / (100.0 * TRACK_TAU["q"])  # q tracks (target - hand) / 100 mm
    a[b["slow"], b["slow"]] = -1 / 2.0
    return a


def build_model(family: str, spec: DatasetSpec, rng: np.random.Generator) -> LatentModel:
    """Draw a dataset's model: dynamics, scales, noise, tuning of every unit, held-out units."""
    b = _blocks(family)
    d = max(s.stop for s in b.values())
    A = expm(_continuous_a(family, b) * DT)
    scale = np.ones(d)
    noise = np.full(d, 0.02)
    if "z1" in b:
        scale[b["z1"]] = 100.0 / REACH_TAU
        scale[b["z2"]] = 100.0 / REACH_TAU / np.e
        scale[b["p"]] = 100.0
        noise[b["z1"]] = 0.004 * scale[b["z1"]]
        noise[b["z2"]] = noise[b["p"]] = 0.0
    noise[b["slow"]] = 0.3 * np.sqrt(1 - np.exp(-2 * DT / 2.0))
    neural = np.ones(d, bool)
    for name in NON_NEURAL:
        if name in b:
            neural[b[name]] = False
    n_units = spec.n_heldin + spec.n_heldout
    n_neural = int(neural.sum())
    C = rng.normal(0, READOUT_GAIN[family], (n_units, n_neural)) * rng.uniform(0.6, 1.4, (n_units, 1))
    C[:, np.flatnonzero(neural).tolist().index(b["slow"].start)] = np.abs(rng.normal(0.3, 0.1, n_units))
    log_base = np.log(np.clip(rng.lognormal(np.log(7.0), 0.6, n_units), 1.0, 40.0))
    heldout = np.zeros(n_units, bool)
    heldout[rng.permutation(n_units)[: spec.n_heldout]] = True
    params = {
        "prep_mix": np.linalg.qr(rng.normal(size=(4, 4)))[0] * 1.2,
        "rot_kick": rng.normal(0, 0.7, (4, 4)),
        "dir_kick": rng.normal(0, 0.8, (4, 2)),
        "force_mix": rng.normal(0, 1.0, (6, 4)),
        "joint_mix": rng.normal(0, 15.0, (7, 2)),
        "muscle_mix": rng.normal(0, 1.5, (39, 2)),
        "joint_base": rng.uniform(-40, 90, 7),
        "muscle_base": rng.uniform(3, 15, 39),
        "rsg_code": rng.normal(0, 0.3, (4, 3)),
    }
    return LatentModel(family, b, A, noise, scale, neural, C, log_base, heldout,
                       (spec.lag_ms or 0) / 1000, params)


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


def _maze_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, tr, hid, P = m.blocks, plan.trials, plan.hidden, m.params
    feats = np.concatenate([hid["goal"], hid["via"]], axis=1) / 100.0
    ic = rng.normal(0, 0.35, (plan.n_trials, 4))  # trial-specific preparatory (initial-condition) noise
    end_noise = rng.normal(0, 4.0, (plan.n_trials, 2, 2))
    g = m.gain("prep")
    for i in range(plan.n_trials):
        t0 = tr["move_onset_time"][i] - m.lag_s
        prep_end = t0 + 0.05 if np.isfinite(t0) else tr["stop_time"][i]
        inp.hold(tr["target_on_time"][i] + 0.08, prep_end, b["prep"], g * (P["prep_mix"] @ feats[i] + ic[i]))
        straight = tr["trial_version"][i] == 0
        first = hid["goal"][i] if straight else hid["via"][i]

        def rot(x: np.ndarray, i: int = i) -> None:
            x[b["rot"]] += P["rot_kick"] @ x[b["prep"]]
            x[b["ci"]] += 1.0
        inp.kick(t0, _reach(m, first + end_noise[i, 0], rot))
        if not straight:
            inp.kick(t0 + 0.12, _reach(m, hid["goal"][i] + end_noise[i, 1]))
        inp.kick(tr["stop_time"][i] + 0.05, _reach(m, rng.normal(0, 2.0, 2)))


def _bump_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, tr, P = m.blocks, plan.trials, m.params
    ang = np.deg2rad(tr["cond_dir"])
    dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    ic = rng.normal(0, 0.3, (plan.n_trials, 2))
    noise = rng.normal(0, 3.0, (plan.n_trials, 2))
    rot_a = slice(b["rot"].start, b["rot"].start + 2)
    for i in range(plan.n_trials):
        t0 = tr["move_onset_time"][i] - m.lag_s
        if tr["ctr_hold_bump"][i]:
            resp = np.concatenate([[0.0, 0.0], P["dir_kick"][2:] @ dirs[i] * 1.5 + ic[i]])
            inp.kick(t0, _reach(m, 20.0 * dirs[i] + noise[i], _add(slice(b["rot"].start, b["ci"].stop),
                                                                    np.append(resp, 1.6))))
            inp.hold(t0, t0 + 0.125, b["f"], m.gain("f") * dirs[i])
            inp.kick(t0 + 0.125, _reach(m, noise[i] / 3))
        else:
            inp.kick(t0, _reach(m, 80.0 * dirs[i] + noise[i], _add(rot_a, P["dir_kick"][:2] @ dirs[i] + ic[i])))
            inp.kick(t0, _add(b["ci"], np.ones(1)))
            inp.kick(tr["stop_time"][i] + 0.05, _reach(m, rng.normal(0, 2.0, 2)))


def _rtt_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, ev, P = m.blocks, plan.events, m.params
    nxt = np.append(ev["target_on"][1:], np.inf)
    noise = rng.normal(0, 3.0, (len(ev["reach"]), 2))
    for k in range(len(ev["reach"])):
        inp.hold(ev["target_on"][k], min(nxt[k], len(inp.u) * DT), b["q"], m.gain("q") * ev["target"][k] / 100)

        def resp(x: np.ndarray) -> None:
            x[b["rot"]] += P["rot_kick"][:, :2] @ x[b["q"]] * 1.5
            x[b["ci"]] += 1.0
        inp.kick(ev["reach"][k], _reach(m, ev["target"][k] + noise[k], resp))


def _rsg_inputs(m: LatentModel, plan: Plan, inp: Inputs, rng: np.random.Generator) -> None:
    b, tr, hid, P = m.blocks, plan.trials, plan.hidden, m.params
    ic = rng.normal(0, 0.25, (plan.n_trials, 3))
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
        inp.kick(ready + 0.06, _add(b["ci"], flash))
        inp.kick(set_ + 0.06, _add(b["ci"], flash))
        inp.kick(go, _add(b["ci"], np.array([0.0, 1.2])))


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
    """Latent trajectory (n_bins_5ms, d) over the whole file, with process noise and event kicks."""
    n_bins = -(-plan.n_ms // BIN_MS)
    inp = Inputs(n_bins, m.dim)
    INPUT_BUILDERS[m.family](m, plan, inp, rng)
    drive = inp.u + rng.standard_normal((n_bins, m.dim)) * m.noise_sd
    x = np.zeros(m.dim)
    out = np.empty((n_bins, m.dim))
    A, events = m.A, inp.events
    for k in range(n_bins):
        x = A @ x + drive[k]
        if k in events:
            for fn in events[k]:
                fn(x)
        out[k] = x
    return out


# ----------------------------------------------------------------------------------------------- spikes


def rates_hz(m: LatentModel, latents: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
    """Firing rates (Hz) of the given units (default all) from latents: exp(readout + bias)."""
    C = m.C if units is None else m.C[units]
    base = m.log_base if units is None else m.log_base[units]
    z = latents[:, m.neural] / m.scale[m.neural]
    return np.minimum(np.exp(z @ C.T + base), MAX_RATE_HZ)


def observed_ms(plan: Plan, n_ms: int) -> np.ndarray:
    """nlb_tools' 1 ms observation mask: samples [ceil(start), floor(end)) of every obs interval."""
    mask = np.zeros(n_ms, bool)
    for s, e in plan.obs_intervals():
        mask[int(np.ceil(round(s * 1000, 6))):int(np.floor(round(e * 1000, 6)))] = True
    return mask


def draw_spikes(m: LatentModel, latents: np.ndarray, plan: Plan, units: np.ndarray, quirks: bool,
                rng: np.random.Generator, tick: Callable[[int], None] | None = None
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """Poisson spikes (times in s, per unit) and the expected count per 5 ms bin (float32)."""
    n_bins = len(latents)
    obs = np.zeros(n_bins * BIN_MS, bool)
    obs[:plan.n_ms] = observed_ms(plan, plan.n_ms)
    frac = obs.reshape(n_bins, BIN_MS).mean(axis=1)
    expected = np.empty((n_bins, len(units)), np.float32)
    times, owners = [], []
    for k0 in range(0, n_bins, CHUNK_BINS):
        k1 = min(k0 + CHUNK_BINS, n_bins)
        lam = rates_hz(m, latents[k0:k1], units) * DT
        expected[k0:k1] = lam * frac[k0:k1, None]
        counts = rng.poisson(lam)
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
    pos = _spline_at_ms(latents[:, b["p"]], n_ms, lag)
    vel = _spline_at_ms(latents[:, b["p"]], n_ms, lag, deriv=True)
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

