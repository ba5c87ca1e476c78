"""Builders of eval targets in the exact nlb_tools layout and of matching submissions (test inputs)."""

from __future__ import annotations

import numpy as np

KINDS = ("mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg")
N_BINS_5MS = 48
N_FWD_5MS = 8


def smooth_bins(x: np.ndarray, sd_bins: float) -> np.ndarray:
    """Gaussian smoothing along the bin axis (axis 1), edge-normalised."""
    half = max(1, int(3 * sd_bins))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sd_bins) ** 2)
    pad = np.pad(x, [(0, 0), (half, half)] + [(0, 0)] * (x.ndim - 2))
    ones = np.pad(np.ones(x.shape[1]), half)
    num = sum(k[i] * pad[:, i : i + x.shape[1]] for i in range(len(k)))
    den = sum(k[i] * ones[i : i + x.shape[1]] for i in range(len(k)))
    return num / den.reshape((1, -1) + (1,) * (x.ndim - 2))


def make_target(kind: str, bin_ms: int = 5, seed: int = 0, n_train: int = 60, n_eval: int = 30,
                n_in: int = 12, n_out: int = 5, n_cond: int = 6) -> tuple[dict, dict]:
    """(target {key: {...}} in nlb_tools layout, truth: true rates and spikes) for one dataset kind."""
    rng = np.random.default_rng(seed)
    scale = bin_ms // 5
    n_bins, n_fwd = N_BINS_5MS // scale, N_FWD_5MS // scale
    n_all, n_trials = n_in + n_out, n_train + n_eval
    t = np.linspace(0, 1, n_bins + n_fwd)
    cond = rng.integers(0, n_cond, n_trials)
    cond[:n_cond] = np.arange(n_cond)
    freqs = rng.uniform(0.5, 3, (n_cond, 1, 3))
    phase = rng.uniform(0, 2 * np.pi, (n_cond, 1, 3))
    lat_c = np.sin(2 * np.pi * freqs * t[None, :, None] + phase)  # cond x time x 3
    latent = lat_c[cond] + 0.3 * smooth_bins(rng.normal(size=(n_trials, n_bins + n_fwd, 3)), 3 / scale)
    w = rng.normal(0, 0.6, (3, n_all))
    base = rng.uniform(-3.2, -1.5, n_all)
    speed = rng.uniform(0.7, 1.3, n_trials) if kind == "dmfc_rsg" else np.ones(n_trials)
    rates = np.exp(latent * speed[:, None, None] @ w + base) * scale
    spikes = rng.poisson(rates).astype(np.float64)
    tr, ev = slice(0, n_train), slice(n_train, None)
    main, fwd = slice(0, n_bins), slice(n_bins, None)
    eval_heldout = spikes[ev, main, n_in:].copy()
    eval_heldout[0, -3:] = np.nan  # bins outside obs_intervals
    key = kind + ("" if bin_ms == 5 else f"_{bin_ms}")
    group: dict = {"eval_spikes_heldout": eval_heldout}
    if kind == "dmfc_rsg":
        i = np.arange(n_trials)
        is_eye, theta, is_short = i % 2, 180.0 * ((i // 2) % 2), (i // 4) % 2  # >= 2 eval trials each
        ts = np.where(is_short, rng.choice([480, 560, 640], n_trials), rng.choice([800, 900, 1000], n_trials))
        tp = ts * speed + rng.normal(0, 40, n_trials)
        beh = np.stack([is_eye, theta, is_short, ts, tp], axis=1).astype(np.float64)
        beh[[3, n_train + 2]] = np.nan  # outliers
        set_go = np.minimum(n_bins - 4, np.round(ts / (1500 / n_bins)).astype(int))
        for i, n in enumerate(set_go[ev]):
            eval_heldout[i, : n_bins - n] = np.nan  # front padding before set
        eval_heldout[0, :-1] = spikes[n_train, : n_bins - 1, n_in:]
        eval_heldout[1, -3] = np.nan  # a gap inside set->go: speed steps across it, as in nlb_tools
        group.update(train_behavior=beh[tr], eval_behavior=beh[ev])
    else:
        vel = 2.0 * latent[:, :, :2] + rng.normal(0, 0.3, (n_trials, n_bins + n_fwd, 2))
        vel = vel[:, main].copy()
        vel[1, -2:] = np.nan  # lagged behaviour missing at the end of a trial
        vel[n_train + 1, -1:] = np.nan
        group.update(train_behavior=vel[tr], eval_behavior=vel[ev])
    group.update(eval_spikes_heldin_forward=spikes[ev, fwd, :n_in],
                 eval_spikes_heldout_forward=spikes[ev, fwd, n_in:])
    if kind == "area2_bump":
        bump = rng.random(n_trials) < 0.4
        mask = np.stack([~bump, bump]).T
        group.update(train_decode_mask=mask[tr], eval_decode_mask=mask[ev])
    if kind != "mc_rtt":
        psth = np.stack([rates[cond == c, main].mean(axis=0) for c in range(n_cond)])
        psth = psth + rng.normal(0, 0.002, psth.shape)
        eval_cond = cond[ev].copy()
        eval_cond[eval_cond == n_cond - 1] = 0  # the last condition has no eval trials
        if kind == "dmfc_rsg":
            for c in range(n_cond):
                psth[c, : 4 + c] = np.nan  # front padded (jitter shifts by at most 3 bins)
        else:
            psth[1, -3:] = np.nan  # a shorter condition, padded at the back
        group["psth"] = psth
        group["eval_cond_idx"] = _obj([np.flatnonzero(eval_cond == c) for c in range(n_cond)])
        group["train_cond_idx"] = _obj([np.flatnonzero(cond[tr] == c) for c in range(n_cond)])
        if kind == "dmfc_rsg":
            group["eval_jitter"] = rng.integers(0, 4, n_eval)
            group["train_jitter"] = rng.integers(-3, 4, n_train)
    truth = {"rates": rates, "spikes": spikes, "n_train": n_train, "n_in": n_in, "n_bins": n_bins}
    return {key: group}, truth


def _obj(arrays: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def make_submission(target: dict, truth: dict, how: str = "random", seed: int = 1) -> dict:
    """A submission for `target`: 'random' gamma rates (with exact zeros) or 'realistic' smoothed spikes."""
    rng = np.random.default_rng(seed)
    (key, _), = target.items()
    n_train, n_in, n_bins = truth["n_train"], truth["n_in"], truth["n_bins"]
    spikes, rates = truth["spikes"], truth["rates"]
    if how == "random":
        full = rng.gamma(1.5, 0.1, rates.shape)
        full[0, :3, n_in] = 0.0
    else:
        sm = smooth_bins(spikes[:, :n_bins], 2.0)
        full = rates * rng.uniform(0.8, 1.2, rates.shape)
        full[:, :n_bins, :n_in] = sm[..., :n_in]
        full[:, :n_bins, n_in:] = np.clip(0.7 * rates[:, :n_bins, n_in:] + 0.3 * sm[..., n_in:], 1e-6, None)
    tr, ev = slice(0, n_train), slice(n_train, None)
    main, fwd = slice(0, n_bins), slice(n_bins, None)
    return {key: {
        "train_rates_heldin": full[tr, main, :n_in], "train_rates_heldout": full[tr, main, n_in:],
        "eval_rates_heldin": full[ev, main, :n_in], "eval_rates_heldout": full[ev, main, n_in:],
        "eval_rates_heldin_forward": full[ev, fwd, :n_in], "eval_rates_heldout_forward": full[ev, fwd, n_in:],
    }}
