"""NODE-SAE vs GRU-SAE on lorenz (Sedler, Versteeg & Pandarinath 2023): rate R2, state R2, fixed points.

    python benchmarks/bench_node_sae.py --data-seeds 0,1,2 --workers 2            # run, then summarise
    python benchmarks/bench_node_sae.py --data-seeds 0,1,2 --profile long --only lorenz_node_sae_l3_s0_long
    python benchmarks/bench_node_sae.py --summarize [--profile long]              # the table of what ran
    python benchmarks/bench_node_sae.py --profile long --window-loss --node-set unmask_every=28 --label u28 \
        --only lorenz_node_sae_l3_s0_long_win_u28                                 # a NODE-only candidate schedule
    python benchmarks/bench_node_sae.py --valid-table [--label u28c20 --versus u28]   # validation NLL: choose on this
    python benchmarks/bench_node_sae.py --profile long --window-loss --label u28c20 --versus u28 --summarize
                                                               # one schedule minus another, paired per run
    python benchmarks/bench_node_sae.py --profile none --window-loss --label cos --versus plain --summarize
                                                               # a labelled schedule minus the profile's own runs
    python benchmarks/bench_node_sae.py --profile long --window-loss --node-set unmask_every=28 --label u28 \
        --data-seeds 0 --model-seeds 0,1,2,3,4 --only lorenz_node_sae_l3_s0_long_win_u28_m1   # model seeds
    python benchmarks/bench_node_sae.py --others lfads,ndt --others-seeds 0,1 --lfads-epochs 200 --ndt-epochs 60 \
        --only lorenz_lfads_s0_e200,lorenz_ndt_s0_e60                 # the other baselines at an epoch cap

Every run goes through `nlb_suite.runs.execute` on the paper's split: phase test of the lorenz set (train on
the 1600 train+val trials, of which the baseline's own seeded 20 % validate: the paper's 1280/320; score the
400 test trials against the ground truth), with each baseline's CPU config (`cpu` profile: fewer epochs than
the paper's 3000, see baselines/configs/node_sae/default.yaml; `--profile long` gives the SAEs the longer CPU
schedule, tags ending in `_long`; `--window-loss` fits the SAEs on the 70-step window only, the paper's
protocol, tags ending in `_win`) - never tuned on the scored trials. Model
seed = data seed, except for `--model-seeds` runs (latent 3; tags end in `_m<k>`; the paper's spread is over 5
model seeds on one dataset), which also draw their own validation trials. For NODE/GRU-SAE the saved best
checkpoint is reloaded to get latents and bootstrap draws of rate R2 and state R2 over the test trials (the
same resamples for every model of a data seed, so NODE - GRU gets a paired interval; inside the interval of 0
= a tie). The gap closed is the share of the
smoothing-to-ceiling gap of rate R2 (ceiling 1: the true rates). Fixed points of the NODE vector field
(latent size 3) are found from 512 starts on the train latents, mapped to Lorenz coordinates by the affine
map inferred -> true fitted on the train trials, and compared with the true ones (origin, wing centres).
The other baselines (`--others`: smoothing, gpfa, lfads, ndt) run with their lorenz config's CPU profile;
NDT has no lorenz config and takes mc_maze_small's CPU profile. An LFADS / NDT epoch cap shrinks the
schedule's warm-up and ramps by the same factor (tags end in `_e<N>`; LFADS at 30 keeps the old unscaled
shortcut and its tag). `--summarize` ends with one table: rate R2 and state R2 per data seed of the SAE
claim rows beside LFADS / NDT (at the given caps), GPFA and smoothing.
Results append to benchmarks/_work/node_sae/results.jsonl (one line per run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_args import optional_seed_list, seed_list  # noqa: E402

WORK = HERE / "_work" / "node_sae"
RESULTS = WORK / "results.jsonl"
N_BOOT = 500
PAPER = {  # rate R2 / state R2 at latent size 3, mean of 5 seeds (Sedler et al. 2023)
    ("lorenz", "node_sae"): (0.836, 0.895), ("lorenz", "gru_sae"): (0.382, 0.319),
    ("arneodo", "node_sae"): (0.912, 0.940), ("arneodo", "gru_sae"): (0.511, 0.686),
    ("rossler", "node_sae"): (0.876, 0.957), ("rossler", "gru_sae"): (0.272, 0.155),
}
PAPER_SIZES = {("lorenz", "gru_sae", 100): "~0.98 / 0.63-0.73"}  # the paper's other latent sizes, as printed
SAE = ("node_sae", "gru_sae")
PLAIN = "plain"  # --versus PLAIN: the profile's own runs, without a --node-set label
CLAIM = (0.8, 0.85)  # the paper's claim on lorenz at latent size 3: NODE-SAE rate R2 and state R2 at least these
LORENZ = {"sigma": 10.0, "rho": 28.0, "beta": 2.667}  # dysts' Lorenz parameters
# NDT has no lorenz config: its CPU profile chosen on validation trials of mc_maze_small (never lorenz)
OTHERS_CONFIG = {"ndt": HERE.parent / "baselines" / "configs" / "ndt" / "mc_maze_small.yaml"}
SCHEDULE_FIELDS = {  # epoch-counted schedule knobs shrunk with an epoch cap (scaled_schedule)
    "lfads": ("warmup_epochs", "kl_increase_epoch", "l2_increase_epoch"),
    "ndt": ("warmup_epochs", "span_ramp_start", "span_ramp_end"),
}
LEGACY_EPOCHS = {"lfads": 30}  # the old CPU shortcut: tag without _e30, schedule not scaled


def lorenz_fixed_points() -> np.ndarray:
    """The origin and the two wing centres (+-sqrt(beta (rho - 1)), +-sqrt(beta (rho - 1)), rho - 1)."""
    c = np.sqrt(LORENZ["beta"] * (LORENZ["rho"] - 1))
    return np.array([[0.0, 0.0, 0.0], [c, c, LORENZ["rho"] - 1], [-c, -c, LORENZ["rho"] - 1]])


def data_folder(name: str, seed: int) -> Path:
    """The known-dynamics set at its full size for a data seed, under benchmarks/_work in a folder keyed by the
    generator's code, the libraries that shape it and the seed: a generator change never reuses old files."""
    from nlb_suite.datasets.synthetic_cache import cached_synthetic

    return cached_synthetic(WORK / "data", name, seed=seed)


