"""Shared helpers of the LFADS benchmarks: a cached synthetic dataset as train/eval TrialSets with ground
truth, a RunContext for it (optionally with the trainer's per-epoch hook), the command-line options of the
data, the network and its training and the LFADSConfig they make, and scoring against spikes and true rates.

Only the public surface of the LFADS baseline is used (LFADSConfig, LFADSBaseline(config, RunContext),
fit, predict, log_rates, curves, and RunContext.extras "progress" / "on_epoch"), so these scripts keep
working while its internals change.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
for _path in (HERE.parent, HERE):  # nlb_suite, and the sibling bench_args
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_args import seed_list  # noqa: E402

from nlb_suite.baseline_api import Rates, RunContext, TrialSet  # noqa: E402
from nlb_suite.metrics import LN2, bits_per_spike, nll_terms, pearson_r, r2_from_sums  # noqa: E402
from nlb_suite.metrics_bootstrap import boot_bps, bps_trial_sums, resample_counts  # noqa: E402
from nlb_suite.report.paired import PAIRED_RESAMPLES, PAIRED_SEED, Difference  # noqa: E402


def log(msg: str) -> None:
    """Progress to stderr (the tables go to stdout)."""
    print(msg, file=sys.stderr, flush=True)


@dataclass
class BenchData:
    """Train/eval trials of a synthetic dataset (phase val), their true rates and the eval targets."""

    dataset: str
    bin_ms: int
    folder: Path
    train: TrialSet
    evals: TrialSet
    truth_train: Rates  # expected counts per bin, same layout as predictions
    truth_eval: Rates
    target: dict[str, np.ndarray]  # eval_spikes_heldout, eval_spikes_heldin_forward, ...
    result_key: str
    n_forward_bins: int

    def context(self, seed: int, device: str = "cpu", on_epoch: Optional[Callable[[int, dict], None]] = None,
                **extras: Any) -> RunContext:
        """RunContext for this data; `on_epoch(epoch, row)` is the trainer's per-epoch hook (run after each
        epoch's validation, model in eval mode, no grad; `row` is that epoch's curve row)."""
        if on_epoch is not None:
            extras["on_epoch"] = on_epoch
        return RunContext.for_trials(self.dataset, self.bin_ms, self.train, seed=seed, device=device,
                                     data_dir=self.folder, synthetic=True, extras=dict(extras))

    def describe(self) -> str:
        n, t, q = self.train.spikes_heldin.shape
        return (f"synthetic {self.dataset} ({self.folder}), phase val, {self.bin_ms} ms: train {n} trials x "
                f"{t} bins (+{self.n_forward_bins} forward), {q} held-in + {self.train.spikes_heldout.shape[2]} "
                f"held-out units, eval {self.evals.n_trials} trials")


def load_synthetic(dataset: str, trials: int, data_seed: int = 0, bin_ms: int = 5,
                   work: Path = WORK) -> BenchData:
    """Generate (once, cached under `work`) a synthetic dataset with `trials` train+val trials; phase val."""
    from nlb_suite.datasets.session import load_session
    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.datasets.synthetic_cache import cached_synthetic
    from nlb_suite.datasets.tensors import load
    from nlb_suite.datasets.truth import truth_rates
    from nlb_suite.runs import trial_sets

    folder = cached_synthetic(Path(work) / "synthetic", dataset, seed=data_seed, trials=trials)  # keyed by digest
    tensors = load(dataset, folder, bin_ms, "val", include_psth=False)
    train, evals = trial_sets(tensors)
    truth = truth_rates(load_session(folder), bin_ms)

    def true_rates(ts: TrialSet) -> Rates:
        return Rates(heldin=truth["spikes"][ts.bins], heldout=truth["heldout_spikes"][ts.bins],
                     heldin_forward=truth["spikes"][ts.forward_bins],
                     heldout_forward=truth["heldout_spikes"][ts.forward_bins])

    return BenchData(dataset, bin_ms, folder, train, evals, true_rates(train), true_rates(evals), tensors.target,
                     tensors.result_key, get_dataset(dataset).fp_bins(bin_ms))


# ----- network / training options ----------------------------------------------------------------

def add_data_args(ap: argparse.ArgumentParser, *, seed_help: str) -> None:
    """The synthetic-data options (--dataset, --trials, --data-seeds, as load_synthetic takes them) and --seed."""
    ap.add_argument("--dataset", default="mc_maze_small")
    ap.add_argument("--trials", type=int, default=100, help="synthetic train+val trials (phase val: 3/4 train)")
    ap.add_argument("--data-seeds", type=seed_list, default="0", help="comma-separated distinct seeds of the "
                    "synthetic datasets (each measured on its own; several add a mean over seeds to the paired "
                    "differences)")
    ap.add_argument("--seed", type=int, default=0, help=seed_help)


def seed_columns(seeds: list[int]) -> list[str]:
    """Column headers of a per-seed table of paired differences: one per data seed, then the mean if several."""
    return [f"data seed {s}" for s in seeds] + (["mean"] if len(seeds) > 1 else [])


def describe_lfads(args: argparse.Namespace, extra: str) -> str:
    """One line of the LFADS network and training options (`extra`: the script's own settings)."""
    return (f"LFADS ic_enc {args.ic_enc}, ci_enc {args.ci_enc}, con {args.con}, co {args.co}, ic {args.ic}, "
            f"gen {args.gen}, fac {args.fac}; {extra}, {args.epochs} epochs, batch {args.batch_size}, lr {args.lr} "
            f"cosine, dropout {args.dropout}, seed {args.seed}, threads {args.threads}")


def add_lfads_args(ap: argparse.ArgumentParser, *, ic_enc: int, ci_enc: int, con: int, ic: int, gen: int,
                   fac: int, dropout: float, co: int = 4, cd_rate: Optional[float] = None, lr: float = 0.01,
                   batch_size: int = 16) -> None:
    """The LFADS network and training options (--ic-enc ... --threads) with the script's own defaults;
    `cd_rate` not None also adds a single --cd-rate (after --dropout) with that default."""
    for name, value in (("--ic-enc", ic_enc), ("--ci-enc", ci_enc), ("--con", con), ("--co", co), ("--ic", ic),
                        ("--gen", gen), ("--fac", fac)):
        ap.add_argument(name, type=int, default=value)
    ap.add_argument("--dropout", type=float, default=dropout)
    if cd_rate is not None:
        ap.add_argument("--cd-rate", type=float, default=cd_rate)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--batch-size", type=int, default=batch_size)
    ap.add_argument("--kl-ramp", type=int, default=None, help="KL/L2 ramp epochs (default epochs/4)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def lfads_config(args: argparse.Namespace, **fields: Any):
    """LFADSConfig from the add_lfads_args options and args.epochs: a fixed budget of args.epochs (patience
    beyond it), cosine LR down to 0.0025 of lr with no warm-up, KL/L2 ramps over --kl-ramp epochs (default
    epochs/4), posterior means (n_samples 0); `fields` (cd_rate, sv_rate, patience, ...) set or override the
    rest."""
    from baselines.lfads import LFADSConfig

    ramp = args.kl_ramp if args.kl_ramp is not None else max(args.epochs // 4, 1)
    cfg = dict(
        ic_enc_dim=args.ic_enc, ci_enc_dim=args.ci_enc, con_dim=args.con, co_dim=args.co, ic_dim=args.ic,
        gen_dim=args.gen, fac_dim=args.fac, dropout=args.dropout, n_samples=0, cpu_threads=args.threads,
        lr=args.lr, batch_size=args.batch_size, max_epochs=args.epochs, patience=args.epochs + 1,
        lr_schedule="cosine", warmup_epochs=0, lr_min_ratio=0.0025, kl_increase_epoch=ramp,
        l2_increase_epoch=ramp,
    )
    cfg.update(fields)
    return LFADSConfig(**cfg)


# ----- scoring ---------------------------------------------------------------------------------------

def masked_bps(rates: np.ndarray, spikes: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Bits per spike over the entries where `mask` is True (all when None); null = per-neuron mean there."""
    spikes = np.asarray(spikes, dtype=np.float64)
    if mask is not None:
        spikes = np.where(mask, spikes, np.nan)
    model, null, s, _ = nll_terms(rates, spikes, "masked_bps")
    total = float(np.sum(s))
    return float((np.sum(null) - np.sum(model)) / total / LN2) if total > 0 else float("nan")


def rate_r2(pred: np.ndarray, true: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Mean over neurons (last axis) of the R^2 of predicted vs true rates over the entries in `mask`."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, pred.shape[-1])
    true = np.asarray(true, dtype=np.float64).reshape(-1, true.shape[-1])
    m = np.ones_like(true, dtype=bool) if mask is None else np.asarray(mask).reshape(true.shape)
    count = m.sum(axis=0)
    mean = np.where(count > 0, (true * m).sum(axis=0) / np.maximum(count, 1), 0.0)
    ss_res = (((true - pred) ** 2) * m).sum(axis=0)
    ss_tot = (((true - mean) ** 2) * m).sum(axis=0)
    keep = count > 1
    return float(np.mean(r2_from_sums(ss_res[keep], ss_tot[keep]))) if keep.any() else float("nan")


def rate_corr(pred: np.ndarray, true: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Pearson r of predicted vs true rates pooled over all entries in `mask`."""
    pred, true = np.asarray(pred), np.asarray(true)
    if mask is not None:
        pred, true = pred[mask], true[mask]
    return pearson_r(pred.ravel(), true.ravel())


def score_eval(data: BenchData, rates: Rates) -> dict[str, float]:
    """co-bps / fp-bps on the eval spikes and R^2 / r of all eval rates (held-in + held-out) vs truth."""
    tgt = data.target
    out = {"co_bps": bits_per_spike(rates.heldout, tgt["eval_spikes_heldout"])}
    if rates.heldin_forward is not None and "eval_spikes_heldout_forward" in tgt:
        fp_rates = np.concatenate([rates.heldin_forward, rates.heldout_forward], axis=2)
        fp_spikes = np.concatenate([tgt["eval_spikes_heldin_forward"], tgt["eval_spikes_heldout_forward"]], axis=2)
        out["fp_bps"] = bits_per_spike(fp_rates, fp_spikes)
    pred = np.concatenate([rates.heldin, rates.heldout], axis=2)
    true = np.concatenate([data.truth_eval.heldin, data.truth_eval.heldout], axis=2)
    out["rate_r2"] = rate_r2(pred, true)
    out["rate_r"] = rate_corr(pred, true)
    out["heldout_r2"] = rate_r2(rates.heldout, data.truth_eval.heldout)
    return out


def oracle_scores(data: BenchData) -> dict[str, float]:
    """The same scores for the true rates (the ceiling)."""
    floor = 1e-9
    t = data.truth_eval
    return score_eval(data, Rates(*(np.maximum(a, floor) for a in (t.heldin, t.heldout, t.heldin_forward,
                                                                      t.heldout_forward))))


def rates_from_log(log_rates: np.ndarray, trials: TrialSet) -> Rates:
    """Split exp(log-rates) (n, T + F, n_in + n_out) into a Rates like LFADSBaseline.predict does."""
    rates = np.exp(log_rates.astype(np.float64))
    t, n_in = trials.spikes_heldin.shape[1], trials.spikes_heldin.shape[2]
    return Rates(heldin=rates[:, :t, :n_in], heldout=rates[:, :t, n_in:], heldin_forward=rates[:, t:, :n_in],
                 heldout_forward=rates[:, t:, n_in:])


# ----- paired intervals over eval trials -----------------------------------------------------------

def bps_sums(rates: np.ndarray, spikes: np.ndarray, mask: Optional[np.ndarray] = None) -> tuple[np.ndarray, ...]:
    """Per trial x neuron sums from which `masked_bps` is recomputed on any resample of trials (`boot_bps`)."""
    spikes = np.asarray(spikes, dtype=np.float64)
    if mask is not None:
        spikes = np.where(mask, spikes, np.nan)
    model, _, s, valid = nll_terms(rates, spikes, "bps_sums")
    return bps_trial_sums(model, s, valid)


def r2_sums(pred: np.ndarray, true: np.ndarray, mask: Optional[np.ndarray] = None) -> tuple[np.ndarray, ...]:
    """Per trial x neuron entry counts and sums (true, true^2, squared error): `rate_r2` on any resample (`boot_r2`)."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    m = np.ones(true.shape) if mask is None else np.asarray(mask, dtype=np.float64)
    axes = tuple(range(1, true.ndim - 1))
    return tuple(x.sum(axis=axes) for x in (m, true * m, true * true * m, (true - pred) ** 2 * m))


def boot_r2(sums: tuple[np.ndarray, ...], counts: np.ndarray) -> np.ndarray:
    """`rate_r2` of each resample (`counts`: n_boot x trials): mean over neurons with more than one entry."""
    n, s1, s2, res = (counts @ a for a in sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_tot = s2 - s1 * s1 / n
        ss_tot = np.where(ss_tot > 1e-12 * s2, ss_tot, 0.0)  # a constant truth: 0, not rounding error
        r2 = np.where(n > 1, r2_from_sums(res, ss_tot), np.nan)
    keep = (n > 1).sum(axis=1)
    return np.where(keep > 0, np.nansum(r2, axis=1) / np.maximum(keep, 1), np.nan)


BOOT = {"bps": boot_bps, "r2": boot_r2}  # how each kind of per-trial sums is scored on a resample


def paired_differences(pairs: list[tuple[tuple, tuple]], kind: str) -> list[Difference]:
    """a - b per data set from (a's, b's) sums of `kind` ("bps" or "r2") on its eval trials, then their mean if several.

    Both models of a set share its resamples; the mean is `Difference.mean_over_sets` (each set's trials
    resampled on their own).
    """
    boot = BOOT[kind]
    parts = []
    for sums_a, sums_b in pairs:
        n = sums_a[0].shape[0]
        counts, whole = resample_counts(n, PAIRED_RESAMPLES, PAIRED_SEED), np.ones((1, n))
        value = float(boot(sums_a, whole)[0] - boot(sums_b, whole)[0])
        parts.append((value, boot(sums_a, counts), boot(sums_b, counts)))
    diffs = [Difference.paired(*p) for p in parts]
    return diffs + [Difference.mean_over_sets(parts)] if len(parts) > 1 else diffs


# ----- output ----------------------------------------------------------------------------------------

def write_curves(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as CSV (columns: union in first-seen order)."""
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in rows:
            w.writerow([_fmt(row.get(c, "")) for c in cols])


def _fmt(v: Any) -> str:
    return f"{v:.8g}" if isinstance(v, float) else str(v)

