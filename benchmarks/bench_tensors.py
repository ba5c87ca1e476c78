"""Tensor building, nlb_suite vs nlb_tools, as whole processes on the same synthetic NWB folder.

    python benchmarks/bench_tensors.py [--dataset mc_maze] [--trials 700] [--bin 5]

Generates (and caches) a synthetic dataset, runs `nlb-eval tensors` and the nlb_tools pipeline
(load + resample + make_train/eval_input + make_eval_target with PSTH), checks the outputs agree and
prints time and peak memory side by side with the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from measure import measure  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze")
    ap.add_argument("--trials", type=int, default=700, help="train+val trials of the synthetic session")
    ap.add_argument("--bin", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()

    from nlb_suite.datasets.synthetic_cache import cached_synthetic
    from nlb_suite.h5io import load_h5
    from support.nlb_reference import assert_same

    work = Path(args.work)
    folder = cached_synthetic(work / "synthetic", args.dataset, seed=args.seed, trials=args.trials, progress=True)
    nwb = sorted(folder.glob("*.nwb"))
    size_mb = sum(f.stat().st_size for f in nwb) / 2**20

    outs = {k: work / f"out_{k}" for k in ("nlb_suite", "nlb_tools")}
    for o in outs.values():
        shutil.rmtree(o, ignore_errors=True)
        o.mkdir(parents=True)
    exe = Path(sys.executable).parent
    ours = measure([str(exe / "nlb-eval"), "tensors", args.dataset, "--data", str(folder), "--bin",
                    str(args.bin), "--phase", "val", "--out", str(outs["nlb_suite"])])
    theirs = measure([sys.executable, str(HERE / "nlb_tools_tensors.py"), str(folder), args.dataset,
                      str(args.bin), str(outs["nlb_tools"])])
    if ours.returncode or theirs.returncode:
        raise SystemExit(f"a run failed: nlb_suite rc={ours.returncode}, nlb_tools rc={theirs.returncode}")
    for fname in ("train_input.h5", "eval_input.h5", "target_data.h5"):
        assert_same(load_h5(outs["nlb_suite"] / fname), load_h5(outs["nlb_tools"] / fname), fname)

    spikes = load_h5(outs["nlb_suite"] / "train_input.h5")["train_spikes_heldin"]
    print(f"\n{args.dataset} synthetic: {args.trials} train+val trials, {size_mb:.0f} MB of NWB, "
          f"{args.bin} ms, phase val; train tensor {spikes.shape}; outputs identical")
    print(f"{'':12}{'nlb_suite':>12}{'nlb_tools':>12}{'ratio':>10}")
    print(f"{'time (s)':12}{ours.seconds:12.2f}{theirs.seconds:12.2f}{theirs.seconds / ours.seconds:9.1f}x")
    print(f"{'peak (MB)':12}{ours.peak_mb:12.0f}{theirs.peak_mb:12.0f}{theirs.peak_mb / ours.peak_mb:9.1f}x"
          "   (RSS summed over the process tree)")
    print(f"{'largest (MB)':12}{ours.peak_single_mb:12.0f}{theirs.peak_single_mb:12.0f}"
          f"{theirs.peak_single_mb / ours.peak_single_mb:9.1f}x   (largest single process)")


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_tensors.py")