def resamples(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(1000 + seed).integers(0, n, (N_BOOT, n))


def rate_draws(pred: np.ndarray, session, evals, seed: int) -> list[float]:
    """Rate R2 of eval-trial rates `pred` (held-in + held-out) on each of the data seed's shared resamples."""
    from nlb_suite.datasets.truth import truth_rates
    from nlb_suite.metrics_latent import rate_r2

    tr = truth_rates(session, 5)
    true = np.concatenate([tr["spikes"][evals.bins], tr["heldout_spikes"][evals.bins]], axis=2)
    return [rate_r2(pred[i], true[i]) for i in resamples(len(pred), seed)]


def boot_truth(model, train, evals, data: Path, seed: int) -> dict:
    """Bootstrap draws of rate R2 and state R2 over the test trials (the data seed's shared resamples)."""
    from nlb_suite.datasets.session import load_session
    from nlb_suite.datasets.truth_latents import truth_latents
    from nlb_suite.metrics_latent import CONSTANT_VAR, STATE_R2_FLOOR, affine_fit, r2_columns

    session = load_session(data)
    r = model.predict(evals)
    idx = resamples(evals.n_trials, seed)
    out = {"rate_boot": rate_draws(np.concatenate([r.heldin, r.heldout], axis=2), session, evals, seed)}
    lat_true = truth_latents(session, 5)
    lt, le = model.latents(train), model.latents(evals)
    w = affine_fit(lat_true[train.bins].reshape(-1, 3), lt.reshape(-1, lt.shape[2]))
    xe = lat_true[evals.bins]
    pred_lat = np.concatenate([xe, np.ones(xe.shape[:2] + (1,))], axis=2) @ w
    boots = []
    for i in idx:
        y, p = le[i].reshape(-1, le.shape[2]), pred_lat[i].reshape(-1, le.shape[2])
        var = y.var(axis=0)
        r2 = np.where(var > CONSTANT_VAR * var.max(), r2_columns(y, p), 0.0)
        boots.append(float(np.mean(np.maximum(np.nan_to_num(r2), STATE_R2_FLOOR))))
    out["state_boot"] = boots
    return out


def fixed_point_check(model, train, data: Path) -> dict:
    """NODE fixed points from 512 train-latent starts, mapped to Lorenz coordinates, vs the true ones."""
    from baselines.fixed_points import find_fixed_points
    from nlb_suite.datasets.session import load_session
    from nlb_suite.datasets.truth_latents import truth_latents
    from nlb_suite.metrics_latent import affine_fit
    from nlb_suite.seeding import seed_everything

    lat = model.latents(train).reshape(-1, model.config.latent_dim)
    true = truth_latents(load_session(data), 5)[train.bins].reshape(-1, 3)
    rng = np.random.default_rng(0)
    starts = lat[rng.choice(len(lat), 512, replace=False)]
    starts = starts + 0.1 * lat.std(axis=0) * rng.standard_normal(starts.shape)
    field = model.model.dynamics.field
    field.eval()
    for p in field.parameters():
        p.requires_grad_(False)
    seed_everything(0)
    fps = find_fixed_points(field, starts, steps=3000, lr=1e-2, tol=1e-6, merge_dist=0.05 * lat.std())
    w = affine_fit(lat, true)  # inferred -> true (Lorenz coordinates)
    mapped = np.hstack([fps.points, np.ones((len(fps.points), 1))]) @ w if len(fps.points) else np.zeros((0, 3))
    scale = float(np.sqrt(true.var(axis=0).sum()))  # RMS radius of the attractor
    dist = [float(np.min(np.linalg.norm(mapped - t, axis=1)) / scale) if len(mapped) else float("nan")
            for t in lorenz_fixed_points()]
    return {"n_fixed_points": int(len(fps.points)), "counts": fps.counts.tolist(),
            "mapped": mapped.round(2).tolist(), "dist_to_true": dist, "attractor_rms": scale}


def one_run(job: dict) -> dict:
    """execute() one baseline on one data seed; for the SAEs also bootstrap draws and (NODE, 3) fixed points."""
    import torch

    torch.set_num_threads(1)
    from nlb_suite.baseline_api import RunContext, build_config, get_baseline
    from nlb_suite.datasets.tensors import load
    from nlb_suite.runs import RunSpec, execute, read_run, trial_sets

    data = data_folder(job["dataset"], job["seed"])
    out = WORK / "runs" / job["tag"]
    t0 = time.perf_counter()
    res = execute(RunSpec(baseline=job["baseline"], dataset=job["dataset"], data=data, phase="test",
                          seed=job.get("model_seed", job["seed"]), device="cpu", overrides=job["overrides"], out=out, overwrite=True,
                          ci=0, profile=job.get("profile"), config_file=job.get("config_file")), progress=False)
    row = {**job, "truth": res.truth, "wall_s": time.perf_counter() - t0, "fit_s": res.timings["fit_s"],
           "data_sha256": read_run(out).info["data_sha256"]}  # which files: a later refit can check it had the same
    if job["baseline"] in SAE:
        import yaml

        from baselines.sae_model import SAE as SAEModel

        cls = get_baseline(job["baseline"])
        cfg = build_config(cls, yaml.safe_load((out / "config.yaml").read_text())["config"], "run config")
        t = load(job["dataset"], data, bin_ms=5, phase="test")
        train, evals = trial_sets(t)
        ctx = RunContext(dataset=job["dataset"], bin_ms=5, n_heldin=10, n_heldout=3, n_forward_bins=40)
        model = cls(cfg, ctx)
        model.model = SAEModel(cfg.dims(10, 13, 40))
        model.model.load_state_dict(torch.load(out / f"{job['baseline']}_best.pt", weights_only=True))
        model.model.eval()
        row.update(boot_truth(model, train, evals, data, job["seed"]))
        curves = (out / "curves.csv").read_text().splitlines()
        row["epochs"] = len(curves) - 1
        if job["baseline"] == "node_sae" and cfg.latent_dim == 3 and job["dataset"] == "lorenz":
            row["fixed_points"] = fixed_point_check(model, train, data)
    return row


def jobs(args) -> list[dict]:
    """Runs in priority order: the claim on two data seeds, the other baselines, latent sizes, further seeds."""
    out, later = [], []
    sae = {"max_epochs": args.epochs, "patience": args.epochs} if args.epochs else {}
    if args.window_loss:
        sae["fit_forward"] = False
    prof = {"profile": args.profile}
    suffix = profile_suffix(args.profile, args.window_loss)
    node = {**sae, **args.node_set}  # NODE-only overrides (a candidate schedule); tags end in _<label>
    node_suffix = suffix + (f"_{args.label}" if args.label else "")

    def sae_job(b: str, seed: int, size: int, model_seed: Optional[int] = None) -> dict:
        ov, sfx = (node, node_suffix) if b == "node_sae" else (sae, suffix)
        model_seed = seed if model_seed is None else model_seed
        return {"dataset": args.dataset, "baseline": b, "seed": seed, "model_seed": model_seed,
                "overrides": {"latent_dim": size, **ov}, **prof,
                "tag": f"{args.dataset}_{b}_l{size}_s{seed}{sfx}{model_seed_suffix(seed, model_seed)}"}

    for i, seed in enumerate(args.data_seeds):
        for b in SAE:
            (out if i < 2 else later).append(sae_job(b, seed, 3))
    for seed in args.others_seeds:
        for b in args.others:
            out.append(others_job(args.dataset, b, seed, others_epochs(args).get(b, 0)))
    for size in args.sizes:
        for seed in args.size_seeds:
            for b in SAE:
                out.append(sae_job(b, seed, size))
    for seed in args.data_seeds:
        for k in args.model_seeds:
            if k != seed:  # model seed = data seed is the claim run above
                for b in SAE:
                    later.append(sae_job(b, seed, 3, k))
    return out + later


def model_seed_suffix(data_seed: int, model_seed: int) -> str:
    """Tag suffix `_m<k>` of a run whose model seed k differs from its data seed (else none: the default pairing)."""
    return "" if model_seed == data_seed else f"_m{model_seed}"


def data_seed_of(tag: str) -> int:
    """The data seed a latent-3 SAE run's tag names (`_l3_s<seed>_`)."""
    return int(tag.split("_l3_s")[1].split("_")[0])


def model_seed_of(tag: str, data_seed: int) -> int:
    """The model seed a run's tag names (`_m<k>` at its end), else its data seed."""
    _, sep, k = tag.rpartition("_m")
    return int(k) if sep and k.isdigit() else data_seed


def others_epochs(args) -> dict[str, int]:
    """The epoch cap of each capped baseline among the others (0: its config's own budget)."""
    return {"lfads": args.lfads_epochs, "ndt": args.ndt_epochs}


def others_tag(dataset: str, baseline: str, seed: int, epochs: int = 0) -> str:
    """`<dataset>_<baseline>_s<seed>`, then `_e<epochs>` for a capped run (not LFADS at its legacy 30)."""
    legacy = epochs == LEGACY_EPOCHS.get(baseline)
    return f"{dataset}_{baseline}_s{seed}" + (f"_e{epochs}" if epochs and not legacy else "")


def others_config(baseline: str, dataset: str):
    """The CPU config a run of `baseline` on `dataset` resolves to (before any cap)."""
    from nlb_suite.baseline_api import get_baseline, resolve_config

    cfg, _ = resolve_config(get_baseline(baseline), dataset, 5, device="cpu", config_file=OTHERS_CONFIG.get(baseline))
    return cfg


def config_epochs(baseline: str, dataset: str) -> int:
    """max_epochs of the CPU config a run of `baseline` on `dataset` resolves to (before any cap)."""
    return others_config(baseline, dataset).max_epochs


def scaled_schedule(baseline: str, dataset: str, epochs: int) -> dict:
    """Overrides capping `baseline` at `epochs`, its schedule (warm-up, ramps) shrunk by the same factor.

    The factor is epochs / the resolved CPU config's max_epochs, so each ramp ends at the same share of the
    fit as in the config (not tuned; a 30-epoch cap of the 200-epoch LFADS profile otherwise never finishes
    its KL ramp).
    """
    cfg = others_config(baseline, dataset)
    factor = epochs / cfg.max_epochs
    out = {"max_epochs": epochs, "patience": epochs}
    out.update({k: max(1, round(getattr(cfg, k) * factor)) for k in SCHEDULE_FIELDS.get(baseline, ())})
    return out


def others_job(dataset: str, baseline: str, seed: int, epochs: int = 0) -> dict:
    """One run of a non-SAE baseline; LFADS at its legacy 30-epoch cap keeps the old (unscaled) overrides."""
    if not epochs:
        ov = {}
    elif epochs == LEGACY_EPOCHS.get(baseline):
        ov = {"max_epochs": epochs, "patience": epochs}
    else:
        ov = scaled_schedule(baseline, dataset, epochs)
    if baseline == "ndt":  # as the lorenz rows were fitted: mc_maze_small's cpu profile refits since 2026-12-03
        ov = {**ov, "refit": False}
    job = {"dataset": dataset, "baseline": baseline, "seed": seed, "overrides": ov,
           "tag": others_tag(dataset, baseline, seed, epochs)}
    if baseline in OTHERS_CONFIG:
        job["config_file"] = str(OTHERS_CONFIG[baseline])
    return job


def profile_suffix(profile: str, window_loss: bool = False) -> str:
    """Tag suffix of SAE runs: `_<profile>` unless `cpu` (the default), then `_win` for the window-only loss."""
    return ("" if profile == "cpu" else f"_{profile}") + ("_win" if window_loss else "")


def parse_sets(text: str) -> dict:
    """`KEY=VALUE,...` -> {KEY: VALUE} with YAML-typed values (`lr=2e-3,unmask_every=24`)."""
    import yaml

    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 2e-3 as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        out[key.strip()] = parsed
    return out


def tag_schedule(tag: str, seed: int, latent_dim: int = 3) -> str:
    """The schedule a run tag names after `_l<dim>_s<seed>`: profile, `win` for the window-only loss and the
    --node-set label, without the model-seed suffix (`cpu` when none)."""
    tag = tag.removesuffix(model_seed_suffix(seed, model_seed_of(tag, seed)))
    return tag.split(f"_l{latent_dim}_s{seed}", 1)[-1].replace("_", " ").strip() or "cpu"


def schedule(row: dict) -> str:
    """An SAE run's profile, `win` for the window-only loss and its --node-set label (from the tag's suffix)."""
    return tag_schedule(row["tag"], row["seed"], row["overrides"].get("latent_dim", 3))


def _fmt(v, nd=3) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def summarize(dataset: str, profile: str = "cpu", window_loss: bool = False, label: str = "",
              seeds: Optional[list[int]] = None, epochs: Optional[dict] = None, versus: str = "") -> None:
    """Print every run of `dataset`, then the latent-3 claim tables of the SAE runs of `profile` (of `seeds`).

    With `label`, the NODE-SAE rows are those of that candidate schedule (tags ending in `_<label>`), paired
    with the GRU-SAE rows of the same profile (the NODE-only overrides do not touch the GRU). Last, one
    table of those SAE rows beside the other baselines (LFADS / NDT at the epoch caps `epochs`); with `versus`,
    the `label` NODE runs minus the `versus` ones, paired run by run.
    """
    from nlb_suite.metrics_bootstrap import percentile_interval
    from nlb_suite.report.paired import gap_share
    from nlb_suite.table import print_table

    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["dataset"] == dataset]
    latest = {r["tag"]: r for r in rows}  # a rerun replaces its earlier line
    smooth = {r["seed"]: r["truth"]["rate R2"] for r in latest.values() if r["baseline"] == "smoothing"}

    def dim(r):
        return r["overrides"].get("latent_dim") or r["truth"].get("latent dims")

    print(f"\n{dataset}: every run, phase test (400 test trials), ground truth; 95% bootstrap intervals over test "
          "trials for the SAEs")
    table = []
    for r in sorted(latest.values(), key=lambda r: (r["baseline"], dim(r) or 0, r["seed"])):
        t = r["truth"]
        def ci(k: str, r: dict = r) -> str:
            return " [{:.3f}, {:.3f}]".format(*percentile_interval(np.array(r[k]))) if k in r else ""

        s = smooth.get(r["seed"])
        gap = gap_share(t["rate R2"], s, 1.0) if r["baseline"] != "smoothing" else None  # ceiling: the true rates
        table.append([r["baseline"], dim(r) or "-", r["seed"], model_seed_of(r["tag"], r["seed"]),
                      _fmt(t["rate R2"]) + ci("rate_boot"),
                      _fmt(t["state R2"]) + ci("state_boot"), "-" if gap is None else f"{100 * gap:.0f}%",
                      r.get("epochs", "-"), f"{r['fit_s'] / 60:.1f}",
                      schedule(r) if r["baseline"] in SAE else "-"])
    print_table(["baseline", "latents", "data seed", "model seed", "rate R2", "state R2", "rate gap closed",
                 "epochs", "fit min", "profile"], table)

    suffix = profile_suffix(profile, window_loss)
    sfx = {"node_sae": suffix + (f"_{label}" if label else ""), "gru_sae": suffix}
    claim = [r for r in latest.values() if seeds is None or r["seed"] in seeds]  # the claim tables' runs
    profile = profile + (" (window loss)" if window_loss else "") + (f", NODE schedule {label}" if label else "")
    print(f"\n{dataset}, latent size 3, SAE profile {profile}: mean over data seeds, paper (mean of 5 seeds) "
          "beside ours")
    agg = []
    for b in SAE:
        rs = [r for r in claim if r["baseline"] == b and dim(r) == 3 and r["tag"].endswith(f"s{r['seed']}{sfx[b]}")]
        if not rs:
            continue
        rate = np.mean([r["truth"]["rate R2"] for r in rs])
        state = np.mean([r["truth"]["state R2"] for r in rs])
        paper = PAPER.get((dataset, b), (None, None))
        met = (f"{sum(r['truth']['rate R2'] >= CLAIM[0] and r['truth']['state R2'] >= CLAIM[1] for r in rs)} of "
               f"{len(rs)}" if dataset == "lorenz" else "-")
        agg.append([b, len(rs), " ".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"])),
                    _fmt(rate), _fmt(paper[0]), _fmt(state), _fmt(paper[1]), met])
    print_table(["model", "seeds", "data seeds", "rate R2", "paper", "state R2", "paper",
                 f"rate >= {CLAIM[0]} and state >= {CLAIM[1]}"], agg)

    print(f"\nNODE - GRU at each latent size both ran, SAE profile {profile}, paired over the same test-trial "
          "resamples (tie: interval holds 0)")
    diffs = node_minus_gru(latest, dataset, sorted({r["seed"] for r in claim}), sfx,
                           sorted({dim(r) for r in claim if r["baseline"] in SAE} - {None}))
    print_table(["latents", "data seed", "rate R2 NODE - GRU", "state R2 NODE - GRU"], diffs)

    fps = [r for r in claim if "fixed_points" in r and r["tag"].endswith(f"s{r['seed']}{sfx['node_sae']}")]
    if fps:
        print(f"\nfixed points of the NODE vector field (latent 3, profile {profile}), mapped to Lorenz coordinates; "
              "distance to each true fixed point / attractor RMS radius")
        fp_rows = []
        for r in sorted(fps, key=lambda r: r["seed"]):
            f = r["fixed_points"]
            fp_rows.append([r["seed"], f["n_fixed_points"], "; ".join(str(p) for p in f["mapped"][:5]),
                            " / ".join(_fmt(d, 2) for d in f["dist_to_true"])])
        print_table(["data seed", "found", "learned (mapped, up to 5)", "origin / wing + / wing -"], fp_rows)
        c = lorenz_fixed_points().round(2).tolist()
        print(f"true: origin {c[0]}, wings {c[1]}, {c[2]}")
    sizes_table(latest, dataset, seeds if seeds is not None else sorted({r["seed"] for r in claim}), sfx, profile)
    model_seeds_table(latest, dataset, seeds if seeds is not None else sorted({r["seed"] for r in claim}), sfx,
                      profile)
    comparison(latest, dataset, seeds if seeds is not None else sorted({r["seed"] for r in claim}), sfx,
               epochs or {})
    if label and versus:
        pairs = schedule_minus({t: r for t, r in latest.items() if seeds is None or r["seed"] in seeds}, dataset,
                               suffix, label, versus)
        print(f"\nNODE-SAE schedule {label} - {versus}, latent 3, SAE profile {profile}, per run (same data and "
              "model seed), paired over the same test-trial resamples (tie: interval holds 0)")
        print_table(["data seed", "model seed", f"rate R2 {label} - {versus}", f"state R2 {label} - {versus}"],
                    pairs)


