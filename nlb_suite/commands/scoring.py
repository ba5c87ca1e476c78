"""Scoring commands: `evaluate` (exact NLB metrics), `validate` (submission checks), `package` (EvalAI file)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from ..errors import NLBInputError, input_error
from ..jsonio import write_json

EVALAI_CHALLENGE = 1256
EVALAI_PHASES = {"val": 2539, "test": 2540}
LARGE_BYTES = 300 * 1024 * 1024


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Score, print the tables, and write the --json result (`--json -`: the JSON on stdout, the tables on stderr)."""
    import contextlib

    from ..jsonio import dumps_json
    from ..metrics_evaluate import check_bootstrap
    from ..outputs import claim_output

    check_bootstrap(args.ci, args.seed, args.level)
    if args.compare and not args.ci:
        raise NLBInputError("--compare: needs --ci N (the paired bootstrap's resample count)")
    if args.json and args.json != "-":  # before the scoring; only an earlier `evaluate --json` file is replaced
        claim_output(Path(args.json), "--json", "evaluate --json result", is_evaluate_json, args.overwrite,
                     folder=False)
    with contextlib.redirect_stdout(sys.stderr) if args.json == "-" else contextlib.nullcontext():
        out = _evaluate_and_print(args)
    if args.json == "-":
        sys.stdout.write(dumps_json(out))
    elif args.json:
        write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


def _evaluate_and_print(args: argparse.Namespace) -> Any:
    """The scores as tables on stdout; returns what --json writes."""
    import numpy as np

    from ..metrics_evaluate import evaluate_report
    from ..table import print_table

    report = evaluate_report(args.target, args.submission, ci=args.ci, seed=args.seed, level=args.level)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    intervals = {k: v for d in report.intervals for k, v in d.items()}
    rows = []
    for d in report.results:
        (split, metrics), = d.items()
        for name, val in metrics.items():
            row = [split, name, val]
            if args.ci:
                row += intervals[split][name]
            rows.append(row)
    level = f"{100 * args.level:g}%"
    headers = ["split", "metric", "value"] + ([f"{level} lo", f"{level} hi"] if args.ci else [])
    print_table(headers, rows)
    if args.ci:
        print(f"(bootstrap over eval trials: {args.ci} resamples, seed {args.seed}; same seed = paired resamples)")
    if args.per_neuron:
        print()
        prows = []
        for key, g in report.groups.items():
            v = g.per_neuron_co_bps
            prows.append([key, len(v), float(np.nanmedian(v)), float(np.nanmin(v)), float(np.nanmax(v)),
                          int(np.sum(v < 0))])
        print_table(["group", "held-out neurons", "median co-bps", "min", "max", "< 0"], prows)
    paired = None
    if args.compare:
        from ..metrics_evaluate import compare

        other = evaluate_report(args.target, args.compare)
        paired = compare(report, other, args.ci, args.seed, args.level)
        print()
        print(f"paired bootstrap, A = {args.submission}, B = {args.compare} (same resamples of eval trials):")
        print_table(["split", "metric", "A", "B", "A - B", f"{level} lo", f"{level} hi", "P(A > B)"], paired)
    truth = None
    if args.truth:
        from ..metrics_truth import submission_truth_scores
        from ..submission import read_submission

        truth = submission_truth_scores(Path(args.truth), read_submission(args.submission))
        print("\nground truth (eval trials; state R2 needs the model's latents: see `nlb-eval run`):")
        print_table(["group", "rate R2 (all units)", "held-in", "held-out"],
                    [[k, v["rate R2"], v["rate R2 held-in"], v["rate R2 held-out"]] for k, v in truth.items()])
    if args.ci or args.per_neuron or truth is not None:
        out: Any = {"results": report.results}
        if args.ci:
            out.update(intervals=report.intervals,
                       bootstrap={"resamples": args.ci, "seed": args.seed, "level": args.level})
        if paired is not None:
            out["compare"] = {"submission_b": args.compare, "rows": [
                dict(zip(["split", "metric", "a", "b", "a_minus_b", "lo", "hi", "p_a_gt_b"], r))
                for r in paired]}
        if args.per_neuron:
            out["per_neuron_co_bps"] = {k: g.per_neuron_co_bps for k, g in report.groups.items()}
        if truth is not None:
            out["truth"] = truth
    else:
        out = report.results
    return out


