"""Data-layer commands: list, tensors, download."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..datasets.specs import DATASETS, get_dataset
from ..h5io import storage_dtype
from ..table import print_table


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "baselines":
        return _list_baselines()
    rows = []
    for spec in DATASETS.values():
        a, b = spec.train_window.offsets or (None, None)
        window = f"{spec.train_window.align_field} {a}..{b}" if a is not None else "-"
        rows.append([
            spec.name, spec.dandi_url, f"{spec.n_heldin}+{spec.n_heldout}",
            f"{spec.n_train_val}/{spec.n_test}", window,
            ",".join(spec.behavior_fields), "-" if spec.lag_ms is None else spec.lag_ms,
            ",".join(spec.psth.cond_fields) if spec.psth else "-",
            spec.psth.kern_sd_ms if spec.psth else "-",
        ])
    print_table(["dataset", "DANDI", "units in+out", "trials trainval/test", "window (ms)", "behavior",
                 "lag ms", "PSTH conditions", "PSTH sd ms"], rows)
    return 0


def _list_baselines() -> int:
    from ..baseline_api import available_baselines, get_baseline

    rows = []
    for name, target in available_baselines().items():
        try:
            cls = get_baseline(name)
            rows.append([name, cls.description, target])
        except Exception as exc:  # a broken third-party entry point must not hide the others
            rows.append([name, f"(cannot load: {exc})", target])
    print_table(["baseline", "description", "implementation"], rows)
    return 0


def summarize(arrays: dict[str, dict[str, np.ndarray]]) -> list[list]:
    """One table row per array: file, key, shape, stored dtype, NaN share, mean."""
    rows = []
    for file, data in arrays.items():
        for key, val in sorted(_flatten(data).items()):
            if val.dtype == object:
                rows.append([file, key, f"{len(val)} lists", "vlen int", "-", "-"])
                continue
            num = val.astype(np.float64)
            nan = float(np.isnan(num).mean()) if num.size else 0.0
            mean = float(np.nanmean(num)) if num.size and nan < 1 else float("nan")
            rows.append([file, key, "x".join(map(str, val.shape)), np.dtype(storage_dtype(val)).name,
                         f"{nan:.1%}", f"{mean:.4g}"])
    return rows


def _flatten(data: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v) if not isinstance(v, np.ndarray) else v
    return out


TENSOR_FILES = ("train_input.h5", "eval_input.h5", "target_data.h5")


def is_tensors_folder(path: Path) -> bool:
    """A folder `nlb-eval tensors` wrote: it holds nothing but its h5 files."""
    return all(p.is_file() and p.name in TENSOR_FILES for p in path.iterdir())


def write_tensors(name: str, data: Path, bin_ms: int, phase: str, out: Path, seed: int = 0,
                  include_psth: bool = True, progress: bool = True, overwrite: bool = False) -> dict[str, dict]:
    """Build the tensors and write the nlb_tools-style h5 files into `out` (all built before any write).

    `out` must be new, empty, or (with `overwrite`) a previous tensors folder. The files are written into a
    temporary folder renamed onto `out` when all are there: never a partial set, and a target_data.h5 of an
    earlier val build goes with the folder it replaces when a test build (no target) replaces it."""

    from ..datasets.tensors import load
    from ..errors import check_seed
    from ..h5io import save_h5
    from ..outputs import claim_output, discard_temp_dir, make_temp_dir, replace_folder

    check_seed(seed)
    claim_output(out, "--out", "tensors folder", is_tensors_folder, overwrite)
    tensors = load(name, data, bin_ms=bin_ms, phase=phase, seed=seed, include_psth=include_psth,
                   progress=progress)
    files = {"train_input.h5": tensors.train_input, "eval_input.h5": tensors.eval_input}
    if tensors.target is not None:
        files["target_data.h5"] = tensors.target_dict()
    replacing = claim_output(out, "--out", "tensors folder", is_tensors_folder, overwrite)  # again: loading is slow
    work = make_temp_dir(out)
    try:
        for fname, content in files.items():
            save_h5(content, work / fname)
        replace_folder(work, out, replacing)
    except BaseException:
        discard_temp_dir(work)
        raise
    return files


def _cmd_tensors(args: argparse.Namespace) -> int:
    get_dataset(args.name)
    t0 = time.perf_counter()
    files = write_tensors(args.name, Path(args.data), args.bin, args.phase, Path(args.out), args.seed,
                          include_psth=not args.no_psth, overwrite=args.overwrite)
    print_table(["file", "array", "shape", "dtype", "NaN", "mean"], summarize(files))
    print(f"\nwrote {', '.join(files)} to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from ..datasets.download import download_dataset
    from ..outputs import check_folder_out

    check_folder_out(args.out, "--out")
    folder = download_dataset(args.name, Path(args.out), jobs=args.jobs)
    print(f"{args.name}: NWB files in {folder}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered datasets or baselines")
    p.add_argument("what", choices=["datasets", "baselines"], help="what to list")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("tensors", help="build the benchmark tensors (nlb_tools-identical h5 files)")
    p.add_argument("name", help="dataset name (see `nlb-eval list datasets`)")
    p.add_argument("--data", required=True, help="NWB file or folder with the dataset's train/test NWB files")
    p.add_argument("--bin", type=int, default=5, help="bin width in ms: 5 or 20 (default 5)")
    p.add_argument("--phase", choices=["val", "test"], default="val",
                   help="val: train on train, evaluate val (writes a target); test: train on train+val")
    p.add_argument("--out", required=True, help="output folder for train_input.h5, eval_input.h5, target_data.h5")
    p.add_argument("--seed", type=int, default=0, help="jitter seed (dmfc_rsg), 0 as in nlb_tools")
    p.add_argument("--no-psth", action="store_true", help="skip the PSTH target (faster)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of a previous tensors folder (one holding only its h5 files)")
    p.set_defaults(func=_cmd_tensors)

    p = sub.add_parser("download", help="download a dataset's NWB files from DANDI (pinned version)")
    p.add_argument("name", help="dataset name")
    p.add_argument("--out", required=True, help="download folder")
    p.add_argument("--jobs", type=int, default=4, help="parallel downloads")
    p.set_defaults(func=_cmd_download)
