"""Where GNOCCHI's co-smoothing loses co-bps: on a fit's internal validation trials, its guided samples beside
smoothing and the true rates, the autoencoder's own reconstructions and latent MAP fits without the diffusion prior.

    python benchmarks/bench_gnocchi_inference.py \
        benchmarks/_work/models/mc_maze_large_500_s0_sub-Jenkins/gnocchi_ae120 FITS/gnocchi_d400 ...

Each argument is a fitted GNOCCHI folder: a run of `nlb-eval run` or bench_models.py (config.yaml, run.json) or a
fit of fit_only.py (fit.json), on a synthetic stand-in whose files still have the checksums it recorded. Every row
is scored on the same trials, the fit's internal validation trials (train trials: no eval trial is used), by the
co-bps of the held-out neurons in the window, and as its share of the gap from smoothing to the true rates:

- smoothing: the dataset's default smoothing, fitted on the fit's own training trials;
- true rates: the stand-in's ground truth, the ceiling;
- guided / unguided: the fit's recorded scores (gnocchi_guidance.json) at its chosen strength and at strength 0;
- AE from the held-in window: the autoencoder's latents from the held-in neurons' window counts (held-out neurons
  and forward bins zeroed at its input), read out;
- MAP, prior N(0, v): standardised latents that maximise the held-in spikes' Poisson likelihood plus a Gaussian
  log-prior of variance v (guidance's proximal problem with the diffusion prior taken away), read out;
- the readout's reach: standardised latents fitted to the stand-in's true rates of every window neuron (Poisson
  deviance, a nearly flat N(0, 100) prior), read out: how near the autoencoder's readout can come to the truth
  at all, with no spike noise to fit (it uses the ground truth, so it is a bound, not an estimate);
- leaky: the autoencoder with every neuron and bin visible (it sees the spikes it is scored on).

Read with care: the guided row is the best of the fit's candidate strengths on these same trials (a little
optimistic), and these trials also chose both training stages' epochs; the autoencoder never saw whole neurons
and bins hidden in training (its dropout hides random entries), so its held-in-window row understates it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

MAP_VARIANCES = (0.3, 1.0, 3.0, 10.0)
GUIDED, SMOOTHING, TRUTH = ("guided at the fit's chosen strength", "smoothing (fitted on the fit's training trials)",
                             "true rates")
MAP_ITERS = 300  # L-BFGS iterations per MAP fit (bench_gnocchi_solver's optimum uses as many)
REACH_PRIOR = 100.0  # the reach's nearly flat prior: the true rates carry no spike noise to overfit


def fit_record(folder: Path) -> dict:
    """What a fitted GNOCCHI folder (fit_only's or a run's) recorded, checked before any work: dataset, data_dir,
    data_sha256 (still the files' checksums), seed, config, its 5 ms val-phase fit, the guidance choice's file and
    the validation trials' ids where recorded (`validation_trial_ids`, fit.json's name; a run's are under
    run.json's `internal_validation`). One line (NLBInputError) for anything else."""
    from baselines.gnocchi import GUIDANCE_FILE
    from nlb_suite.errors import NLBInputError
    from nlb_suite.internal_validation import FIELD as VALIDATION_FIELD
    from nlb_suite.runs import data_checksums, read_run

    if (folder / "fit.json").exists():
        try:
            record = json.loads((folder / "fit.json").read_text())
        except (OSError, ValueError) as exc:
            raise NLBInputError(f"{folder / 'fit.json'}: unreadable ({type(exc).__name__}): expected the file "
                                "fit_only.py wrote") from None
        record.setdefault("validation_trial_ids", None)
    elif (folder / "config.yaml").exists() and (folder / "run.json").exists():
        run = read_run(folder)  # the project's reader of run folders: its own one-line errors
        record = {**run.info, **run.config}
        record["validation_trial_ids"] = (record.get(VALIDATION_FIELD) or {}).get("trial_ids")
    else:
        raise NLBInputError(f"{folder}: neither fit.json (fit_only.py) nor config.yaml and run.json (a run): "
                            "expected a fitted GNOCCHI folder")
    if record.get("baseline") != "gnocchi" or not (folder / "gnocchi_best.pt").exists():
        raise NLBInputError(f"{folder}: baseline {record.get('baseline')!r} (expected a fitted gnocchi with "
                            "gnocchi_best.pt)")
    missing = [k for k in ("dataset", "data_dir", "data_sha256", "seed", "config") if not record.get(k) and
               record.get(k) != 0]
    if missing:
        raise NLBInputError(f"{folder}: its record lacks {', '.join(missing)} (expected a fit of fit_only.py or a "
                            "run that recorded them)")
    if (record.get("bin_ms", 5), record.get("phase", "val")) != (5, "val"):
        raise NLBInputError(f"{folder}: bin_ms {record.get('bin_ms')}, phase {record.get('phase')!r} (expected a "
                            "5 ms fit of phase val, the stand-ins' trials this script loads)")
    if not (folder / GUIDANCE_FILE).exists():
        raise NLBInputError(f"{folder / GUIDANCE_FILE} is missing: expected a fit that chose its guidance strength "
                            "among several on its validation trials")
    if data_checksums(Path(record["data_dir"])) != record["data_sha256"]:
        raise NLBInputError(f"{folder}: the files in {record['data_dir']} are not those it was fitted on "
                            "(data_sha256 differs)")
    return record


def load_fit(folder: Path, record: dict):
    """(the fitted GnocchiBaseline, its train trials, its internal validation indices into them), the split drawn
    as the fit drew it and checked against the ids and count the folder recorded."""
    from baselines.gnocchi import GUIDANCE_FILE, validation_ids
    from nlb_suite.baseline_api import RunContext, build_config, get_baseline
    from nlb_suite.datasets.tensors import load
    from nlb_suite.errors import NLBInputError
    from nlb_suite.runs import trial_sets

    dataset, data, seed = record["dataset"], Path(record["data_dir"]), int(record["seed"])
    train, _ = trial_sets(load(dataset, data, bin_ms=5, phase="val", progress=False))
    cls = get_baseline("gnocchi")
    config = build_config(cls, record["config"], source=f"{folder}'s recorded config")
    model = cls(config, RunContext.for_trials(dataset, 5, train, seed=seed, device="cpu", data_dir=data,
                                              synthetic=True))
    n_in = train.spikes_heldin.shape[2]
    model.load(folder / "gnocchi_best.pt", n_in, n_in + train.spikes_heldout.shape[2])
    valid_ids = validation_ids(config, seed, train.n_trials)
    scored = json.loads((folder / GUIDANCE_FILE).read_text())["n_validation_trials"]
    recorded = record["validation_trial_ids"]
    if scored != len(valid_ids) or (recorded is not None and list(train.trial_ids[valid_ids]) != list(recorded)):
        raise NLBInputError(f"{folder}: its validation trials are not those the split gives now (expected "
                            f"{len(valid_ids)} trials, ids as recorded)")
    return model, train, valid_ids


def reference_rows(model, train, train_ids: np.ndarray, valid) -> tuple[list[tuple[str, float]], np.ndarray]:
    """Smoothing (the dataset's default, fitted on the fit's training trials) and the true rates on `valid`, and
    the true rates of every neuron in the window (trials, bins, held-in then held-out neurons)."""
    from nlb_suite.baseline_api import get_baseline, resolve_config
    from nlb_suite.metrics import bits_per_spike

    rows, predicted = [], {}
    for name, label in (("smoothing", SMOOTHING), ("oracle", TRUTH)):
        cls = get_baseline(name)
        ref = cls(resolve_config(cls, model.context.dataset, 5, None, None, "cpu")[0], model.context)
        ref.fit(train.rows(train_ids))
        predicted[name] = ref.predict(valid.held_in_only())
        rows.append((label, bits_per_spike(predicted[name].heldout, valid.spikes_heldout)))
    return rows, np.concatenate([predicted["oracle"].heldin, predicted["oracle"].heldout], axis=2)


def window_readout(model, n_bins: int, t: int):
    """Every neuron's log-rates in the first `t` of `n_bins` bins as an AffineReadout of the standardised latents
    (the held-in one, `held_in_log_rates`, widened to the held-out neurons)."""
    from baselines.gnocchi_guidance import AffineReadout

    held_in = model.held_in_log_rates(n_bins, t, 1)
    readout = model.model.autoencoder.readout
    return AffineReadout(held_in.interp, readout.weight.detach().float(), readout.bias.detach().float(),
                         held_in.std, held_in.mean)


def held_out_co_bps(model, standard, valid) -> float:
    """Co-bps of the held-out neurons' window rates read out from standardised latents (trials of `valid`)."""
    import torch

    from nlb_suite.metrics import bits_per_spike

    t, n_in = valid.spikes_heldin.shape[1:]
    with torch.no_grad():
        rates = torch.exp(model.model.log_rates_of(standard, t + model.context.n_forward_bins).clamp(max=10.0))
    return bits_per_spike(rates.numpy()[:, :t, n_in:], valid.spikes_heldout)


def fitted_latents(model, readout, spikes: np.ndarray, variance: float):
    """Standardised latents (trials, steps, channels) that minimise the Poisson NLL of `spikes` (counts, or true
    rates; NaN unobserved) under `readout` plus |z|^2 / (2 variance), from z = 0: guidance's proximal problem
    with the diffusion prior taken away."""
    import torch

    from baselines.gnocchi_guidance import poisson_proximal

    y = torch.as_tensor(spikes, dtype=torch.float32)
    start = torch.zeros(len(y), readout.interp.shape[1], model.model.dims.latent_dim)  # interp: (bins, steps)
    return poisson_proximal(start, readout, torch.nan_to_num(y), (~torch.isnan(y)).float(), variance, MAP_ITERS)


def reach(model, truth: np.ndarray, valid) -> float:
    """The readout's reach: co-bps on `valid` of latents fitted to `truth`, every window neuron's true rates."""
    t = truth.shape[1]
    latents = fitted_latents(model, window_readout(model, t + model.context.n_forward_bins, t), truth, REACH_PRIOR)
    return held_out_co_bps(model, latents, valid)


def latent_rows(model, valid, truth: np.ndarray) -> list[tuple[str, float]]:
    """The autoencoder's reconstructions and the MAP fits of the latents on `valid`, to its held-in spikes and to
    `truth` (every window neuron's true rates; see the module docstring)."""
    import torch

    from baselines.gnocchi import prepare

    net, ae = model.model, model.model.autoencoder
    t, n_in = valid.spikes_heldin.shape[1:]
    data = prepare(valid, model.context.n_forward_bins, torch.device("cpu"))
    counts = data.counts * data.weight  # as the autoencoder saw them in training (NaN zeroed)
    seen = counts.clone()
    seen[:, :, n_in:] = 0.0  # held-out neurons and every forward bin hidden: what prediction knows
    seen[:, t:, :] = 0.0
    with torch.no_grad():
        from_held_in, from_all = (net.standardise(ae.encode(c)) for c in (seen, counts))
    held_in = model.held_in_log_rates(t + model.context.n_forward_bins, t, n_in)
    return [("AE from the held-in window", held_out_co_bps(model, from_held_in, valid)),
            *[(f"MAP from held-in spikes, prior N(0, {v:g})",
               held_out_co_bps(model, fitted_latents(model, held_in, valid.spikes_heldin, v), valid))
              for v in MAP_VARIANCES],
            ("the readout's reach: latents fitted to the true rates", reach(model, truth, valid)),
            ("leaky: AE with every neuron and bin visible", held_out_co_bps(model, from_all, valid))]


def validation_rows(folder: Path, record: dict) -> tuple[float, list[tuple[str, float]]]:
    """(the fit's chosen guidance strength, [(row, co-bps on the fit's internal validation trials)])."""
    from baselines.gnocchi import GUIDANCE_FILE

    model, train, valid_ids = load_fit(folder, record)
    guidance = json.loads((folder / GUIDANCE_FILE).read_text())
    scores = dict(zip(guidance["candidates"], guidance["validation_co_bps"]))
    train_ids = np.setdiff1d(np.arange(train.n_trials), valid_ids)
    valid = train.rows(valid_ids)
    references, truth = reference_rows(model, train, train_ids, valid)
    return float(guidance["chosen"]), [(GUIDED, scores[guidance["chosen"]]),
                                       ("unguided (strength 0)", scores.get(0.0, float("nan"))),
                                       *references, *latent_rows(model, valid, truth)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fits", nargs="+", type=Path, help="fitted GNOCCHI folders (runs or fit_only.py's)")
    args = ap.parse_args()

    import torch

    from nlb_suite.errors import NLBInputError
    from nlb_suite.table import print_table

    torch.set_num_threads(1)
    results = []
    try:
        records = [fit_record(folder) for folder in args.fits]  # every folder checked before any work
        for folder, record in zip(args.fits, records):
            results.append((str(folder), *validation_rows(folder, record)))
            print(f"  {folder}: done", file=sys.stderr, flush=True)
    except NLBInputError as exc:
        ap.exit(2, f"bench_gnocchi_inference.py: {exc}\n")
    table = []
    for name, _ in results[0][2]:
        line = [name]
        for _, _, rows in results:
            value, low, high = dict(rows)[name], dict(rows)[SMOOTHING], dict(rows)[TRUTH]
            line += [value, f"{100 * (value - low) / (high - low):.0f}%" if high != low else "-"]
        table.append(line)
    print("co-bps of the held-out neurons on each fit's internal validation trials, and the share of the gap from "
          "smoothing to the true rates")
    print_table(["row", *[h for i in range(len(results)) for h in (f"fit {i + 1}", "gap")]], table)
    for i, (label, chosen, _) in enumerate(results):
        print(f"fit {i + 1}: {label} (guidance strength chosen: {chosen:g})")


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_gnocchi_inference.py")
