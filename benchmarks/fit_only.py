"""Fit one baseline on a stand-in and stop after fit(): for questions a fit's internal validation decides.

    python benchmarks/fit_only.py --dataset mc_maze_large --data-seed 9 --baseline gnocchi --seed 1 \
        --set ae_lr_schedule=none --out benchmarks/_work/fit_only/gnocchi_aeflat_seed1

The fit is seeded and configured as `nlb-eval run` (and bench_models.py) would do it on the same stand-in
(bench_realism.stand_in), through the same `runs.fit_model`, and writes what its fit writes into --out
(checkpoints, curves, a GNOCCHI fit's gnocchi_guidance.json with the internal-validation score of every
guidance strength), and `fit.json`: what was fitted (dataset, data seed, baseline, model seed, the --set values
and the resolved config with its sources), the stand-in's checksums, the internal validation trials' ids,
package versions, machine and fit seconds, so that the folder alone says how to rebuild its model. It predicts
no trial and scores nothing, so no eval trial is touched. On mc_maze_large GNOCCHI's fit takes a quarter of
the time of a whole run (predicting all 500 trials is the rest).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

FIT_RECORD = "fit.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze_small")
    ap.add_argument("--trials", type=int, default=None, help="train+val trials (default: the real count)")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--seed", type=int, default=0, help="the model seed")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config value (repeatable)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (its profile, as `nlb-eval run` picks it)")
    ap.add_argument("--out", required=True, help="a new folder for what the fit writes")
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()

    from nlb_suite.baseline_api import parse_overrides
    from nlb_suite.errors import NLBInputError

    try:
        overrides = parse_overrides(args.set)
    except NLBInputError as exc:
        ap.error(str(exc))
    out = Path(args.out)
    if out.exists():
        ap.error(f"--out {out} exists: give a new folder")

    from bench_realism import stand_in

    from nlb_suite.baseline_api import RunContext, get_baseline, resolve_config_origins
    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.datasets.tensors import load
    from nlb_suite.jsonio import write_json
    from nlb_suite.outputs import discard_temp_dir, make_temp_dir, replace_folder
    from nlb_suite.runs import (
        data_checksums,
        fit_model,
        provenance,
        resolve_device,
        trial_sets,
    )

    try:  # an unknown dataset, baseline or device: one line, before the stand-in is made
        trials = args.trials or get_dataset(args.dataset).n_train_val
        cls = get_baseline(args.baseline)
        device = resolve_device(args.device)
    except NLBInputError as exc:
        ap.exit(2, f"fit_only.py: {exc}\n")
    data = stand_in(args.dataset, trials, args.data_seed, Path(args.work) / "realism")
    train, _ = trial_sets(load(args.dataset, data, bin_ms=5, phase="val", progress=False))
    work = make_temp_dir(out)  # renamed onto --out once the fit is done: a failed fit leaves nothing behind
    try:
        config, sources, origins = resolve_config_origins(cls, args.dataset, 5, overrides, None, device)
        model, fit_s = fit_model(cls, config, RunContext.for_trials(args.dataset, 5, train, seed=args.seed,
                                                                    device=device, data_dir=data, run_dir=work,
                                                                    synthetic=True), train, origins)
        valid = model.validation_trials()
        write_json(work / FIT_RECORD, {
            **provenance(device), "dataset": args.dataset, "bin_ms": 5, "phase": "val",
            "trials": trials, "data_seed": args.data_seed, "data_dir": str(Path(data).absolute()),
            "data_sha256": data_checksums(data), "baseline": args.baseline, "seed": args.seed, "device": device,
            "overrides": overrides, "config": dataclasses.asdict(config), "config_sources": sources,
            "n_train_trials": train.n_trials, "fit_s": fit_s,
            "validation_trial_ids": None if valid is None else train.trial_ids[valid].tolist()})
    except BaseException as exc:
        discard_temp_dir(work)
        if isinstance(exc, NLBInputError):
            ap.exit(2, f"fit_only.py: {exc}\n")
        raise
    replace_folder(work, out, replacing=False)
    print(f"fitted {args.baseline} (seed {args.seed}{''.join(f', {k}={v}' for k, v in overrides.items())}) "
          f"on {data}: {out}")


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "fit_only.py")