def paired_cells(a: dict, b: dict) -> list[str]:
    """Rate R2 and state R2 of run row `a` minus run row `b`, paired over their shared test-trial resamples."""
    from nlb_suite.report.paired import Difference

    return [Difference.paired(a["truth"][name] - b["truth"][name], a[key], b[key]).text(digits=3)
            for key, name in (("rate_boot", "rate R2"), ("state_boot", "state R2"))]


def node_minus_gru(latest: dict, dataset: str, seeds: list[int], sfx: dict, sizes: list[int]) -> list[list]:
    """Rows [size, seed, rate cell, state cell]: NODE - GRU at each latent size and data seed where both SAEs ran
    with the claim's schedule, paired over the same test-trial resamples."""
    diffs = []
    for size in sizes:
        for seed in seeds:
            pair = [latest.get(f"{dataset}_{b}_l{size}_s{seed}{sfx[b]}") for b in SAE]
            if None in pair or "rate_boot" not in pair[0] or "rate_boot" not in pair[1]:
                continue
            cells = [size, seed, *paired_cells(pair[0], pair[1])]
            diffs.append(cells)
    return diffs


def sizes_table(latest: dict, dataset: str, seeds: list[int], sfx: dict, profile: str) -> None:
    """Rate R2 and state R2 of each SAE at each latent size that ran (the claim's profile), mean over seeds."""
    from nlb_suite.table import print_table

    table = []
    for b in SAE:
        sizes = sorted({r["overrides"].get("latent_dim") for r in latest.values()
                        if r["baseline"] == b and r["tag"].endswith(f"_s{r['seed']}{sfx[b]}")} - {None})
        for size in sizes:
            rs = [latest.get(f"{dataset}_{b}_l{size}_s{s}{sfx[b]}") for s in seeds]
            rs = [r for r in rs if r is not None]
            if not rs:
                continue
            rate = [r["truth"]["rate R2"] for r in rs]
            state = [r["truth"]["state R2"] for r in rs]
            paper = PAPER.get((dataset, b)) if size == 3 else None
            paper_cell = f"{paper[0]:.3f} / {paper[1]:.3f}" if paper else PAPER_SIZES.get((dataset, b, size), "-")
            table.append([b, size, " ".join(str(r["seed"]) for r in rs), " ".join(_fmt(v) for v in rate),
                          _fmt(float(np.mean(rate))), " ".join(_fmt(v) for v in state),
                          _fmt(float(np.mean(state))), paper_cell])
    if table:
        print(f"\n{dataset}: the SAEs by latent size (profile {profile}); per data seed, then the mean; paper: "
              "rate / state R2 where it gives them")
        print_table(["model", "latents", "data seeds", "rate R2", "mean", "state R2", "mean", "paper"], table)


