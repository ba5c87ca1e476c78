"""Screen GNOCCHI autoencoder designs by the readout's reach, without the diffusion stage.

    python benchmarks/bench_gnocchi_reach.py --dataset mc_maze_large --data-seed 9 --variants default latent_dim=32

Each variant (`default`, or KEY=VALUE[,KEY=VALUE...] over the dataset's CPU profile, as `--set` takes them) trains
fit()'s own first stage alone (`GnocchiBaseline.fit_autoencoder_stage`: the same seeding, split and autoencoder
training as a whole fit) on a stand-in's train trials; then latents are fitted to the true rates of its internal
validation trials and read out (bench_gnocchi_inference's "readout's reach" row), beside smoothing and the true
rates on the same trials. A screen, not a choice: an autoencoder that reaches further is a candidate for a
question decided on a whole fit's validation co-bps. The reach needs the ground truth, so it exists on stand-ins
only; a development seed (9) keeps the reported ones untouched.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

def variant_overrides(text: str) -> dict:
    """`default` -> {}; 'a=1,b=2' -> the --set values."""
    from nlb_suite.baseline_api import parse_overrides

    return {} if text == "default" else parse_overrides(text.split(","))


def reach_row(dataset: str, data: Path, train, seed: int, overrides: dict) -> list:
    """[variant's autoencoder: best validation loss, its epoch, epochs; reach co-bps; smoothing; truth; seconds]."""
    from bench_gnocchi_inference import SMOOTHING, TRUTH, reach, reference_rows

    from nlb_suite.baseline_api import RunContext, get_baseline, resolve_config

    cls = get_baseline("gnocchi")
    config = resolve_config(cls, dataset, 5, overrides, None, "cpu")[0]
    model = cls(config, RunContext.for_trials(dataset, 5, train, seed=seed, device="cpu", data_dir=data,
                                              synthetic=True))
    start = time.perf_counter()
    stage = model.fit_autoencoder_stage(train)
    seconds = time.perf_counter() - start
    valid_ids, train_ids = stage.valid_ids.cpu().numpy(), stage.train_ids.cpu().numpy()
    valid = train.rows(valid_ids)
    references, truth = reference_rows(model, train, train_ids, valid)
    reached = reach(model, truth, valid)
    curve = model.curves["autoencoder"]
    best = min(curve, key=lambda r: r["valid_loss"])
    low, high = dict(references)[SMOOTHING], dict(references)[TRUTH]
    return [f"{best['valid_loss']:.5f}", f"{best['epoch']} of {len(curve)}", reached,
            f"{100 * (reached - low) / (high - low):.0f}%" if high != low else "-", low, high, f"{seconds:.0f}"]


def main() -> None:
    from bench_args import seed_list

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze_large")
    ap.add_argument("--trials", type=int, default=None, help="train+val trials (default: the real count)")
    ap.add_argument("--data-seed", type=int, default=9, help="the stand-in (default 9: development, never reported)")
    ap.add_argument("--model-seeds", type=seed_list, default=[0])
    ap.add_argument("--variants", nargs="+", default=["default"],
                    help="'default' or KEY=VALUE[,KEY=VALUE...] over the CPU profile, one per variant")
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()

    from nlb_suite.errors import NLBInputError

    try:
        from nlb_suite.baseline_api import get_baseline, resolve_config
        from nlb_suite.datasets.specs import get_dataset

        trials = args.trials or get_dataset(args.dataset).n_train_val
        overrides = []
        for text in args.variants:  # every variant a valid config before any work
            try:
                overrides.append(variant_overrides(text))
                resolve_config(get_baseline("gnocchi"), args.dataset, 5, overrides[-1], None, "cpu")
            except NLBInputError as exc:
                raise NLBInputError(f"--variants {text!r}: {str(exc).removeprefix('--set: ')}") from None
    except NLBInputError as exc:
        ap.exit(2, f"bench_gnocchi_reach.py: {exc}\n")

    import torch
    from bench_realism import stand_in

    from nlb_suite.datasets.tensors import load
    from nlb_suite.runs import trial_sets
    from nlb_suite.table import print_table

    torch.set_num_threads(1)
    data = stand_in(args.dataset, trials, args.data_seed, Path(args.work) / "realism")
    train, _ = trial_sets(load(args.dataset, data, bin_ms=5, phase="val", progress=False))
    rows = []
    for text, o in zip(args.variants, overrides):
        for seed in args.model_seeds:
            rows.append([text, seed, *reach_row(args.dataset, data, train, seed, o)])
            print(f"  {text}, model seed {seed}: done", file=sys.stderr, flush=True)
    print(f"GNOCCHI's autoencoder stage on synthetic {args.dataset} (data seed {args.data_seed}): co-bps of the held-out "
          "neurons on its internal validation trials from latents fitted to the true rates (the readout's reach), "
          "and its share of the gap from smoothing to the true rates")
    print_table(["variant", "model seed", "AE best valid loss", "at epoch", "reach", "gap", "smoothing", "true rates",
                 "AE s"], rows)


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_gnocchi_reach.py")
