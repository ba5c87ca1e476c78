"""Do the synthetic files depend on the CPU? Each set is generated under several OpenBLAS kernels and compared.

    python benchmarks/bench_blas_kernels.py --datasets lorenz --seeds 0,1,2,3 --kernels default,Prescott,Haswell

OpenBLAS chooses its kernels by CPU when it loads; OPENBLAS_CORETYPE forces one, so one machine can stand in
for CPUs of other kinds (a kernel needs its instructions: Haswell needs AVX2, SkylakeX AVX-512). `default` is
what this CPU gets; `loaded` is the kernel OpenBLAS reports (Katmai for a Prescott request in some builds,
Haswell for Zen). One child process per (set, seed, kernel) writes
the set through `write_synthetic` (attractors integrated under the pinned kernel, `nlb_suite.datasets.
pinned_blas`) and, for the attractor sets, also integrates the seeded trajectory in its own process, unpinned,
as the generator did before. The table gives per kernel the sha256 of the files (first 12 hex digits) and, for
the unpinned trajectory, the first point after the burn-in where it parts from the `default` kernel's (`-` =
identical). Spike files that match across kernels mean that seed writes the same recording under every kernel
tried; ground_truth.h5 may still differ in the last bits of its floats (the readout's matmul and exp run
unpinned in the generating process), which no score can see.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_args import seed_list  # noqa: E402

_CHILD = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np
from nlb_suite.datasets.known_dynamics import _streams
from nlb_suite.datasets.known_systems import ATTRACTORS, burn_in_points, integrate_attractor, seeded_start
from nlb_suite.datasets.synthetic import write_synthetic
from nlb_suite.versions import openblas_kernels

name, seed, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
cores = openblas_kernels()
write_synthetic(name, out / "data", seed=seed)
files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in sorted((out / "data").rglob("*.*"))}
if name in ATTRACTORS:
    n = 2000 * 70 + 2000  # more points than any default attractor set integrates
    burn = burn_in_points(name)
    start = seeded_start(name, _streams(name, seed)[0])
    np.save(out / "unpinned.npy", integrate_attractor(name, burn + n, start)[burn:])  # points after the burn-in
print(json.dumps({"cores": cores, "files": files}))
"""


def _generate(name: str, seed: int, kernel: str) -> dict:
    """Files' digests (and the unpinned trajectory, for attractors) of one set written under one kernel."""
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if kernel != "default":
        env["OPENBLAS_CORETYPE"] = kernel
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="nlb_kernels_") as tmp:
        done = subprocess.run([sys.executable, "-c", _CHILD, name, str(seed), tmp], env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}, no message"]
            raise SystemExit(f"{name} seed {seed} kernel {kernel}: {lines[-1]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        traj = Path(tmp) / "unpinned.npy"
        row["unpinned"] = np.load(traj) if traj.exists() else None
    return row


def _parting(a: np.ndarray | None, b: np.ndarray | None) -> str:
    """First point (after the burn-in) where two trajectories differ in any coordinate, '-' if none."""
    if a is None or b is None:
        return "n/a"
    differ = np.flatnonzero(np.any(a != b, axis=1))
    return "-" if differ.size == 0 else str(int(differ[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="lorenz", help="comma-separated synthetic set names")
    ap.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3])
    ap.add_argument("--kernels", default="default,Prescott,Haswell",
                    help="OpenBLAS core types; 'default' = this CPU's own choice (listed first)")
    args = ap.parse_args()
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    if kernels[0] != "default":
        kernels.insert(0, "default")
    print(f"{'set':<14} {'seed':>4}  {'kernel':<9} {'loaded':<10} {'train':<12} {'test':<12} "
          f"{'truth':<12} {'unpinned parts at':>17}")
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        for seed in args.seeds:
            rows = {k: _generate(name, seed, k) for k in kernels}
            base = rows["default"]
            for k, row in rows.items():
                files = row["files"]
                train = next((v for f, v in files.items() if "train" in f), "?")
                test = next((v for f, v in files.items() if "test" in f), "?")
                parts = "(reference)" if k == "default" else _parting(base["unpinned"], row["unpinned"])
                print(f"{name:<14} {seed:>4}  {k:<9} {','.join(row['cores']):<10} {train:<12} {test:<12} "
                      f"{files.get('ground_truth.h5', '?'):<12} {parts:>17}", flush=True)
            same = all(r["files"][f] == base["files"][f] for r in rows.values() for f in base["files"]
                       if f.endswith(".nwb"))
            print(f"{'':<14} {'':>4}  NWB files {'identical' if same else 'DIFFER'} across kernels", flush=True)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_blas_kernels.py")