def model_seeds_table(latest: dict, dataset: str, seeds: list[int], sfx: dict, profile: str) -> None:
    """Latent-3 SAE runs of the claim's schedule at several model seeds of one data seed: each, the mean, the
    paper's mean of 5 model seeds (one dataset) beside it, and how many meet the claim (lorenz)."""
    from nlb_suite.table import print_table

    table = []
    for seed in seeds:
        for b in SAE:
            base = f"{dataset}_{b}_l3_s{seed}{sfx[b]}"
            rs = sorted((r for t, r in latest.items() if t == base + model_seed_suffix(seed, model_seed_of(t, seed))),
                        key=lambda r: model_seed_of(r["tag"], seed))
            if len(rs) < 2:
                continue
            rate = [r["truth"]["rate R2"] for r in rs]
            state = [r["truth"]["state R2"] for r in rs]
            paper = PAPER.get((dataset, b), (None, None))
            met = (f"{sum(r >= CLAIM[0] and s >= CLAIM[1] for r, s in zip(rate, state))} of {len(rs)}"
                   if dataset == "lorenz" else "-")
            table.append([b, seed, " ".join(str(model_seed_of(r["tag"], seed)) for r in rs),
                          " ".join(_fmt(v) for v in rate), _fmt(float(np.mean(rate))), _fmt(paper[0]),
                          " ".join(_fmt(v) for v in state), _fmt(float(np.mean(state))), _fmt(paper[1]), met])
    if table:
        print(f"\n{dataset}, latent size 3, SAE profile {profile}: model seeds on one data seed (the paper's protocol: "
              "5 model seeds, one dataset); per model seed, then the mean")
        print_table(["model", "data seed", "model seeds", "rate R2", "mean", "paper", "state R2", "mean", "paper",
                     f"rate >= {CLAIM[0]} and state >= {CLAIM[1]}"], table)