def is_evaluate_json(path: Path) -> bool:
    """A file `evaluate --json` wrote: a regular file holding nlb_tools' result list, bare or under "results"."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 256 * 2**20:
        return False
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    results = obj.get("results") if isinstance(obj, dict) else obj
    return (isinstance(results, list) and bool(results)
            and all(isinstance(d, dict) and len(d) == 1 and isinstance(next(iter(d.values())), dict) for d in results))


def _data_folder(data: Path, name: str) -> Path:
    """The dataset's folder under DIR: DIR/<dandiset>/sub-<subject>, DIR/<name>, or DIR itself."""
    from ..datasets.specs import DATASETS

    spec = DATASETS[name]
    for cand in (data / spec.dandiset / f"sub-{spec.subject}", data / name):
        if cand.exists():
            return cand
    return data


def _expected_from_data(data: str, phase: str, groups: list[str]) -> dict:
    """Shapes each group must have, from the dataset's own tensors (nlb_suite.datasets.load)."""
    from ..submission import GROUPS, expected_from_tensors, group_dataset

    try:
        from ..datasets import load
    except ImportError:
        raise NLBInputError("--data: validating against a dataset folder is not available yet "
                            "(nlb_suite.datasets.load is missing); use --target T.h5") from None
    if not Path(data).exists():
        raise input_error(data, "folder not found")
    out = {}
    for key in groups:
        if key not in GROUPS:
            continue
        name, bin_ms = group_dataset(key)
        t = load(name, _data_folder(Path(data), name), bin_ms=bin_ms, phase=phase, include_psth=False)
        from ..datasets.specs import get_dataset

        out[key] = expected_from_tensors(t.train_input["train_spikes_heldin"].shape,
                                         t.train_input["train_spikes_heldout"].shape,
                                         t.eval_input["eval_spikes_heldin"].shape,
                                         get_dataset(name).fp_bins(bin_ms))
    return out


def _expected_from_target_file(path: str) -> dict:
    import h5py

    from ..submission import expected_from_target

    p = Path(path)
    if not p.exists():
        raise input_error(path, "file not found")
    if p.is_dir() or not h5py.is_hdf5(p):
        raise input_error(path, "not an HDF5 file")
    try:
        with h5py.File(p, "r") as f:
            out = expected_from_target(f, path)
    except OSError as exc:
        raise input_error(path, f"unreadable HDF5 file ({exc})") from None
    if not out:
        raise input_error(path, "no dataset group with eval_spikes_heldout", "an NLB eval target file")
    return out


def _report_validation(v, where: str) -> int:
    for w in v.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for p in v.problems:
        print(p)
    if v.ok:
        print(f"{where}: valid")
        return 0
    print(f"{where}: INVALID ({len(v.problems)} problem{'s' if len(v.problems) != 1 else ''})")
    return 1


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..submission import read_submission, validate_submission

    if args.data and args.target:
        raise NLBInputError("--target and --data: give one of them, not both")
    data = read_submission(args.submission)
    expected = None
    if args.target:
        expected = _expected_from_target_file(args.target)
    elif args.data:
        expected = _expected_from_data(args.data, args.phase, list(data))
    return _report_validation(validate_submission(data, args.submission, expected), args.submission)


def _resolve_input(item: str) -> tuple[Path, Optional[dict]]:
    """(submission file, its run's run.json or None) for a run folder, a run's submission.h5 or a plain file."""
    from ..runs import read_run_info

    p = Path(item)
    if not p.exists():
        raise input_error(item, "no such file or folder", "a submission .h5 file or a run folder")
    if p.is_dir():
        if not (p / "submission.h5").is_file():
            raise input_error(item, "run folder without submission.h5", "a submission .h5 file or a run folder")
        p = p / "submission.h5"
    run_json = p.parent / "run.json"
    return p, (read_run_info(run_json) if p.name == "submission.h5" and run_json.is_file() else None)


