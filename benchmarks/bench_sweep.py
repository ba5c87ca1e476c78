"""AutoLFADS' claim on the proving ground: PBT-tuned LFADS vs the fixed CPU default, on the eval trials.

    python benchmarks/bench_sweep.py --datasets mc_maze_small --data-seeds 0 --population 4 --epochs 100 --interval 20 --burn-in 40
    python benchmarks/bench_sweep.py --datasets mc_maze_small,mc_maze_medium,mc_maze_large --data-seeds 0

For each data seed the synthetic stand-in is generated (cached under benchmarks/_work/realism/, keyed by
the generator's digest); LFADS runs once with its CPU default (`profiles.cpu`, nothing tuned on these
data) and once as a PBT sweep (`nlb-eval sweep lfads --search pbt`, the AutoLFADS search space of
baselines/configs/lfads/search_space.yaml, the cpu profile's network, --epochs per trial at most), which
chooses its model on its space's validation metric (sample validation, or with `monitor: valid_heldout_nll`
the held-out neurons' NLL) on the train trials only. Both are then scored on the eval trials
with paired bootstrap intervals (1000 resamples, the same for both; a difference whose interval includes
0 is a tie) and the share of the smoothing-to-ceiling gap they close. Cost: the sweep's wall time vs the
default's fit. A last table shows both models' internal-validation scores at their kept epochs (the only
numbers on which one may choose between search spaces). With --winner-values LFADS is also trained anew with
the PBT winner's values fixed (`nlb-eval run lfads --config`): `final`, those of the stretch that trained its
last epoch, or `kept`, those of the stretch its kept epoch lies in (the values its kept weights last trained
with), each paired with the default and the PBT model. With --replay-seeds the winner's lineage is replayed
(`nlb-eval replay`: the whole schedule of values, stretch by stretch) at each listed model seed, beside the
default at the same model seed: at the sweep's seed 0 the replay must be the PBT model again (its rates are
compared); at another seed it asks whether the schedule, not the winning trial's luck, carries PBT's result.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_args import optional_seed_list, seed_list, seeds_text  # noqa: E402
from bench_models import METRICS, PAIR_CAPTION, paired_parts  # noqa: E402  (the paired cells come from there too)

GAP_METRICS = ("co-bps", "fp-bps")


def space_file(work: Path, interval: int, burn_in: int, source: str = "") -> Path:
    """The LFADS search space (the declared one, or `source`) with the PBT interval and burn-in set."""
    import yaml

    from nlb_suite.baseline_api import get_baseline
    from nlb_suite.sweep.search_space import default_space_file

    source_path = Path(source) if source else default_space_file(get_baseline("lfads"))
    space = yaml.safe_load(source_path.read_text())
    space["pbt"].update(perturbation_interval=interval, burn_in=burn_in)
    path = work / f"{source_path.stem}_i{interval}_b{burn_in}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


SMOKE = {"ic_enc_dim": 6, "ci_enc_dim": 4, "con_dim": 4, "co_dim": 2, "ic_dim": 4, "gen_dim": 6, "fac_dim": 3,
         "max_epochs": 4, "patience": 4, "kl_increase_epoch": 2, "l2_increase_epoch": 2}


def kept_epoch(run_dir: Path) -> dict[str, float]:
    """The curve row of the epoch an LFADS run kept: the lowest value of its configured validation monitor."""
    import csv

    import yaml

    from baselines.lfads import LFADSConfig

    config = yaml.safe_load((run_dir / "config.yaml").read_text())["config"]
    monitor = LFADSConfig(**config).resolved_monitor()
    with open(run_dir / "curves.csv", newline="") as f:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    return {"monitor": monitor, **min(rows, key=lambda row: row[monitor])}


SEED_FILE = "bench_seed.json"  # the sweep's wall time (its cost; the run folders hold everything else)
REFERENCES = ("oracle", "smoothing")
PBT = "lfads PBT"
# LFADS trained anew with one stretch of the PBT winner's lineage fixed: run name and folder per stretch
WINNER_VALUES = {"final": ("PBT final values", "lfads_pbt_final_values"),
                 "kept": ("PBT kept values", "lfads_pbt_kept_values")}


def replay_name(seed: int) -> str:
    """The run name of the PBT winner's lineage replayed at model seed `seed` (its folder: the name with '_')."""
    return f"PBT replay m{seed}"