def twin_tag(tag: str, seed: int, label: str, versus: str) -> Optional[str]:
    """The tag of a latent-3 NODE-SAE run of schedule `label` refitted with schedule `versus` (same dataset,
    profile, data and model seed; `versus` PLAIN: the profile's unlabelled run), or None when `tag` is not such
    a run."""
    k = model_seed_suffix(seed, model_seed_of(tag, seed))
    core = tag.removesuffix(k)
    if "_node_sae_l3_s" not in tag or not core.endswith(f"_{label}"):
        return None
    return core.removesuffix(f"_{label}") + ("" if versus == PLAIN else f"_{versus}") + k


def schedule_minus(latest: dict, dataset: str, suffix: str, label: str, versus: str) -> list[list]:
    """Rows [data seed, model seed, rate cell, state cell]: latent-3 NODE-SAE runs of schedule `label` (profile
    `suffix`) minus their `versus` twins, paired over the same test-trial resamples; with two runs or more, a
    last `mean` row (`mean_over_seeds`)."""
    rows, pairs = [], []
    for tag, a in sorted(latest.items(), key=lambda kv: (kv[1]["seed"], model_seed_of(kv[0], kv[1]["seed"]))):
        seed, twin = a["seed"], twin_tag(tag, a["seed"], label, versus)
        if twin is None or not tag.startswith(f"{dataset}_node_sae_l3_s{seed}{suffix}_{label}"):
            continue
        b = latest.get(twin)
        if b is None or "rate_boot" not in a or "rate_boot" not in b:
            continue
        rows.append([seed, model_seed_of(tag, seed), *paired_cells(a, b)])
        pairs.append((seed, a, b))
    return rows + ([mean_over_seeds(pairs)] if len(pairs) > 1 else [])