def package_phase(inputs: list[tuple[Path, Optional[dict]]], phase: Optional[str]) -> str:
    """The phase of a package: the one its runs were made for (mixing is an error); --phase for plain files."""
    from_runs: dict[str, list[str]] = {}
    for path, info in inputs:
        if info is not None:
            from_runs.setdefault(info["phase"], []).append(str(path.parent))
    if len(from_runs) > 1:
        listed = "; ".join(f"{ph}: {', '.join(runs)}" for ph, runs in from_runs.items())
        raise NLBInputError(f"package: runs of different phases ({listed}) (expected runs of one phase)")
    if from_runs:
        (run_phase, runs), = from_runs.items()
        if phase is not None and phase != run_phase:
            raise NLBInputError(f"--phase {phase}: {runs[0]} is a phase {run_phase} run (run.json) "
                                f"(expected --phase {run_phase} or no --phase)")
        return run_phase
    if phase is None:
        raise NLBInputError(f"--phase: {inputs[0][0]} has no run.json saying which phase it was made for "
                            "(expected --phase val or --phase test)")
    return phase


def is_package_output(path: Path) -> bool:
    """A file `nlb-eval package` wrote: its manifest beside it names it and nlb_suite."""
    try:
        manifest = json.loads(manifest_path(path).read_text())
        return manifest["file"] == path.name and manifest["tool"]["name"] == "nlb_suite"
    except (OSError, ValueError, KeyError, TypeError):
        return False


def manifest_path(out: Path) -> Path:
    """NAME.manifest.json beside NAME.h5."""
    return out.with_name(out.stem + ".manifest.json")


def claim_package_out(out: Path, overwrite: bool, flag: str = "--out") -> None:
    """Refuse a package path before any work unless new, or (with --overwrite) an earlier package."""
    from ..outputs import claim_output

    if out.suffix != ".h5":
        raise input_error(str(out), f"{flag}: not an .h5 path", "submissions/NAME.h5")
    if not claim_output(out, flag, "packaged submission", is_package_output, overwrite, folder=False):
        claim_output(manifest_path(out), flag, "package manifest", lambda p: False, overwrite, folder=False)



def upload_command(path: Path, phase: str = "test", size: Optional[int] = None) -> str:
    """The EvalAI CLI line that uploads `path` (`--large` over 300 MB)."""
    size = path.stat().st_size if size is None else size
    cmd = f"evalai challenge {EVALAI_CHALLENGE} phase {EVALAI_PHASES[phase]} submit --file {path}"
    return cmd + (" --large" if size > LARGE_BYTES else "")


