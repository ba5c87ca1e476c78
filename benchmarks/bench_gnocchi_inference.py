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
- leaky rows, which see the spikes they are scored on (what the readout can express, not estimates): the
  autoencoder with every neuron and bin visible, and MAP fitted to every window neuron's spikes.
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


def fit_record(folder: Path) -> dict:
    """dataset, data_dir, data_sha256, seed and config of a fitted GNOCCHI folder (fit_only's or a run's)."""
    import yaml

    from nlb_suite.errors import NLBInputError

    if (folder / "fit.json").exists():
        record = json.loads((folder / "fit.json").read_text())
    elif (folder / "config.yaml").exists() and (folder / "run.json").exists():
        record = {**json.loads((folder / "run.json").read_text()), **yaml.safe_load((folder / "config.yaml").read_text())}
    else:
        raise NLBInputError(f"{folder}: neither fit.json (fit_only.py) nor config.yaml and run.json (a run): "
                            "expected a fitted GNOCCHI folder")
    if record.get("baseline") != "gnocchi" or not (folder / "gnocchi_best.pt").exists():
        raise NLBInputError(f"{folder}: baseline {record.get('baseline')!r} (expected a fitted gnocchi with "
                            "gnocchi_best.pt)")
    return record


def validation_rows(folder: Path) -> tuple[str, float, list[tuple[str, float]]]:
    """(a label, the fit's chosen guidance strength, [(row, co-bps on the fit's internal validation trials)]) for
    one fitted folder."""
    import torch
    from bench_models import data_checksums

    from baselines.gnocchi_guidance import AffineReadout, poisson_proximal
    from baselines.torch_core import internal_split
    from nlb_suite.baseline_api import RunContext, build_config, get_baseline, resolve_config
    from nlb_suite.datasets.tensors import load
    from nlb_suite.errors import NLBInputError
    from nlb_suite.metrics import bits_per_spike
    from nlb_suite.runs import trial_sets

    record = fit_record(folder)
    dataset, data, seed = record["dataset"], Path(record["data_dir"]), int(record["seed"])
    if data_checksums(data) != record["data_sha256"]:
        raise NLBInputError(f"{folder}: the files in {data} are not those it was fitted on (data_sha256 differs)")
    train, _ = trial_sets(load(dataset, data, bin_ms=5, phase="val", progress=False))
    cls = get_baseline("gnocchi")
    config = build_config(cls, record["config"], source=f"{folder}'s recorded config")
    ctx = RunContext.for_trials(dataset, 5, train, seed=seed, device="cpu", data_dir=data, synthetic=True)
    model = cls(config, ctx)
    n, t, n_in = train.spikes_heldin.shape
    n_all = n_in + train.spikes_heldout.shape[2]
    model.load(folder / "gnocchi_best.pt", n_in, n_all)
    train_ids, valid_ids = internal_split(n, config.valid_frac, np.random.default_rng(seed))  # as the fit drew them
    guidance = json.loads((folder / "gnocchi_guidance.json").read_text())
    if guidance["n_validation_trials"] != len(valid_ids):
        raise NLBInputError(f"{folder}: gnocchi_guidance.json scored {guidance['n_validation_trials']} validation "
                            f"trials, the split gives {len(valid_ids)}")
    recorded = dict(zip(guidance["candidates"], guidance["validation_co_bps"]))
    valid = train.rows(valid_ids)
    y_out = valid.spikes_heldout

    def score(rates: np.ndarray) -> float:
        return bits_per_spike(rates[:, :t, n_in:], y_out)

    rows = [(GUIDED, recorded[guidance["chosen"]]),
            ("unguided (strength 0)", recorded.get(0.0, float("nan")))]
    for name, label in (("smoothing", SMOOTHING), ("oracle", TRUTH)):
        ref_cls = get_baseline(name)
        ref = ref_cls(resolve_config(ref_cls, dataset, 5, None, None, "cpu")[0], ctx)
        ref.fit(train.rows(train_ids))
        heldout = ref.predict(valid.held_in_only()).heldout
        rows.append((label, bits_per_spike(heldout, y_out)))

    net = model.model
    ae = net.autoencoder
    n_bins = t + ctx.n_forward_bins
    with torch.no_grad():
        def read(standard: torch.Tensor) -> np.ndarray:
            return torch.exp(net.log_rates_of(standard, n_bins).clamp(max=10.0)).numpy()
        window = np.concatenate([valid.spikes_heldin, y_out], axis=2)
        full = np.concatenate([window, np.concatenate([valid.spikes_heldin_forward, valid.spikes_heldout_forward], 2)], 1)
        counts = torch.as_tensor(np.nan_to_num(full), dtype=torch.float32)
        seen = counts.clone()
        seen[:, :, n_in:] = 0.0
        seen[:, t:, :] = 0.0
        rows.append(("AE from the held-in window", score(read(net.standardise(ae.encode(seen))))))
        leaky_ae = score(read(net.standardise(ae.encode(counts))))
    held_in = model.held_in_log_rates(n_bins, t, n_in)
    every = AffineReadout(held_in.interp, ae.readout.weight.detach().float(), ae.readout.bias.detach().float(),
                          held_in.std, held_in.mean)
    start = torch.zeros(len(valid_ids), ae.latent_length(n_bins), net.dims.latent_dim)

    def map_fit(readout: AffineReadout, spikes: np.ndarray, variance: float) -> np.ndarray:
        y = torch.as_tensor(spikes, dtype=torch.float32)
        z = poisson_proximal(start, readout, torch.nan_to_num(y), (~torch.isnan(y)).float(), variance, MAP_ITERS)
        with torch.no_grad():
            return read(z)
    for v in MAP_VARIANCES:
        rows.append((f"MAP from held-in spikes, prior N(0, {v:g})", score(map_fit(held_in, valid.spikes_heldin, v))))
    rows.append(("leaky: AE with every neuron and bin visible", leaky_ae))
    rows.append(("leaky: MAP from every window neuron, prior N(0, 1)", score(map_fit(every, window, 1.0))))
    return str(folder), float(guidance["chosen"]), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fits", nargs="+", type=Path, help="fitted GNOCCHI folders (runs or fit_only.py's)")
    args = ap.parse_args()

    import torch

    from nlb_suite.errors import NLBInputError
    from nlb_suite.table import print_table

    torch.set_num_threads(1)
    results = []
    for folder in args.fits:
        try:
            results.append(validation_rows(folder))
        except NLBInputError as exc:
            ap.exit(2, f"bench_gnocchi_inference.py: {exc}\n")
        print(f"  {folder}: done", file=sys.stderr, flush=True)
    table = []
    for name, _ in results[0][2]:
        line = [name]
        for _, _, rows in results:
            value, low, high = dict(rows)[name], dict(rows)[SMOOTHING], dict(rows)[TRUTH]
            line += [value, f"{100 * (value - low) / (high - low):.0f}%"]
        table.append(line)
    print("co-bps of the held-out neurons on each fit's internal validation trials, and the share of the gap from "
          "smoothing to the true rates")
    print_table(["row", *[h for i in range(len(results)) for h in (f"fit {i + 1}", "gap")]], table)
    for i, (label, chosen, _) in enumerate(results):
        print(f"fit {i + 1}: {label} (guidance strength chosen: {chosen:g})")


if __name__ == "__main__":
    main()