def mean_over_seeds(pairs: list[tuple[int, dict, dict]]) -> list[str]:
    """The row [mean, count, rate cell, state cell] of run pairs (data seed, row a, row b): each data seed's a - b
    is the mean over its model seeds (they share the seed's test-trial resamples, so their draws are averaged
    in step), then the mean over data seeds with a stratified interval (`Difference.mean_over_sets`)."""
    from nlb_suite.report.paired import Difference

    seeds = sorted({s for s, _, _ in pairs})
    cells = []
    for key, name in (("rate_boot", "rate R2"), ("state_boot", "state R2")):
        parts = []
        for seed in seeds:
            runs = [(a, b) for s, a, b in pairs if s == seed]
            parts.append((float(np.mean([a["truth"][name] - b["truth"][name] for a, b in runs])),
                          np.mean([a[key] for a, _ in runs], axis=0), np.mean([b[key] for _, b in runs], axis=0)))
        cells.append(Difference.mean_over_sets(parts).text(digits=3))
    plural = "s" * (len(seeds) != 1)
    return ["mean", f"{len(pairs)} runs, {len(seeds)} data seed{plural}", *cells]


def protocol(row: dict) -> str:
    """What a run's budget and loss were, in words, for the comparison table."""
    b, ov = row["baseline"], row["overrides"]
    if b in SAE:
        loss = "window loss" if "_win" in row["tag"] else "window + forward loss"
        return f"{row.get('epochs', '?')} epochs, {loss}, {schedule(row)}"
    if b in SCHEDULE_FIELDS:
        full = config_epochs(b, row["dataset"])
        cap = ov.get("max_epochs", full)
        scaled = f"ramps x{cap / full:.2f}" if any(k in ov for k in SCHEDULE_FIELDS[b]) else "ramps not scaled"
        source = "mc_maze_small cpu profile" if b in OTHERS_CONFIG else "cpu profile"
        dims = row["truth"].get("latent dims")
        width = f", {dims}-dim latents" if dims and dims != 3 else ""
        return f"{cap} epochs ({source}: {full}, {scaled}), window + forward loss{width}"
    return {"gpfa": "EM (config), latent 3", "smoothing": "kernel smoothing + GLM"}.get(b, "config")


def rate_boot_of(row: dict) -> Optional[list[float]]:
    """Bootstrap draws of a run's rate R2 (the data seed's shared resamples): saved, or from submission.h5.

    Draws are cached in the run folder (rate_boot.json); None if the run folder has no submission.
    """
    from nlb_suite.datasets.session import load_session
    from nlb_suite.datasets.tensors import load
    from nlb_suite.runs import trial_sets
    from nlb_suite.submission import read_submission

    if "rate_boot" in row:
        return row["rate_boot"]
    run = WORK / "runs" / row["tag"]
    cache = run / "rate_boot.json"
    if cache.exists():
        return json.loads(cache.read_text())
    if not (run / "submission.h5").exists():
        return None
    data = data_folder(row["dataset"], row["seed"])
    group = next(iter(read_submission(run / "submission.h5").values()))
    pred = np.concatenate([group["eval_rates_heldin"], group["eval_rates_heldout"]], axis=2)
    _, evals = trial_sets(load(row["dataset"], data, bin_ms=5, phase="test"))
    boots = rate_draws(pred, load_session(data), evals, row["seed"])
    cache.write_text(json.dumps(boots))
    return boots