def _cmd_package(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import __version__
    from ..h5io import atomic_path, sha256_file
    from ..submission import (
        GROUPS,
        combine_submissions,
        read_submission,
        validate_submission,
        write_submission,
    )
    from ..table import print_table

    out = Path(args.out)
    claim_package_out(out, args.overwrite)
    inputs = [_resolve_input(i) for i in args.inputs]
    phase = package_phase(inputs, args.phase)
    synthetic = [str(p.parent) for p, info in inputs if info is not None and info.get("synthetic")]
    paths = [p for p, _ in inputs]
    merged = combine_submissions((str(p), read_submission(p)) for p in paths)
    order = {k: i for i, k in enumerate(GROUPS)}
    merged = {k: merged[k] for k in sorted(merged, key=lambda k: order.get(k, len(order)))}
    for arrays in merged.values():
        if isinstance(arrays, dict):
            for name, arr in arrays.items():
                if np.issubdtype(np.asarray(arr).dtype, np.floating):
                    with np.errstate(over="ignore"):
                        arrays[name] = np.asarray(arr, dtype=np.float32)
    expected = _expected_from_target_file(args.target) if args.target else None
    v = validate_submission(merged, " + ".join(str(p) for p in paths) if len(paths) > 1 else str(paths[0]),
                            expected)
    v.warnings = [w for w in v.warnings if "EvalAI files are float32" not in w]
    if not v.ok:  # every problem on stdout, the verdict as the one error line
        _report_validation(v, "merged submission")
        n = len(v.problems)
        raise NLBInputError(f"{v.problems[0]}" + (f" (and {n - 1} more problem{'s' if n > 2 else ''} above)" if n > 1
                                                  else "") + f"; nothing written to {out}")
    manifest_file = manifest_path(out)
    with atomic_path(out) as tmp:
        write_submission(merged, tmp)
        check = validate_submission(read_submission(tmp), str(out), expected)
        if not check.ok:  # pragma: no cover - a write that reads back differently
            raise input_error(str(out), f"written file does not validate: {check.problems[0]}")
        size, digest = tmp.stat().st_size, sha256_file(tmp)
        manifest = {
            "file": out.name, "sha256": digest, "size_bytes": size,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tool": {"name": "nlb_suite", "version": __version__},
            "sources": [str(p) for p in paths],
            "datasets": {k: {n: {"shape": list(a.shape), "dtype": "float32"} for n, a in arrs.items()}
                         for k, arrs in merged.items()},
            "phase": phase, "synthetic_runs": synthetic,
            "evalai": None if synthetic else {"challenge": EVALAI_CHALLENGE, "phase": EVALAI_PHASES[phase],
                                              "upload": upload_command(out, phase, size)},
        }
        write_json(manifest_file, manifest)
    rows = [[k, ", ".join(n.replace("_rates", "") for n in arrs), "x".join(map(str, arrs["eval_rates_heldout"].shape))]
            for k, arrs in merged.items()]
    print_table(["group", "arrays", "eval held-out shape"], rows)
    for w in v.warnings:  # after the write: a failed write is one error line, nothing else
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out} ({size / 1e6:.1f} MB, sha256 {digest[:12]}...) and {manifest_file}")
    if synthetic:
        print(f"note: built from synthetic data ({', '.join(synthetic)}): for local scoring only, e.g. "
              f"nlb-eval evaluate --target TARGET.h5 --submission {out}; EvalAI scores real data, so no upload "
              "command")
        return 0
    print(f"phase {phase}; upload with:")
    print(f"  {upload_command(out, phase, size)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the evaluate, validate and package commands."""
    p = sub.add_parser("evaluate", help="score a submission against an eval target (nlb_tools-identical metrics)")
    p.add_argument("--target", required=True, help="eval target .h5 (nlb_tools layout, e.g. eval_data_test.h5)")
    p.add_argument("--submission", required=True, help="submission .h5 (one group per dataset)")
    p.add_argument("--json", metavar="OUT", help="write the result list (nlb_tools format) as JSON (a new file, or "
                   "an earlier --json result with --overwrite; '-': on stdout, the tables then go to stderr)")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier --json result at OUT")
    p.add_argument("--ci", type=int, default=0, metavar="N", help="bootstrap N resamples of eval trials")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--level", type=float, default=0.95, help="confidence level (default 0.95)")
    p.add_argument("--per-neuron", action="store_true", help="also report co-bps of each held-out neuron")
    p.add_argument("--compare", metavar="B.h5", help="paired bootstrap of submission - B (needs --ci)")
    p.add_argument("--truth", metavar="DIR", help="synthetic data folder the target was built from (phase val): "
                   "also score rate R2 against its ground_truth.h5")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("validate", help="check a submission file for every mistake before upload")
    p.add_argument("submission", help="submission .h5")
    p.add_argument("--target", help="eval target .h5 to check shapes against")
    p.add_argument("--data", metavar="DIR", help="dataset folder (NWB files) to check shapes against")
    p.add_argument("--phase", choices=sorted(EVALAI_PHASES), default="val", help="phase for --data (default val)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("package", help="merge per-dataset results into one validated EvalAI submission")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_RUNDIR", help="submission .h5 files or run folders")
    p.add_argument("--out", required=True, help="output path, e.g. submissions/NAME.h5")
    p.add_argument("--target", help="eval target .h5 to check shapes against")
    p.add_argument("--phase", choices=sorted(EVALAI_PHASES), default=None,
                   help="EvalAI phase of plain submission files (run folders carry theirs in run.json)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it is an earlier package (its manifest beside it), never another file")
    p.set_defaults(func=_cmd_package)
