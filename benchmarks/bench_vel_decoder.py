"""Is a model's low vel R2 a train/eval mismatch? nlb_tools' decoder fitted on different trial sets.

    python benchmarks/bench_vel_decoder.py benchmarks/_work/models/mc_maze_2295_s0_sub-Jenkins

For every run folder under the given folder (one dataset, one data seed: bench_models.py's layout), vel R2
of the same ridge grid-search decoder (nlb_suite.metrics.velocity_decoding, equal to nlb_tools') fitted on:
the model's train-trial rates and scored on eval trials (the metric itself); one seeded half of the eval
trials and scored on the other half, both ways; and half of the train trials scored on the other half. If
a model's eval-half rates decode velocity much better than its train-fitted decoder does, its train and
eval rates differ (the decoder learned something that does not carry over); if not, its rates simply hold
less linearly decodable velocity.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rates(submission: dict, key: str, split: str) -> np.ndarray:
    """Held-in and held-out rates of one split side by side, as nlb_tools' decoder takes them."""
    g = submission[key]
    return np.concatenate([g[f"{split}_rates_heldin"], g[f"{split}_rates_heldout"]], axis=-1)


def main() -> None:
    from nlb_suite.datasets.tensors import load
    from nlb_suite.metrics import velocity_decoding
    from nlb_suite.submission import read_submission
    from nlb_suite.table import print_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", help="a folder of run folders (one dataset, bin and phase)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the trial halves")
    args = ap.parse_args()
    folders = sorted(p for p in Path(args.runs).iterdir() if (p / "run.json").is_file())
    info = json.loads((folders[0] / "run.json").read_text())
    tensors = load(info["dataset"], info["data_dir"], bin_ms=info["bin_ms"], phase=info["phase"])
    target = tensors.target_dict()[info["result_key"]]
    train_beh = np.asarray(target["train_behavior"])
    eval_beh = np.asarray(target["eval_behavior"])[..., :2]
    rng = np.random.default_rng(args.seed)
    eval_half = rng.permutation(len(eval_beh)) < len(eval_beh) // 2
    train_half = rng.permutation(len(train_beh)) < len(train_beh) // 2
    rows = []
    for run in folders:
        sub = read_submission(run / "submission.h5")
        tr, ev = rates(sub, info["result_key"], "train"), rates(sub, info["result_key"], "eval")
        rows.append([run.name,
                     velocity_decoding(tr, train_beh, None, ev, eval_beh, None),
                     velocity_decoding(ev[eval_half], eval_beh[eval_half], None, ev[~eval_half], eval_beh[~eval_half], None),
                     velocity_decoding(ev[~eval_half], eval_beh[~eval_half], None, ev[eval_half], eval_beh[eval_half], None),
                     velocity_decoding(tr[train_half], train_beh[train_half], None, tr[~train_half],
                                       train_beh[~train_half], None)])
    print(f"{info['dataset']} ({info['bin_ms']} ms, phase {info['phase']}): vel R2 by where the decoder is fitted")
    print_table(["run", "train -> eval", "eval A -> eval B", "eval B -> eval A", "train A -> train B"],
                [[r[0], *(f"{v:.4f}" for v in r[1:])] for r in rows])


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_vel_decoder.py")