def paired_rates(rows: dict, seeds: list[int]) -> None:
    """NODE-SAE minus each other model in rate R2 per data seed, paired over the same test-trial resamples."""
    from nlb_suite.report.paired import Difference
    from nlb_suite.table import print_table

    table = []
    for name, by_seed in rows.items():
        if name == "NODE-SAE":
            continue
        cells = [name]
        for s in seeds:
            node, other = rows["NODE-SAE"].get(s), by_seed.get(s)
            a, b = (rate_boot_of(node) if node else None), (rate_boot_of(other) if other else None)
            if a is None or b is None:
                cells.append("-")
                continue
            d = node["truth"]["rate R2"] - other["truth"]["rate R2"]
            cells.append(Difference.paired(d, a, b).text(digits=3))
        table.append(cells)
    print("\nrate R2, NODE-SAE minus each model, paired over the same test-trial resamples (tie: interval holds 0)")
    print_table(["model", *(f"data seed {s}" for s in seeds)], table)


def comparison(latest: dict, dataset: str, seeds: list[int], sae_sfx: dict, epochs: dict) -> None:
    """One table: rate R2 and state R2 per data seed and their mean, the SAE claim rows beside the others."""
    from nlb_suite.table import print_table

    models = [("NODE-SAE", lambda s: f"{dataset}_node_sae_l3_s{s}{sae_sfx['node_sae']}"),
              ("GRU-SAE", lambda s: f"{dataset}_gru_sae_l3_s{s}{sae_sfx['gru_sae']}")]
    models += [(b.upper() if b != "smoothing" else b, lambda s, b=b: others_tag(dataset, b, s, epochs.get(b, 0)))
               for b in ("lfads", "ndt", "gpfa", "smoothing")]
    table, kept = [], {}
    for name, tag in models:
        rows = {s: latest.get(tag(s)) for s in seeds}
        found = [r for r in rows.values() if r is not None]
        if not found:
            continue
        kept[name] = rows
        cells = [name, protocol(found[0])]
        for key in ("rate R2", "state R2"):
            vals = [rows[s]["truth"][key] if rows[s] is not None else None for s in seeds]
            have = [v for v in vals if v is not None]
            mean = _fmt(float(np.mean(have))) + ("" if len(have) == len(seeds) else f" ({len(have)})") if have else "-"
            cells += [_fmt(v) for v in vals] + [mean]
        table.append(cells)
    heads = [h for k in ("rate", "state") for h in [*(f"{k} s{s}" for s in seeds), f"{k} mean"]]
    print(f"\n{dataset}, latent size 3 unless the protocol says otherwise (smoothing: none): rate R2 and state R2 against the truth per data seed "
          "(phase test, 400 test trials); mean (n) = over the n seeds that ran; state R2 '-' = no latents")
    print_table(["model", "protocol", *heads], table)
    if "NODE-SAE" in kept:
        paired_rates(kept, seeds)


def valid_true_nll(dataset: str, data_seed: int, model_seed: int, valid_frac: float) -> float:
    """Window NLL (per bin and neuron, no log k!) of the true rates on an SAE's own validation trials."""
    from baselines.torch_core import internal_split
    from nlb_suite.datasets.session import load_session
    from nlb_suite.datasets.tensors import load
    from nlb_suite.datasets.truth import truth_rates
    from nlb_suite.runs import trial_sets

    data = data_folder(dataset, data_seed)
    train, _ = trial_sets(load(dataset, data, bin_ms=5, phase="test"))
    _, valid = internal_split(train.n_trials, valid_frac, model_seed)  # the SAE's own split (sae.py)
    tr = truth_rates(load_session(data), 5)
    rate = np.concatenate([tr["spikes"][train.bins], tr["heldout_spikes"][train.bins]], axis=2)[valid]
    counts = np.concatenate([train.spikes_heldin, train.spikes_heldout], axis=2)[valid]
    return float(np.nanmean(rate - counts * np.log(rate)))


def valid_minus(excess: dict[str, tuple[float, float]], label: str, versus: str) -> list[list]:
    """Rows [data seed, model seed, kept excess label, versus, difference, last-50 excess label, versus] for each
    latent-3 NODE run of schedule `label` with a `versus` twin (same data and model seed), then their means: one
    mean row per profile (`mean` when all pairs share one, else `mean <profile>`), so profiles never pool."""
    by_profile: dict[str, list[list]] = {}
    for tag in sorted(excess):
        seed = data_seed_of(tag) if "_l3_s" in tag else -1
        twin = twin_tag(tag, seed, label, versus)
        if twin is None or twin not in excess:
            continue
        (a, a_tail), (b, b_tail) = excess[tag], excess[twin]
        by_profile.setdefault(tag_schedule(twin, seed), []).append([seed, model_seed_of(tag, seed), a, b, a - b,
                                                                     a_tail, b_tail])
    rows = []
    for profile, pairs in sorted(by_profile.items()):
        pairs.sort(key=lambda r: (r[0], r[1]))
        name = "mean" if len(by_profile) == 1 else f"mean {profile}"
        rows += [*pairs, [name, f"{len(pairs)} run{'s' * (len(pairs) != 1)}", *np.mean([r[2:] for r in pairs], axis=0)]]
    return [r[:2] + [f"{v:+.3f}" if i == 2 else f"{v:.3f}" for i, v in enumerate(r[2:])] for r in rows]