def default_name(seed: int) -> str:
    """The default LFADS's run name at model seed `seed` (seed 0: the sweep's own default run)."""
    return "lfads" if seed == 0 else f"lfads m{seed}"


def folder_of(name: str) -> str:
    """A run name's folder in the seed's folder (spaces become underscores)."""
    return name.replace(" ", "_")


REPLAY_FOLDERS = ("PBT_replay_m*", "lfads_m*")  # ours: replays of a sweep's winner, defaults at other model seeds


def run_cli(args: list[str]) -> None:
    """`nlb-eval ARGS` in a subprocess; its error's last lines on failure (progress bars go nowhere)."""
    from nlb_suite.termination import run_child

    done = run_child([sys.executable, "-m", "nlb_suite.cli", *args], stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, text=True)
    if done.returncode:
        tail = [line for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()][-3:]
        raise SystemExit(f"nlb-eval {' '.join(args[:2])} failed ({done.returncode}): " + " / ".join(tail))


def run_replays(dataset: str, out: Path, seeds: list[int], extra: dict) -> None:
    """The winner's lineage replayed at each model seed, and the default at each seed other than 0."""
    data = sweep_record(out)["spec"]["data"]
    for seed in seeds:
        run_cli(["replay", str(out / "pbt"), "--out", str(out / folder_of(replay_name(seed))), "--seed", str(seed),
                 "--ci", "0", "--overwrite"])
        if seed:
            run_cli(["run", "lfads", "--dataset", dataset, "--data", data, "--seed", str(seed), "--out",
                     str(out / folder_of(default_name(seed))), "--ci", "0", "--overwrite",
                     *(f"--set={k}={v}" for k, v in extra.items())])


def default_epochs(dataset: str) -> int:
    """The default LFADS's epoch budget on this set (on CPU: its cpu profile), to give PBT trials the same."""
    from nlb_suite.baseline_api import get_baseline, resolve_config

    config, _ = resolve_config(get_baseline("lfads"), dataset, 5, {}, None, "cpu", None)
    return config.max_epochs


def seed_folder(work: Path, dataset: str, trials: int, seed: int, space: Path, population: int, epochs: int,
                label: str = "") -> Path:
    """Where one stand-in's default, PBT and reference runs go: one folder per search space, population,
    epoch budget and --set label, so --reuse never reads another sweep as this one."""
    suffix = f"_{label}" if label else ""
    return work / "sweep" / f"{dataset}_{trials}_s{seed}_p{population}_e{epochs}_{space.stem}{suffix}"


def variant_text(sets: dict, label: str) -> str:
    """The header's note of a --set variant, so the printed table alone says which values both models ran with."""
    if not sets:
        return ""
    values = ", ".join(f"{k}={v}" for k, v in sets.items())
    return f"; variant {label}: {values} for the default and every PBT trial"


