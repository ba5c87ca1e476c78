"""Models on the proving ground: several data seeds, paired bootstrap intervals, share of the gap closed.

    python benchmarks/bench_models.py --dataset mc_maze_small --data-seeds 0,1,2
    python benchmarks/bench_models.py --dataset mc_maze --trials 2295 --data-seeds 0 --baselines oracle,true_psth,smoothing,gpfa
    python benchmarks/bench_models.py --data-seeds 0,1 --baselines ndt,stndt,oracle,true_psth,smoothing,gpfa,lfads \
        --ensemble lfads,ndt,stndt --reuse
    python benchmarks/bench_models.py --data-seeds 0,1,2 --baselines oracle,true_psth,smoothing,gpfa,lfads,gnocchi --reuse
    python benchmarks/bench_models.py --dataset mc_maze --trials 2295 --data-seeds 0,1 --reuse \
        --baselines smoothing,oracle,gpfa,lfads,ndt,ndt_seed1,ndt_seed2,stndt --ensemble ndt,ndt_seed1,ndt_seed2,stndt \
        --ensemble-sizes 3-5
    python benchmarks/bench_models.py --data-seeds 0,1,2 --reuse --baselines oracle,smoothing,ndt,ndt_seed1,ndt_seed2 \
        --ensemble ndt_x3=ndt,ndt_seed1,ndt_seed2 --ensemble-sizes 3-3 --pairs ndt_x3-smoothing,ndt_x3-ndt
    python benchmarks/bench_models.py --dataset area2_bump --data-seeds 0,1,2 --reuse \
        --variant d300=gnocchi:max_epochs=300,patience=300 --baselines smoothing,oracle,gnocchi,gnocchi_seed1,gnocchi_seed2,d300,d300_seed1,d300_seed2 \
        --arm now=gnocchi,gnocchi_seed1,gnocchi_seed2 --arm before=d300,d300_seed1,d300_seed2 --pairs now-before

For each data seed the stand-in is generated (cached under benchmarks/_work/realism/, keyed by the
generator's digest) and every baseline runs through `nlb_suite.runs.execute` with its default config for
the device (phase val, 5 ms; model seed 0, or N for a name ending in `_seedN`): configs are never tuned on
the eval trials here. Each model's metrics are
printed with the share of the smoothing-to-ceiling gap it closes (co-bps, fp-bps), and each pair of
models gets the paired bootstrap interval of its difference (the same `--resamples` (1000) resamples of eval trials for
both); a difference whose interval includes 0 is printed as a tie. With several data seeds each pair also
gets a `mean` row: the mean of its per-seed differences, with a stratified interval (each seed's eval trials
resampled on their own; `Difference.mean_over_sets`), and a `seeds t` row: the same mean with a t interval over the per-seed differences
(`Difference.across_sets`), which counts a seed's fits as draws too: a stratified interval holds every fitted
model fixed, and one fit per seed moves by its own noise (RESULTS, "Fit-to-fit noise"). `--reuse` keeps a baseline's run folder
from an earlier call when it ran on the same data (NWB checksums) with the same resolved config and seed
(a config field added since then matches when it holds the behaviour the run had: its default, or
the config's BEFORE_FIELD value); the run's recorded package versions and
machine are not matched, but each that differs from now is printed under the tables, as a rerun here may not
reproduce that run's numbers exactly. A run that cannot be reused is fitted again, replacing its folder, and the
call says why (a variant named relative to a profile that has changed since is the usual cause: pin its values);
`--reuse-only` fits nothing and stops in one line at the first run that cannot be reused.
`--variant LABEL=BASELINE:KEY=VALUE,...` adds a baseline run with config values other than its default under
its own name (e.g. `gnocchi_bw1=gnocchi:mmd_bandwidth=1`, then `--baselines ...,gnocchi_bw1` and pairs with it):
a candidate default measured beside the default on the same trials.
`--arm LABEL=RUN,RUN,...` groups runs of one configuration at several model seeds (`gnocchi,gnocchi_seed1,...`)
into one model, LABEL: its row is the mean over its fits (its fit time the sum), a pair with it has a Welch t
interval that adds the fits' spread to the eval trials' (`Difference.between_arms`; two arms of one baseline at
the same model seeds are paired by seed, so the noise their fits share cancels; a paired interval between
single fits holds each fitted model fixed, so it says nothing of how far a fit at another model seed would
move), a table gives each arm's fit-to-fit spread, and a last one the pairs with an arm on internal validation
(Welch over the fits, paired by seed where arms of one baseline share seeds).
`--realism KEY=VALUE,...` generates the stand-ins with `Realism` knobs overridden (as in bench_realism.py):
a calibration probe with the models in the loop, in its own data and run folders.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_args import seed_list, seeds_text  # noqa: E402

METRICS = ("co-bps", "vel R2", "psth R2", "fp-bps")
DATASET_METRICS = ("tp corr",)  # printed when a dataset's runs have it (dmfc_rsg)
# what the 'mean' and 'seeds t' rows of pair_rows are (every table of them says it)
PAIR_CAPTION = ("'mean': the mean over data seeds, a stratified interval, each seed's fits held fixed; 'seeds t': the "
                "same mean with a t interval over the seeds' differences, which includes the fits' own noise")
GAP_METRICS = ("co-bps", "fp-bps")


def parse_variants(raw: list[str]) -> dict[str, tuple[str, dict]]:
    """`LABEL=BASELINE:KEY=VALUE,...` strings into {label: (baseline, overrides)}."""
    from nlb_suite.baseline_api import parse_overrides

    variants = {}
    for item in raw:
        label, _, rest = item.partition("=")
        baseline, sep, values = rest.partition(":")
        if not label or not baseline or not sep or not values:
            raise SystemExit(f"--variant: {item!r} is not LABEL=BASELINE:KEY=VALUE,...")
        variants[label] = (baseline, parse_overrides(values.split(",")))
    return variants


def reusable(run_dir: Path, spec, data_sha256: dict[str, str]):
    """The record of an earlier run of this baseline on data with these checksums, with this resolved config and
    seed and scored, or None."""
    return reuse_check(run_dir, spec, data_sha256)[0]


def reuse_check(run_dir: Path, spec, data_sha256: dict[str, str]) -> tuple[object | None, str]:
    """(the reusable record, "") or (None, why not: no run folder, other data, another seed, no scores, or the
    config keys whose values differ, then -> now)."""
    import dataclasses

    import yaml

    from nlb_suite.baseline_api import get_baseline, resolve_config
    from nlb_suite.errors import NLBInputError
    from nlb_suite.runs import read_run, resolve_device

    try:
        record = read_run(run_dir)
    except NLBInputError as exc:
        return None, "no run folder there" if not (run_dir / "run.json").exists() else f"not a readable run: {exc}"
    config, _ = resolve_config(get_baseline(spec.baseline), spec.dataset, 5, spec.overrides, None,
                               resolve_device(spec.device))
    now = yaml.safe_load(yaml.safe_dump(dataclasses.asdict(config)))
    then = record.config.get("config") or {}
    # a field added since the run counts as the same when it holds the behaviour the run had: its default,
    # unless the config names another (BEFORE_FIELD: the default changed the behaviour when it came)
    before = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    before.update(getattr(type(config), "BEFORE_FIELD", {}))
    added = {k: v for k, v in now.items() if k not in then and k in before and v == before[k]}
    recorded = {**then, **added}
    if record.info.get("data_sha256") != data_sha256:
        return None, "it ran on other data (NWB checksums)"
    if record.info.get("seed") != spec.seed:
        return None, f"it ran at model seed {record.info.get('seed')}"
    if recorded != now:
        keys = sorted(k for k in set(recorded) | set(now) if recorded.get(k, "-") != now.get(k, "-"))
        return None, "its config differs: " + ", ".join(
            f"{k} {recorded.get(k, '(unset)')} -> {now.get(k, '(unset)')}" for k in keys)
    if record.metrics is None:
        return None, "it has no scores"
    return record, ""


def model_of(name: str) -> tuple[str, int]:
    """`ndt` -> ("ndt", 0); `ndt_seed2` -> ("ndt", 2): a further model seed of a baseline, in its own run folder."""
    match = re.fullmatch(r"(.+)_seed(\d+)", name)
    return (match[1], int(match[2])) if match else (name, 0)


def baseline_of(name: str, variants: dict[str, tuple[str, dict]]) -> tuple[str, dict, int]:
    """(baseline, config overrides, model seed) of a --baselines name: `ndt_w96_seed2` -> ("ndt", {...}, 2)."""
    label, model_seed = model_of(name)
    baseline, overrides = variants.get(label, (label, {}))
    return baseline, overrides, model_seed


def parse_groups(raw: list[str], flag: str, default: str | None) -> dict[str, tuple[str, ...]]:
    """`[LABEL=]A,B,...` strings into {label: members}; an unlabelled one is named `default` (None: a label is
    required)."""
    groups = {}
    form = "LABEL=RUN,..." if default is None else "[LABEL=]BASELINE,..."
    for item in raw:
        label, sep, members = item.rpartition("=")
        label = label if sep else default
        names = tuple(n for n in members.split(",") if n)
        if not label or not names or label in groups:
            raise SystemExit(f"{flag}: {item!r} is not {form} with a label not used before")
        groups[label] = names
    return groups


def parse_ensembles(raw: list[str]) -> dict[str, tuple[str, ...]]:
    """`[LABEL=]A,B,...` strings into {label: members}; an unlabelled one is named 'ensemble'."""
    return parse_groups(raw, "--ensemble", "ensemble")


def parse_arms(raw: list[str]) -> dict[str, tuple[str, ...]]:
    """`LABEL=RUN,RUN,...` strings into {label: runs}: one configuration fitted at several model seeds."""
    return parse_groups(raw, "--arm", None)


def check_arms(arms: dict[str, tuple[str, ...]], names: list[str], variants: dict[str, tuple[str, dict]],
               ensembles: dict[str, tuple[str, ...]]) -> None:
    """One-line errors, before any fit, for arms that are not one configuration at several model seeds: a label
    that is not a plain name or names a baseline, variant, run or ensemble; runs not fitted in this call, fewer
    than two, or runs of different baselines or config values, or at one model seed twice."""
    from nlb_suite.baseline_api import available_baselines

    taken = set(names) | set(variants) | set(available_baselines()) | set(ensembles)
    for label, runs in arms.items():
        if not re.fullmatch(r"[A-Za-z0-9_]+", label) or model_of(label)[0] in taken or label in taken:
            raise SystemExit(f"--arm: label {label!r} must be letters, digits and '_' and not name a baseline, "
                             "variant, run of --baselines or ensemble")
        if missing := [r for r in runs if r not in names]:
            raise SystemExit(f"--arm {label}: {missing[0]!r} is not in --baselines (an arm's runs are fitted or "
                             "reused by this call)")
        configs = {r: baseline_of(r, variants) for r in runs}
        if len(runs) < 2 or len({c[2] for c in configs.values()}) < len(runs):
            raise SystemExit(f"--arm {label}: needs at least 2 runs at different model seeds, got {', '.join(runs)}")
        if len({(c[0], repr(sorted(c[1].items()))) for c in configs.values()}) > 1:
            raise SystemExit(f"--arm {label}: its runs must be one configuration (one baseline or variant at several "
                             f"model seeds), got {', '.join(runs)}")


def check_ensembles(ensembles: dict[str, tuple[str, ...]], names: list[str],
                    sizes: tuple[int | None, int | None], variants: dict[str, tuple[str, dict]], *, dataset: str,
                    device: str) -> None:
    """One-line errors, before any fit, for ensembles the run could not build or label unambiguously: members
    not fitted in this call (or named twice), sizes outside 1..members, a size to choose among members that
    refit on all train trials (their config on `dataset` and `device`: no trial is left to choose on), and
    labels that are not plain names (pairs split on '-', folders on '/') or that name a baseline, variant or
    fitted run (its folder would be overwritten; 'smoothing'/'oracle' are the gap's references)."""
    from nlb_suite.baseline_api import available_baselines, get_baseline, resolve_config
    from nlb_suite.runs import resolve_device

    taken = set(names) | set(variants) | set(available_baselines())
    for label, members in ensembles.items():
        low = 1 if sizes[0] is None else sizes[0]
        high = len(members) if sizes[1] is None else sizes[1]
        if not re.fullmatch(r"[A-Za-z0-9_]+", label) or model_of(label)[0] in taken:
            raise SystemExit(f"--ensemble: label {label!r} must be letters, digits and '_' and not name a "
                             "baseline, variant or run of --baselines")
        if missing := [m for m in members if m not in names]:
            raise SystemExit(f"--ensemble {label}: {missing[0]!r} is not in --baselines (members are runs fitted "
                             "or reused by this call)")
        if len(set(members)) < len(members) or len(members) < 2:
            raise SystemExit(f"--ensemble {label}: needs at least 2 different runs, got {', '.join(members)}")
        if not 1 <= low <= high <= len(members):
            raise SystemExit(f"--ensemble-sizes {low}-{high}: {label} averages {len(members)} runs; sizes must lie "
                             "in 1..that count, lowest first")
        if low == high:
            continue
        for member in members:
            baseline, overrides, _ = baseline_of(member, variants)
            config, _ = resolve_config(get_baseline(baseline), dataset, 5, overrides, None, resolve_device(device))
            if getattr(config, "refit", False):
                raise SystemExit(f"--ensemble {label}: {member} refits on all train trials (refit: true), so no "
                                 "validation trial is left to choose the size on: give --ensemble-sizes K-K")


def parse_sizes(text: str) -> tuple[int | None, int | None]:
    """'3-5' -> (3, 5); '' -> (None, None): the ensemble sizes the validation choice may pick from."""
    if not text:
        return None, None
    match = re.fullmatch(r"(\d+)-(\d+)", text)
    if not match:
        raise SystemExit(f"--ensemble-sizes: {text!r} is not MIN-MAX (e.g. 3-5)")
    return int(match[1]), int(match[2])


def run_seed(dataset: str, trials: int, seed: int, baselines: list[str], work: Path, device: str,
             reuse: bool = False, ensembles: dict[str, tuple[str, ...]] | None = None, resamples: int = 1000,
             tag: str = "", variants: dict[str, tuple[str, dict]] | None = None,
             ensemble_sizes: tuple[int | None, int | None] = (None, None), checked: dict | None = None) -> dict:
    """Run every baseline on one stand-in (then, for each label of `ensembles`, `nlb-eval ensemble` of the runs it
    names, chosen on their internal validation, its size within `ensemble_sizes` (lowest, highest; None: no
    bound; equal bounds K: the top K by each run's own validation), in the folder of that label); return
    metrics, fit times, paired bootstrap draws, each ensemble's members and the rule that chose them, how each
    reused run's recorded versions and machine differ from this process's, and each run's internal-validation
    score and trials (`run_validation`). `checked`: each name's reusable record, as `reusable_runs` found them
    (--reuse-only), taken as they are instead of checked again."""

    from nlb_suite.datasets.tensors import load
    from nlb_suite.report.paired import paired_boot
    from nlb_suite.runs import (
        RunResult,
        data_checksums,
        execute,
        provenance_changes,
        read_run_info,
        resolve_device,
    )
    from nlb_suite.submission import read_submission

    data, out, specs = seed_specs(dataset, trials, seed, baselines, work, device, tag, variants)
    results, changed = {}, {}  # changed: a reused run's recorded versions and machine that differ from now
    data_sha256 = data_checksums(data) if reuse and checked is None else {}
    for name, spec in specs.items():
        run_dir = out / name
        t0 = time.perf_counter()
        if checked is not None or reuse:
            record, why = (checked[name], "") if checked is not None else reuse_check(run_dir, spec, data_sha256)
            if record is not None:
                results[name] = RunResult(run_dir, record.metrics, record.intervals, record.info["timings"])
                changed[name] = provenance_changes(record.info, resolve_device(device))
                recorded = f", recorded under other conditions: {'; '.join(changed[name])}" if changed[name] else ""
                print(f"  data seed {seed} {name}: reused {run_dir}{recorded}", file=sys.stderr, flush=True)
                continue
            if (run_dir / "run.json").exists():
                print(f"  data seed {seed} {name}: fitting again, which replaces {run_dir} ({why})", file=sys.stderr,
                      flush=True)
        results[name] = execute(spec, progress=False)
        print(f"  data seed {seed} {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    from nlb_suite.ensemble import build_ensemble

    low, high = ensemble_sizes  # one size: no choice to make, so runs need not share validation trials
    sizes = dict(size=low) if low is not None and low == high else dict(min_size=low, max_size=high)
    chosen = {}
    for label, members in (ensembles or {}).items():
        # the stand-in's folder, which `reusable` checked the members' data checksums against (the folder a
        # member recorded may carry an older generator key)
        run_dir, sel, metrics = build_ensemble([out / n for n in members], out / label, data=data, ci=0,
                                               overwrite=True, progress=False, **sizes)
        names = [m.path.name for m in sel.members]
        chosen[label] = (names, sel.rule)
        results[label] = RunResult(run_dir, metrics, None, {"fit_s": sum(results[n].timings["fit_s"] for n in names)})
        baselines = [*baselines, label]
        print(f"  data seed {seed} {label} of {', '.join(names)} ({sel.rule})", file=sys.stderr, flush=True)
    target = load(dataset, data, bin_ms=5, phase="val").target_dict()
    boot = paired_boot(target, [read_submission(out / n / "submission.h5") for n in baselines], n_boot=resamples)
    validation = {n: run_validation(read_run_info(out / n / "run.json")) for n in results}
    return {"metrics": {n: r.metrics for n, r in results.items()},
            "fit_s": {n: r.timings["fit_s"] for n, r in results.items()},
            "boot": dict(zip(baselines, boot)), "ensembles": chosen, "changed": changed, "validation": validation}


def run_validation(info: dict) -> dict | None:
    """A run's internal-validation score and trials from its run.json: `internal_validation`, or for a run that
    refit on every train trial its selection fit's (scored on the same split before the refit); None: none."""
    return info.get("internal_validation") or info.get("selection_fit")


def seed_specs(dataset: str, trials: int, seed: int, baselines: list[str], work: Path, device: str, tag: str = "",
               variants: dict[str, tuple[str, dict]] | None = None) -> tuple[Path, Path, dict]:
    """One data seed's stand-in folder (generated if missing), its models folder and the RunSpec of each name."""
    from bench_realism import stand_in

    from nlb_suite.runs import RunSpec

    data = stand_in(dataset, trials, seed, work / "realism", tag)
    out = work / "models" / f"{dataset}_{trials}_s{seed}{tag}_{data.name.rsplit('_', 1)[-1]}"
    specs = {}
    for name in baselines:
        baseline, overrides, model_seed = baseline_of(name, variants or {})
        specs[name] = RunSpec(baseline, dataset, data=data, out=out / name, seed=model_seed, device=device, ci=0,
                              overwrite=True, overrides=overrides)
    return data, out, specs


def reusable_runs(dataset: str, trials: int, seed: int, baselines: list[str], work: Path, device: str,
                  tag: str = "", variants: dict[str, tuple[str, dict]] | None = None) -> dict:
    """For --reuse-only, before any work: each name's reusable record for this data seed, or one line and exit
    code 2 naming the first run that could not be reused, and why."""
    from bench_realism import stand_in_root

    from nlb_suite.runs import data_checksums

    root = stand_in_root(dataset, trials, seed, work / "realism", tag)
    if not (root / "ground_truth.h5").exists():  # generating one would be work, and no run could be on it
        refuse_reuse(f"data seed {seed}: no stand-in of the current generator at {root}, so no run on it")
    data, out, specs = seed_specs(dataset, trials, seed, baselines, work, device, tag, variants)
    sha = data_checksums(data)
    records = {}
    for name, spec in specs.items():
        records[name], why = reuse_check(out / name, spec, sha)
        if why:
            refuse_reuse(f"data seed {seed} {name}: {out / name} cannot be reused ({why})")
    return records


def refuse_reuse(what: str) -> None:
    """--reuse-only's one line (stderr, exit code 2) when a run would have to be fitted."""
    print(f"bench_models.py: --reuse-only: {what}; nothing was fitted", file=sys.stderr)
    raise SystemExit(2)


def add_arms(res: dict, arms: dict[str, tuple[str, ...]], variants: dict[str, tuple[str, dict]] | None = None) -> None:
    """Each arm as a model of one data seed's results: its runs' mean of every metric and fit time and their mean
    on each shared resample (fits held fixed), and under "fits" each run's value of every metric, which a pair
    with the arm adds to its interval (`Difference.between_arms`); its baseline and model seeds say which arms
    pair by seed (`arms_pair`)."""
    import numpy as np

    from nlb_suite.report.arms import arm_values, exact_alone
    from nlb_suite.report.build import baseline_uses_seed

    res.setdefault("fits", {})
    res.setdefault("arm_seeds", {})  # (baseline, model seeds in order): arms of one baseline at the same seeds pair
    res["exact"] = {n: exact_alone(baseline_uses_seed(baseline_of(n, variants or {})[0]), n in res.get("ensembles", {}))
                    for n in res["metrics"]}  # a lone run is exact only without a random draw (smoothing, GPFA)
    for label, runs in arms.items():
        res["arm_seeds"][label] = (baseline_of(runs[0], variants or {})[0], tuple(model_of(r)[1] for r in runs))
        fits, boot = arm_values([res["metrics"][r] for r in runs], [res["boot"][r] or {} for r in runs],
                                [k for k in res["metrics"][runs[0]] or {}])
        res["metrics"][label] = {k: float(np.mean(v)) for k, v in fits.items()}
        res["fits"][label] = fits
        res["fit_s"][label] = float(np.sum([res["fit_s"][r] for r in runs]))  # all its fits, as an ensemble's
        res["boot"][label] = boot


def shared_validation(res: dict, runs: tuple[str, ...]) -> tuple[float, ...] | None:
    """The internal-validation co-bps of `runs` when every one validated on the same trials, else None."""
    from nlb_suite.report.arms import shared_validation as on_one_set

    return on_one_set([res["validation"].get(r) for r in runs])


def validation_pair_rows(per_seed: dict[int, dict], arms: dict[str, tuple[str, ...]],
                         pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Per data seed, for each pair with an arm: the difference of internal-validation co-bps (the mean over each
    side's fits, all on one set of validation trials) with Welch's t interval over the fits ('-' when the fits did
    not validate on the same trials): what a profile choice made on validation rests on. Arms of one baseline
    at the same model seeds are paired by seed (`arms_pair`)."""
    from nlb_suite.report.paired import Difference

    rows = []
    for a, b in pairs:
        if a not in arms and b not in arms:
            continue
        for s, res in per_seed.items():
            fits_a, fits_b = arms.get(a, (a,)), arms.get(b, (b,))
            lone = [x for x in (a, b) if x not in arms and not res.get("exact", {}).get(x, False)]
            both = None if lone else shared_validation(res, fits_a + fits_b)
            text = "-" if both is None else Difference.welch(both[:len(fits_a)], both[len(fits_a):],
                                                             paired=arms_pair(res, a, b)).text()
            rows.append([f"{a} - {b}", str(s), text])
    return rows


def spread_rows(per_seed: dict[int, dict], arms: dict[str, tuple[str, ...]],
                metrics: tuple[str, ...] = METRICS) -> list[list[str]]:
    """Per data seed and arm: the spread of its runs' scores on all eval trials, and of their internal-validation
    co-bps when every run validated on the same trials ('-' otherwise: the scores are not on one set)."""
    from nlb_suite.report.arms import spread_text

    rows = []
    for s, res in per_seed.items():
        for label, runs in arms.items():
            cells = [spread_text([(res["metrics"][r] or {}).get(k) for r in runs]) for k in metrics]
            valid = shared_validation(res, runs)
            cells.append("-" if valid is None else spread_text(valid))
            rows.append([str(s), label, str(len(runs)), *cells])
    return rows


def paired_parts(res: dict, a: str, b: str, metric: str):
    """(a - b on all eval trials, a's and b's values on the shared resamples) of one data seed, or, when a or b
    is an arm (`add_arms`), an `ArmPart` that adds each fit's value; None when either has no value for
    `metric`."""
    from nlb_suite.report.paired import ArmPart

    ba, bb = res["boot"][a].get(metric), res["boot"][b].get(metric)
    if ba is None or bb is None:
        return None
    value = res["metrics"][a][metric] - res["metrics"][b][metric]
    fits = res.get("fits", {})
    if a not in fits and b not in fits:
        return value, ba, bb
    if any(x not in fits and not res.get("exact", {}).get(x, False) for x in (a, b)):
        return None  # one fit of a trained model beside an arm: nothing estimates that fit's own noise
    fits_a, fits_b = ((fits[x][metric] if x in fits else (res["metrics"][x][metric],)) for x in (a, b))
    return ArmPart(value, fits_a, fits_b, ba, bb, paired=arms_pair(res, a, b))


def arms_pair(res: dict, a: str, b: str) -> bool:
    """Are arms a and b paired by seed: one baseline at the same model seeds in the same order
    (`nlb_suite.report.arms.pairs_by_seed`)?"""
    from nlb_suite.report.arms import pairs_by_seed

    seeds = res.get("arm_seeds", {})
    return a in seeds and b in seeds and pairs_by_seed(*seeds[a], *seeds[b])


def cell(*parts) -> str:
    """One data seed's paired difference, or with several the mean over them (`Difference.mean_over_sets`; with
    an arm, `Difference.between_arms`); '-' when a seed lacks the metric."""
    from nlb_suite.report.paired import ArmPart, Difference

    if any(p is None for p in parts):
        return "-"
    if isinstance(parts[0], ArmPart):
        return Difference.between_arms(parts).text()
    return Difference.mean_over_sets(parts).text()


def seeds_cell(*parts) -> str:
    """The mean over data seeds of a - b with a t interval over the seeds (`Difference.across_sets`); '-' when a
    seed lacks the metric."""
    from nlb_suite.report.paired import Difference

    if any(p is None for p in parts):
        return "-"
    return Difference.across_sets([p.value if hasattr(p, "value") else p[0] for p in parts]).text()


def scored_metrics(per_seed: dict[int, dict]) -> tuple[str, ...]:
    """The table's metrics: the four every dataset has, and tp corr where a run of these seeds has it."""
    extra = tuple(k for k in DATASET_METRICS
                  if any(k in (m or {}) for res in per_seed.values() for m in res["metrics"].values()))
    return METRICS + extra


def pair_rows(per_seed: dict[int, dict], a: str, b: str, label: str | None = None,
              metrics: tuple[str, ...] = METRICS) -> list[list[str]]:
    """Table rows of `a - b` (named `label`, default "a - b"): one per data seed, then with several seeds the
    `mean` row (each seed's eval trials resampled on their own) and the `seeds t` row (the seeds as the units:
    their differences' spread, which a refit and new data would move within)."""
    label = label or f"{a} - {b}"
    rows = [[label, str(s), *[cell(paired_parts(res, a, b, k)) for k in metrics]] for s, res in per_seed.items()]
    if len(per_seed) > 1:
        parts = {k: [paired_parts(res, a, b, k) for res in per_seed.values()] for k in metrics}
        rows.append([label, "mean", *[cell(*parts[k]) for k in metrics]])
        rows.append([label, "seeds t", *[seeds_cell(*parts[k]) for k in metrics]])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze_small")
    ap.add_argument("--trials", type=int, default=None, help="train+val trials (default: the real count)")
    ap.add_argument("--data-seeds", type=seed_list, default="0,1,2")
    ap.add_argument("--baselines", default="oracle,true_psth,smoothing,gpfa,lfads")
    ap.add_argument("--pairs", default="lfads-gpfa,lfads-smoothing,gpfa-smoothing,ndt-smoothing,stndt-smoothing,"
                    "ndt-gpfa,stndt-gpfa,ndt-lfads,stndt-lfads,stndt-ndt,gnocchi-smoothing,gnocchi-gpfa,gnocchi-lfads,"
                    "ensemble-lfads,ensemble-ndt,ensemble-stndt,ensemble-gpfa")
    ap.add_argument("--ensemble", action="append", default=[], metavar="[LABEL=]BASELINE,...",
                    help="comma-separated baselines whose runs `nlb-eval ensemble` combines per data seed (members "
                    "and size chosen on internal validation, or the top K by each run's own validation with "
                    "--ensemble-sizes K-K), compared as LABEL (default 'ensemble'); repeatable")
    ap.add_argument("--ensemble-sizes", default="", metavar="MIN-MAX",
                    help="the sizes each ensemble's validation choice may pick from, e.g. 3-5 (default: any); "
                    "K-K: the top K runs by their own validation, no size chosen, so runs need not share "
                    "validation trials")
    ap.add_argument("--arm", action="append", default=[], metavar="LABEL=RUN,RUN,...",
                    help="runs of --baselines that are one configuration at several model seeds (e.g. "
                    "gnocchi,gnocchi_seed1,gnocchi_seed2), compared as LABEL: the mean over its fits, with "
                    "intervals that add the fits' spread to the eval trials' (Welch t: wide with few fits), and "
                    "the fits' spread; repeatable")
    ap.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples of the eval trials")
    ap.add_argument("--reuse", action="store_true", help="keep earlier run folders made on the same data with the "
                    "same resolved config and seed (and list those recorded with other versions or machine)")
    ap.add_argument("--reuse-only", action="store_true", help="--reuse, and fit nothing: one line and exit code 2 "
                    "when a run cannot be reused (why: no stand-in or run folder, other data, seed or config "
                    "values, no scores), before any work (the tables again from earlier runs, never a long fit "
                    "by mistake)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--realism", default="", help="KEY=VALUE,... Realism knob overrides (a calibration probe with "
                    "models in the loop; see bench_realism.py)")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=BASELINE:KEY=VALUE,...",
                    help="a baseline run with other config values, named LABEL in --baselines and --pairs")
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()
    variants = parse_variants(args.variant)

    from bench_realism import apply_realism

    tag = apply_realism(args.realism)

    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.report.paired import gap_share
    from nlb_suite.table import print_table

    trials = args.trials or get_dataset(args.dataset).n_train_val
    names = args.baselines.split(",")
    seeds = args.data_seeds
    ensembles = parse_ensembles(args.ensemble)
    sizes = parse_sizes(args.ensemble_sizes)
    arms = parse_arms(args.arm)
    check_ensembles(ensembles, names, sizes, variants, dataset=args.dataset, device=args.device)  # before any fit, not after the first data seed's minutes
    check_arms(arms, names, variants, ensembles)
    arms = {label: tuple(sorted(runs, key=lambda r: model_of(r)[1])) for label, runs in arms.items()}  # by seed
    checked = {}  # --reuse-only: every seed checked before any scoring, so a refusal comes first
    if args.reuse_only:
        checked = {s: reusable_runs(args.dataset, trials, s, names, Path(args.work), args.device, tag, variants)
                   for s in seeds}
    per_seed = {s: run_seed(args.dataset, trials, s, names, Path(args.work), args.device, args.reuse, ensembles,
                            args.resamples, tag, variants, sizes, checked.get(s))
                for s in seeds}
    for res in per_seed.values():
        add_arms(res, arms, variants)
    names = [*names, *ensembles, *arms]
    metrics = scored_metrics(per_seed)
    for s, res in per_seed.items():
        for label, (chosen, rule) in res["ensembles"].items():
            print(f"data seed {s}: {label} averages {', '.join(chosen)} ({rule})")

    print(f"\nsynthetic {args.dataset}, {trials} train+val trials, 5 ms, phase val; data seeds {seeds_text(seeds)}; "
          "default configs for the device, no tuning on eval trials"
          + (f"; Realism overrides {args.realism}" if args.realism else "")
          + "".join(f"; {label} = {b} with {v}" for label, (b, v) in variants.items()))
    rows = []
    for s, res in per_seed.items():
        m = res["metrics"]
        for n in names:
            gaps = []
            for k in GAP_METRICS:
                share = gap_share(*((m.get(x) or {}).get(k) for x in (n, "smoothing", "oracle")))
                gaps.append("-" if share is None else f"{100 * share:.0f}%")  # "-": no run, or no gap to close
            rows.append([str(s), n, *[f"{m[n][k]:.4f}" if k in m[n] else "-" for k in metrics], *gaps,
                         f"{res['fit_s'][n]:.0f}"])
    print_table(["seed", "model", *metrics, "co-bps gap closed", "fp-bps gap closed", "fit s"], rows)

    rows, pairs = [], []
    for pair in filter(None, args.pairs.split(",")):  # --pairs "" prints no pairs
        a, _, b = pair.partition("-")
        if a not in names or b not in names:
            continue
        pairs.append((a, b))
        rows += pair_rows(per_seed, a, b, metrics=metrics)
    print("\npaired differences (95% paired bootstrap interval over eval trials; 'tie' = interval includes 0; "
          + PAIR_CAPTION
          + ("; an arm is the mean of its fits, and a pair with one has a Welch t interval that adds its fits' "
             "spread to the trials' (arms of one baseline at the same model seeds: paired by seed; '-' beside one fit "
             "of a trained model, whose own noise nothing estimates)" if arms else "")
          + ("; tp corr: more negative is better, so a - b > 0 means a is worse" if "tp corr" in metrics else "")
          + ")")
    print_table(["pair", "seed", *metrics], rows)
    if arms:
        print("\nthe spread of each arm's fits: SD over its model seeds (min..max) on all eval trials, and of "
              "internal-validation co-bps where its fits validated on the same trials (e.g. GNOCCHI, LFADS with "
              "--variant ...:valid_seed=0)")
        print_table(["seed", "arm", "fits", *metrics, "valid co-bps"], spread_rows(per_seed, arms, metrics))
        if rows := validation_pair_rows(per_seed, arms, pairs):
            print("\npairs with an arm on internal validation: mean co-bps difference on the validation trials every "
                  "fit held back, with Welch's t interval over the fits ('-': the fits validated on other trials)")
            print_table(["pair", "seed", "valid co-bps"], rows)
    rows = [[str(s), n, "; ".join(c)] for s, res in per_seed.items() for n, c in res["changed"].items() if c]
    if rows:
        print("\nreused runs recorded with other package versions or another machine (a rerun here may not "
              "reproduce their numbers exactly)")
        print_table(["seed", "model", "recorded (now)"], rows)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_models.py")