def valid_table(dataset: str, label: str = "", versus: str = "") -> None:
    """Validation-only view of every latent-3 SAE run of `dataset` (its curves.csv; no test-trial score); with
    `label` and `versus`, that NODE schedule's runs beside the other's, run by run."""
    import csv

    import yaml

    from nlb_suite.table import print_table

    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()] if RESULTS.exists() else []
    tags = {r["tag"]: r for r in rows if r["dataset"] == dataset and r["baseline"] in SAE}
    tags.update({d.name: None for d in (WORK / "runs").glob(f"{dataset}_*_sae_l3_s*") if (d / "curves.csv").exists()})
    true: dict[tuple[int, float], float] = {}
    table = []
    excess: dict[str, tuple[float, float]] = {}
    for tag in sorted(tags):
        run = WORK / "runs" / tag
        if not (run / "curves.csv").exists() or "_l3_" not in tag:
            continue
        seed = data_seed_of(tag)
        split = model_seed_of(tag, seed)  # the SAE's validation trials follow its model seed
        cfg = yaml.safe_load((run / "config.yaml").read_text())["config"] if (run / "config.yaml").exists() else {}
        frac = float(cfg.get("valid_frac", 0.2))
        if (seed, split, frac) not in true:
            true[seed, split, frac] = valid_true_nll(dataset, seed, split, frac)
        curve = list(csv.DictReader((run / "curves.csv").open()))
        if "valid_window_nll" not in curve[0]:  # runs from before the window NLL was logged
            continue
        best = min(curve, key=lambda c: float(c["valid_recon"]))
        win = float(best["valid_window_nll"])
        tail = np.mean([float(c["valid_window_nll"]) for c in curve[-50:]])
        excess[tag] = (win - true[seed, split, frac], float(tail) - true[seed, split, frac])
        table.append([tag, seed, f"{int(best['epoch']) + 1} of {len(curve)}", int(float(best["unmasked_steps"])),
                      f"{win:.3f}", f"{win - true[seed, split, frac]:.3f}",
                      f"{tail - true[seed, split, frac]:.3f}", f"{true[seed, split, frac]:.3f}"])
    print(f"\n{dataset}: validation trials only (each SAE's own seeded 20 %), window Poisson NLL per bin and neuron; "
          "best = the checkpoint kept (lowest NLL over the fitted steps); excess = minus the true rates' NLL; "
          "last 50 = mean over the last 50 epochs")
    print_table(["run", "data seed", "best epoch", "unmasked at best", "best window NLL", "excess (best)",
                 "excess (last 50)", "true rates"], table)
    if label and versus:
        print(f"\nNODE-SAE schedule {label} beside {versus} on the same data and model seeds: validation excess NLL "
              "(as above) of the kept checkpoint and of the last 50 epochs")
        print_table(["data seed", "model seed", f"kept {label}", f"kept {versus}", "difference",
                     f"last 50 {label}", f"last 50 {versus}"], valid_minus(excess, label, versus))


def main() -> None:
    global WORK, RESULTS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="lorenz", choices=("lorenz", "rossler", "arneodo"))
    ap.add_argument("--data-seeds", type=seed_list, default=[0, 1, 2])
    ap.add_argument("--others", type=lambda s: [x for x in s.split(",") if x], default=["smoothing", "gpfa", "lfads"])
    ap.add_argument("--others-seeds", type=optional_seed_list, default=[0])
    ap.add_argument("--model-seeds", type=optional_seed_list, default=[],
                    help="model seeds of the latent-3 SAE runs on each data seed (tags end in _m<k> where k is "
                         "not the data seed)")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=[10, 25])
    ap.add_argument("--size-seeds", type=optional_seed_list, default=[0])
    ap.add_argument("--lfads-epochs", type=int, default=30,
                    help="LFADS epoch cap (30: the old shortcut, tag without _e30; else schedule scaled, tag _e<N>)")
    ap.add_argument("--ndt-epochs", type=int, default=60,
                    help="NDT epoch cap (mc_maze_small's cpu profile, schedule scaled; tag _e<N>; 0: uncapped)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=0, help="SAE epochs (0: the profile's)")
    ap.add_argument("--profile", default="cpu", help="the SAEs' config profile: cpu (200 epochs) or long (600)")
    ap.add_argument("--window-loss", action="store_true", help="SAE loss on the window only (the paper's protocol)")
    ap.add_argument("--node-set", type=parse_sets, default={},
                    help="NODE-SAE-only config overrides KEY=VALUE,... (a candidate schedule; needs --label)")
    ap.add_argument("--label", default="", help="tag suffix of the --node-set schedule (NODE tags end in _LABEL)")
    ap.add_argument("--versus", default="",
                    help="with --label: that schedule's NODE runs minus this schedule's, run by run (test scores with "
                         f"--summarize, validation NLL with --valid-table); {PLAIN}: the profile's unlabelled runs")
    ap.add_argument("--valid-table", action="store_true",
                    help="only print the validation-trial NLL of every latent-3 SAE run (no test score)")
    ap.add_argument("--work", type=Path, default=WORK, help=f"data, runs and results (default {WORK})")
    ap.add_argument("--only", help="comma-separated run tags to (re)run")
    ap.add_argument("--summarize", action="store_true", help="only print the tables of what ran")
    args = ap.parse_args()
    if args.node_set and not args.label:
        ap.error("--node-set needs --label (the tag suffix of its runs)")
    if args.versus and not args.label:
        ap.error("--versus needs --label (the schedule to compare with it)")
    WORK, RESULTS = args.work, args.work / "results.jsonl"
    if args.valid_table:
        valid_table(args.dataset, args.label, args.versus)
        return
    if not args.summarize:
        WORK.mkdir(parents=True, exist_ok=True)
        todo = jobs(args)
        if args.only:
            todo = [j for j in todo if j["tag"] in args.only.split(",")]
        for seed in sorted({j["seed"] for j in todo}):
            data_folder(args.dataset, seed)  # generate once, before the workers share it
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = {pool.submit(one_run, j): j for j in todo}
            for fut in as_completed(futures):
                j = futures[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - report and go on with the other runs
                    print(f"FAILED {j['tag']}: {exc!r}", flush=True)
                    continue
                with RESULTS.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                t = row["truth"]
                print(f"{j['tag']}: rate R2 {t['rate R2']:.3f}, state R2 {_fmt(t['state R2'])}, "
                      f"fit {row['fit_s'] / 60:.1f} min", flush=True)
    if RESULTS.exists():
        summarize(args.dataset, args.profile, args.window_loss, args.label, args.data_seeds, others_epochs(args),
                  args.versus)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from nlb_suite.termination import run_script

    run_script(main, "bench_node_sae.py")