def run_seed(dataset: str, trials: int, seed: int, work: Path, population: int, epochs: int,
             space: Path, extra: dict, num_cpus: int | None = None, label: str = "") -> None:
    """Default LFADS (a separate process, alongside), PBT-tuned LFADS and the references on one stand-in."""
    from bench_realism import stand_in

    from nlb_suite.jsonio import write_json
    from nlb_suite.runs import RunSpec, execute
    from nlb_suite.sweep.search import SweepSpec, run_sweep
    from nlb_suite.termination import stop_child

    data = stand_in(dataset, trials, seed, work / "realism")
    out = seed_folder(work, dataset, trials, seed, space, population, epochs, label)
    out.mkdir(parents=True, exist_ok=True)
    (out / SEED_FILE).unlink(missing_ok=True)  # ours: a stale record must not outlive a rerun
    for _, folder in WINNER_VALUES.values():  # ours too: trained from the previous sweep's winner
        shutil.rmtree(out / folder, ignore_errors=True)
    for folder in (f for pattern in REPLAY_FOLDERS for f in out.glob(pattern)):  # and these (replays, their pairs)
        shutil.rmtree(folder, ignore_errors=True)
    default = subprocess.Popen([sys.executable, "-m", "nlb_suite.cli", "run", "lfads", "--dataset", dataset, "--data",
                                str(data), "--out", str(out / "lfads"), "--ci", "0", "--overwrite",
                                *(f"--set={k}={v}" for k, v in extra.items())],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # the default run alongside: a failure or a kill here stops it too (SIGTERM, so it discards its temp folder)
        seconds = {}
        for name in REFERENCES:
            result = execute(RunSpec(name, dataset, data=data, out=out / name, seed=0, ci=0, overwrite=True),
                             progress=False)
            seconds[name] = result.timings["fit_s"]
        t0 = time.perf_counter()
        run_sweep(SweepSpec("lfads", dataset, out=out / "pbt", search="pbt", samples=population, data=data,
                            space_file=space, overrides={"max_epochs": epochs, "patience": epochs, **extra}, ci=0,
                            overwrite=True, num_cpus=num_cpus), progress=False)
        # a trial's fit_s is its model's lineage time (an exploit inherits the donor's), so summing them counts
        # shared ancestry twice; the sweep's cost is its wall time
        seconds[PBT] = time.perf_counter() - t0
        default_failed = default.wait() != 0
    except BaseException:
        stop_child(default)
        raise
    if default_failed:
        raise SystemExit(f"the default LFADS run into {out / 'lfads'} failed")
    print(f"  {dataset} data seed {seed}: PBT {seconds[PBT]:.0f} s wall", file=sys.stderr, flush=True)
    write_json(out / SEED_FILE, {"seconds": {PBT: seconds[PBT]}})


def sweep_record(out: Path, required: bool = True) -> dict:
    """A seed's PBT sweep.json; before the sweep has written one, {} or (required) a one-line exit naming it."""
    import json

    path = out / "pbt" / "sweep.json"
    if not path.is_file():
        if required:
            raise SystemExit(f"{path}: no sweep record (run the seed's sweep first)")
        return {}
    return json.loads(path.read_text())


def winner_values(out: Path, which: str) -> dict:
    """The PBT winner's searched values: `final` (its last trained epoch's) or `kept` (its kept epoch's)."""
    from nlb_suite.sweep.lineage import stretch_at
    from nlb_suite.sweep.search import TRIALS_FILE, read_trials

    best = sweep_record(out)["best"]
    if not best.get("lineage"):
        raise SystemExit(f"{out / 'pbt' / 'sweep.json'}: best.lineage missing (a sweep from before the lineage); "
                         "--winner-values needs it")
    row = next(r for r in read_trials(out / "pbt" / TRIALS_FILE) if r.trial == best["trial"])
    return stretch_at(best["lineage"], (row.epochs if which == "final" else row.best_epoch) - 1)["config"]


def run_winner_values(dataset: str, out: Path, which: str) -> None:
    """Train LFADS anew on the sweep's data with best_config.yaml's config and the winner's `which` values
    (same model seed as the default and the trials)."""
    import yaml

    from nlb_suite.sweep.search import BEST_CONFIG

    data = sweep_record(out)["spec"]["data"]
    config = {**yaml.safe_load((out / "pbt" / BEST_CONFIG).read_text()), **winner_values(out, which)}
    name, folder = WINNER_VALUES[which]
    path = out / f"{folder}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    from nlb_suite.termination import run_child

    command = [sys.executable, "-m", "nlb_suite.cli", "run", "lfads", "--dataset", dataset, "--data", data, "--config",
               str(path), "--out", str(out / folder), "--ci", "0", "--overwrite"]
    if run_child(command, stdout=subprocess.DEVNULL).returncode:
        raise SystemExit(f"the LFADS run into {out / folder} failed")


def finished(out: Path) -> bool:
    """Whether a seed's folder holds a finished sweep and every run (the default, the references)."""
    return (sweep_record(out, required=False).get("state") == "done"
            and all((out / n / "submission.h5").is_file() for n in ("lfads", *REFERENCES)))


def score_seed(dataset: str, out: Path, replay_seeds: tuple[int, ...] = ()) -> dict:
    """A finished seed read back from its folders: metrics, costs, paired bootstrap draws, the sweep's trials
    and choice, kept epochs. The sweep's wall time comes from SEED_FILE (None for a seed run before it)."""
    import json

    from nlb_suite.datasets.tensors import load
    from nlb_suite.report.paired import paired_boot
    from nlb_suite.runs import read_run
    from nlb_suite.submission import read_submission
    from nlb_suite.sweep.search import TRIALS_FILE, read_trials

    sweep = sweep_record(out)
    folders = {**{n: out / n for n in REFERENCES}, "lfads": out / "lfads", PBT: out / "pbt" / "best_run"}
    folders.update({name: out / folder for name, folder in WINNER_VALUES.values()
                    if (out / folder / "submission.h5").is_file()})
    folders.update({name: out / folder_of(name) for seed in replay_seeds for name in (replay_name(seed),
                    default_name(seed)) if (out / folder_of(name) / "submission.h5").is_file()})
    runs = {n: read_run(f) for n, f in folders.items()}
    cost = json.loads((out / SEED_FILE).read_text()) if (out / SEED_FILE).is_file() else {}
    seconds = {n: r.info["timings"]["fit_s"] for n, r in runs.items() if n != PBT}
    seconds[PBT] = cost.get("seconds", {}).get(PBT)
    target = load(dataset, Path(sweep["spec"]["data"]), bin_ms=5, phase="val").target_dict()
    names = list(folders)
    boot = paired_boot(target, [read_submission(folders[n] / "submission.h5") for n in names])
    return {"metrics": {n: r.metrics for n, r in runs.items()}, "seconds": seconds, "boot": dict(zip(names, boot)),
            "wall": seconds[PBT], "rows": read_trials(out / "pbt" / TRIALS_FILE), "best": sweep["best"]["trial"],
            "monitor": sweep["best"]["monitor"],
            "kept": {n: kept_epoch(folders[n]) for n in folders if n not in REFERENCES},
            "lineage": sweep["best"].get("lineage") or [],  # none in sweeps from before the lineage
            "replay_same": {n: r.info["replay"]["same_rates_as_best_run"] for n, r in runs.items()
                            if "replay" in r.info and r.info["replay"]["seed"] == r.info["replay"]["sweep_seed"]}}


def seconds_cell(value: float | None) -> str:
    """A cost in whole seconds, '-' when not recorded."""
    return "-" if value is None else f"{value:.0f}"


def paired_cells(res: dict) -> list[str]:
    """PBT - default per metric with its paired 95% interval ('tie' when it holds 0)."""
    from bench_models import cell, paired_parts

    return [cell(paired_parts(res, PBT, "lfads", k)) for k in METRICS]


def paired_rows(results: dict) -> list[list[str]]:
    """[dataset, seed, pair, *cells]: PBT - default per data seed, then per dataset with several seeds their
    mean (`bench_models.pair_rows`: each seed's eval trials resampled on their own, then a t interval over the
    seeds); with --winner-values runs
    on every seed, each against the default and against the PBT model too."""
    from bench_models import cell, pair_rows

    rows = []
    for name in dict.fromkeys(n for n, _ in results):
        per_seed = {s: res for (n, s), res in results.items() if n == name}
        pairs = [(PBT, "lfads", "lfads PBT - lfads default")]
        for run, _ in WINNER_VALUES.values():
            if all(run in res["metrics"] for res in per_seed.values()):
                pairs += [(run, "lfads", f"{run} - lfads default"), (run, PBT, f"{run} - lfads PBT")]
        replayed = [m for m in sorted({int(n.rsplit(" m", 1)[1]) for res in per_seed.values() for n in res["metrics"]
                                       if n.startswith("PBT replay m")})
                    if all(replay_name(m) in res["metrics"] and default_name(m) in res["metrics"]
                           for res in per_seed.values())]
        for m in replayed:  # at seed 0 the default is the sweep's own, paired with PBT above
            pairs += [(replay_name(m), default_name(m), f"{replay_name(m)} - {default_name(m)}")] if m else []
            pairs += [(replay_name(m), PBT, f"{replay_name(m)} - lfads PBT")]
        rows += [[name, seed, label, *cells]
                 for a, b, pair in pairs for label, seed, *cells in pair_rows(per_seed, a, b, pair)]
        others = [m for m in replayed if m]  # the schedule from other initialisations, pooled over seeds of both
        if len(others) * len(per_seed) > 1:
            rows.append([name, "mean", f"PBT replay - lfads, model seeds {seeds_text(others)}",
                         *[cell(*[model_seed_mean(res, others, k) for res in per_seed.values()]) for k in METRICS]])
    return rows


def model_seed_mean(res: dict, seeds: list[int], metric: str):
    """One data seed's replay - default averaged over model seeds, resample by resample (the runs share the seed's
    eval trials and resamples), so that the mean over data seeds resamples each data seed's trials once."""
    parts = [paired_parts(res, replay_name(m), default_name(m), metric) for m in seeds]
    if any(p is None for p in parts):
        return None
    return tuple(sum(p[i] for p in parts) / len(parts) for i in range(3))


def collect(args, space: Path) -> dict:
    """Run (or with --reuse read back) every dataset x data seed of one search space."""
    from nlb_suite.datasets.specs import get_dataset

    results = {}
    for name in args.datasets.split(","):
        trials = args.trials or get_dataset(name).n_train_val
        epochs = args.epochs or default_epochs(name)
        for s in args.data_seeds:
            out = seed_folder(Path(args.work), name, trials, s, space, args.population, epochs, args.label)
            if not (args.reuse and finished(out)):
                run_seed(name, trials, s, Path(args.work), args.population, epochs, space,
                         {**(SMOKE if args.smoke else {}), **args.set}, args.num_cpus, args.label)
            for which in args.winner_values:
                if not (args.reuse and (out / WINNER_VALUES[which][1] / "submission.h5").is_file()):
                    run_winner_values(name, out, which)
            missing = [m for m in args.replay_seeds if not (args.reuse and all(
                (out / folder_of(n) / "submission.h5").is_file() for n in (replay_name(m), default_name(m))))]
            if missing:
                run_replays(name, out, missing, {**(SMOKE if args.smoke else {}), **args.set})
            results[(name, s)] = score_seed(name, out, tuple(args.replay_seeds))
    return results


def print_space(args, results: dict) -> None:
    """One search space's tables: scores, paired differences, the scaling share, validation, trials."""
    from nlb_suite.report.paired import gap_share
    from nlb_suite.sweep.lineage import stretches
    from nlb_suite.table import print_table

    names = args.datasets.split(",")
    print(f"\nsynthetic {args.datasets}, 5 ms, phase val; data seeds {seeds_text(args.data_seeds)}; PBT: population "
          f"{args.population}, at most {args.epochs or 'the default budget of'} epochs a trial, interval "
          f"{args.interval}, burn-in {args.burn_in}, chosen on {next(iter(results.values()))['monitor']} "
          f"(train trials only){variant_text(args.set, args.label)}")
    rows = []
    for (name, s), res in results.items():
        m = res["metrics"]
        for n in m:
            shares = [gap_share(*((m.get(x) or {}).get(k) for x in (n, "smoothing", "oracle"))) for k in GAP_METRICS]
            gaps = ["-" if share is None else f"{100 * share:.0f}%" for share in shares]  # "-": no run or no gap
            rows.append([name, str(s), n, *[f"{m[n][k]:.4f}" if k in m[n] else "-" for k in METRICS], *gaps,
                         seconds_cell(res["seconds"][n])])
    print_table(["dataset", "seed", "model", *METRICS, "co-bps gap closed", "fp-bps gap closed",
                 "train s (PBT: sweep wall)"], rows)

    print(f"\npaired differences (95% paired bootstrap interval over eval trials; 'tie' = interval includes 0; "
          f"{PAIR_CAPTION})")
    print_table(["dataset", "seed", "pair", *METRICS], paired_rows(results))

    if "mc_maze_large" in names and len(names) > 1:
        print("\nshare of the mc_maze_large co-bps each set keeps (same data seed, same model)")
        rows = [[name, str(s), *[f"{100 * res['metrics'][n]['co-bps'] / results[('mc_maze_large', s)]['metrics'][n]['co-bps']:.0f}%"
                                 for n in ("lfads", PBT)]]
                for (name, s), res in results.items() if name != "mc_maze_large"]
        print_table(["dataset", "seed", "default", "PBT"], rows)

    print("\ninternal validation trials (train trials; no eval trial) at each model's kept epoch")
    rows = [[name, str(s), n, k["monitor"], str(int(k["epoch"]) + 1), f"{k['valid_recon']:.5f}",
             f"{k['valid_heldout_nll']:.5f}", f"{k['lr']:.3g}"]
            for (name, s), res in results.items() for n, k in res["kept"].items()]
    print_table(["dataset", "seed", "model", "chosen on", "kept epoch", "valid_recon", "valid_heldout_nll",
                 "lr then"], rows)

    for (name, s), res in results.items():
        for n, same in res["replay_same"].items():
            print(f"{name} data seed {s}: {n}'s rates identical to the PBT model's: {'yes' if same else 'no'}")
    for (name, s), res in results.items():
        print(f"\nPBT trials, {name} data seed {s} ({seconds_cell(res['wall'])} s wall); chosen: {res['best']}")
        keys = list(res["rows"][0].config)
        print_table(["trial", *keys, f"{res['monitor']} best", "epochs", "lineage train s"],
                    [[r.trial, *(f"{r.config[k]:.3g}" for k in keys), f"{r.valid_best:.5f}", r.epochs,
                      f"{r.fit_s:.0f}"] for r in res["rows"]])
        if res["lineage"]:
            epochs = next(r.epochs for r in res["rows"] if r.trial == res["best"])
            print("the chosen model's lineage (values per stretch of epochs):")
            print_table(["epochs", "trial", *keys], [[span, trial, *(f"{values[k]:.3g}" for k in keys)]
                                                     for span, trial, values in stretches(res["lineage"], epochs)])


def print_spaces(by_space: dict[str, dict]) -> None:
    """Several search spaces side by side: PBT - default on the eval trials, and the validation score the
    choice between spaces may use (held-out NLL at each model's kept epoch, PBT - default)."""
    from nlb_suite.table import print_table

    rows = []
    for stem, results in by_space.items():
        for (name, s), res in results.items():
            kept = res["kept"]
            valid = kept[PBT]["valid_heldout_nll"] - kept["lfads"]["valid_heldout_nll"]
            rows.append([stem, name, str(s), *paired_cells(res), f"{valid:+.5f}", seconds_cell(res["wall"])])
    print("\nsearch spaces side by side: PBT - default (eval trials, paired 95% intervals); validation: held-out "
          "NLL on the internal validation trials at each model's kept epoch, PBT - default (lower = PBT better)")
    print_table(["space", "dataset", "seed", *METRICS, "valid held-out NLL", "PBT wall s"], rows)


def winner_list(text: str) -> list[str]:
    """--winner-values: a comma-separated subset of WINNER_VALUES."""
    chosen = [w for w in text.split(",") if w]
    unknown = [w for w in chosen if w not in WINNER_VALUES]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: expected a comma-separated subset of "
                                         f"{','.join(WINNER_VALUES)}")
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="mc_maze_small",
                    help="comma-separated; with mc_maze_large among them, the share of its quality each keeps")
    ap.add_argument("--trials", type=int, default=None, help="train+val trials (default: each set's real count)")
    ap.add_argument("--data-seeds", type=seed_list, default="0")
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=200, help="most epochs of a PBT trial (0: each set's default "
                    "epoch budget, its cpu profile's max_epochs)")
    ap.add_argument("--interval", type=int, default=25, help="PBT perturbation interval (the space declares 25)")
    ap.add_argument("--burn-in", type=int, default=50, help="PBT burn-in epochs (the space declares 50)")
    ap.add_argument("--space", default="", help="a search-space YAML instead of the declared LFADS one; several "
                    "comma-separated: each in turn, then a side-by-side table")
    ap.add_argument("--num-cpus", type=int, default=None, help="local Ray's CPU count (default: the machine's; "
                    "1 runs one trial at a time beside other work)")
    ap.add_argument("--work", default=str(HERE / "_work"))
    ap.add_argument("--reuse", action="store_true", help="score seeds whose sweep and runs already finished "
                    "from their folders instead of running them again")
    ap.add_argument("--winner-values", type=winner_list, default="", help="comma-separated from final,kept: "
                    "also train LFADS anew with the PBT winner's values at its last or at its kept epoch, and pair "
                    "each with the default and the PBT model")
    ap.add_argument("--replay-seeds", type=optional_seed_list, default=[], metavar="K,...",
                    help="replay the PBT winner's lineage (`nlb-eval replay`) at these model seeds, each beside the "
                         "default at the same model seed (0: the sweep's own; its replay must equal the PBT model)")
    ap.add_argument("--smoke", action="store_true", help="tiny networks, 4 epochs: checks the script, measures nothing")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an LFADS config value for the default and every PBT trial alike (repeatable; needs "
                         "--label), e.g. valid_frac=0.4 for a larger internal validation split")
    ap.add_argument("--label", default="", help="folder suffix of a --set variant (its runs stay apart)")
    args = ap.parse_args()
    if bool(args.set) != bool(args.label):
        ap.error("--set and --label go together (the label keeps the variant's folders apart)")
    from nlb_suite.baseline_api import parse_overrides

    args.set = parse_overrides(args.set)

    by_space = {}
    for source in args.space.split(",") if args.space else [""]:
        space = space_file(Path(args.work) / "sweep", args.interval, args.burn_in, source)
        by_space[Path(source).stem or space.stem] = results = collect(args, space)
        print_space(args, results)
    if len(by_space) > 1:
        print_spaces(by_space)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_sweep.py")
