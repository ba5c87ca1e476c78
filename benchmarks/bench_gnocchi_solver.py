"""GNOCCHI's guidance solver: one L-BFGS per sample (the default since 2026-12-05) against one over the batch,
or its gradient by the readout's adjoint (the default) against autograd.

    python benchmarks/bench_models.py --dataset mc_maze_small --data-seeds 0,1,2 --baselines gnocchi --reuse
    python benchmarks/bench_gnocchi_solver.py --dataset mc_maze_small --data-seeds 0,1,2 --diagnose 16
    python benchmarks/bench_gnocchi_solver.py --dataset mc_maze_small --data-seeds 0,1,2 --pair per_sample-per_sample_autograd

The same fitted models under two arms (ARMS: a solver and how its gradient is taken), so the arm is the only
difference. Per data seed: the `gnocchi` run of bench_models.py (the CPU default, model seed 0, made with
either solver) is loaded from its checkpoint once per arm; each chooses its guidance strength on the fit's
internal validation trials as fit() does (the same trials, the same sampling seed) and predicts every train
and eval trial. Both submissions are scored by the suite's evaluate on the same bootstrap resamples of the
eval trials: paired intervals, first arm - second. The time of each choice and of each prediction of the
eval trials is measured here (wall and this process's CPU seconds), one after the other on one thread.

--diagnose N: the proximal problems met in one guided DDIM run (strength 3) of N internal-validation trials
(their `n_samples` samples each, one batch), at four steps, solved by both solvers at `guidance_iters`
iterations and by 300 per-sample iterations (the optimum): the median share of each sample's objective gap
left, and the median distance to its optimum over the optimum's distance from the start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_args import seed_list, seeds_text  # noqa: E402
from bench_models import METRICS, PAIR_CAPTION, pair_rows, reusable  # noqa: E402

from baselines.gnocchi_guidance import SOLVERS  # noqa: E402

DIAGNOSED_STEPS = (0, 10, 25, 40)  # DDIM step indices (of the default 50; those a run has) that --diagnose solves
# an arm: the solver and whether its gradient comes from the readout's adjoint (GnocchiBaseline.held_in_log_rates);
# the first two are what the baseline runs for each `guidance_solver`, the third the per-sample solver before
# the adjoint (its runs before commit 46ae227)
ARMS = {"per_sample": ("per_sample", True), "joint": ("joint", False), "per_sample_autograd": ("per_sample", False)}


def fitted_run(dataset: str, trials: int, seed: int, work: Path) -> tuple[Path, Path, str]:
    """(stand-in folder, bench_models.py's gnocchi run folder on it, the solver that run chose its guidance
    with); one line and exit 2 when that run is missing or was fitted with another config, seed or data."""
    from bench_realism import stand_in

    from nlb_suite.runs import RunSpec, data_checksums

    data = stand_in(dataset, trials, seed, work / "realism")
    run_dir = work / "models" / f"{dataset}_{trials}_s{seed}_{data.name.rsplit('_', 1)[-1]}" / "gnocchi"
    checksums = data_checksums(data)
    for solver in SOLVERS:  # a run made before the field existed matches `joint` (GnocchiConfig.BEFORE_FIELD)
        if reusable(run_dir, RunSpec("gnocchi", dataset, data=data, out=run_dir, seed=0, device="cpu", ci=0,
                                     overrides={"guidance_solver": solver}), checksums) is not None:
            return data, run_dir, solver
    print(f"bench_gnocchi_solver: {run_dir} holds no default gnocchi run (model seed 0) on these files: "
          f"run `python benchmarks/bench_models.py --dataset {dataset} --data-seeds {seed} "
          f"--baselines gnocchi --reuse` first", file=sys.stderr)
    sys.exit(2)


def load_model(dataset: str, data: Path, run_dir: Path, train, arm: str):
    """The run's fitted GNOCCHI guided as `arm` says, its internal validation trials set as its fit drew them."""
    from baselines.gnocchi import validation_ids
    from nlb_suite.baseline_api import RunContext, get_baseline, resolve_config

    cls = get_baseline("gnocchi")
    solver, adjoint = ARMS[arm]
    config, _ = resolve_config(cls, dataset, 5, {"guidance_solver": solver}, None, "cpu")
    model = cls(config, RunContext.for_trials(dataset, 5, train, seed=0, device="cpu", data_dir=data,
                                              synthetic=True))
    n_in = train.spikes_heldin.shape[2]
    model.load(run_dir / "gnocchi_best.pt", n_in, n_in + train.spikes_heldout.shape[2])
    model.valid_ids = validation_ids(config, 0, train.n_trials)  # as the fit at model seed 0 drew it
    return with_gradient(model, adjoint)


def with_gradient(model, use_adjoint: bool):
    """`model` (a GnocchiBaseline) guiding with the adjoint or autograd gradient, whatever its solver would take."""
    own = type(model).held_in_log_rates

    def arm_log_rates(n_bins: int, t: int, n_in: int, adjoint: bool = True):  # the baseline's ask, overruled
        return own(model, n_bins, t, n_in, use_adjoint)

    model.held_in_log_rates = arm_log_rates
    return model


def run_seed(dataset: str, trials: int, seed: int, work: Path, resamples: int, diagnose: int,
             diagnose_only: bool = False, arms: tuple[str, str] = ("per_sample", "joint")) -> dict:
    """Both arms' metrics, paired bootstrap draws, chosen strengths and choice and eval prediction times (wall,
    CPU) on one stand-in (with `diagnose_only`, the diagnosis alone)."""
    from nlb_suite.datasets.tensors import load
    from nlb_suite.metrics_evaluate import evaluate_report
    from nlb_suite.report.paired import paired_boot
    from nlb_suite.runs import plain_metrics, submission_dict, trial_sets

    data, run_dir, run_solver = fitted_run(dataset, trials, seed, work)
    tensors = load(dataset, data, bin_ms=5, phase="val", progress=False)
    train, evals = trial_sets(tensors)
    target = tensors.target_dict()
    if diagnose_only:
        return {"diagnosis": diagnose_solvers(load_model(dataset, data, run_dir, train, "per_sample"), train, diagnose)}
    models, submissions, choice_s, eval_s = {}, {}, {}, {}
    recorded = json.loads((run_dir / "gnocchi_guidance.json").read_text())["validation_co_bps"]
    for arm in arms:
        model = models[arm] = load_model(dataset, data, run_dir, train, arm)
        clocks = time.perf_counter(), time.process_time()
        model._choose_guidance(train)
        choice_s[arm] = time.perf_counter() - clocks[0], time.process_time() - clocks[1]
        if ARMS[arm][0] == run_solver:  # the fit's own choice made again: equal where the arithmetic is the run's
            again = [model.guidance_scores[g] for g in model.config.guidance]
            print(f"  data seed {seed}: the run's validation scores ({run_solver}), made again by {arm}: largest "
                  f"difference {np.max(np.abs(np.subtract(again, recorded))):.2g}", file=sys.stderr, flush=True)
        clocks = time.perf_counter(), time.process_time()
        rates_eval = model.predict(evals)
        eval_s[arm] = time.perf_counter() - clocks[0], time.process_time() - clocks[1]
        submissions[arm] = submission_dict(tensors.result_key, model.predict(train), rates_eval)
        print(f"  data seed {seed} {arm}: guidance {model.chosen_guidance:g} chosen in {choice_s[arm][0]:.0f} s "
              f"({choice_s[arm][1]:.0f} s CPU), eval trials predicted in {eval_s[arm][0]:.0f} s "
              f"({eval_s[arm][1]:.0f} s CPU)", file=sys.stderr, flush=True)
    metrics = {s: plain_metrics(next(iter(evaluate_report(target, sub, ci=0, seed=0).results[0].values())))
               for s, sub in submissions.items()}
    boot = paired_boot(target, [submissions[s] for s in arms], n_boot=resamples)
    return {"metrics": metrics, "boot": dict(zip(arms, boot)), "scores": {s: m.guidance_scores for s, m in models.items()},
            "chosen": {s: m.chosen_guidance for s, m in models.items()}, "choice_s": choice_s, "eval_s": eval_s,
            "diagnosis": diagnose_solvers(models[arms[0]], train, diagnose) if diagnose else []}


def diagnose_solvers(model, train, n_trials: int) -> tuple[int, list[list[str]]]:
    """(samples solved, rows): DDIM step, variance, then per solver the median share of the gap left, the median
    distance to the optimum and the seconds taken."""
    import torch

    from baselines.diffusion import ddim_sample
    from baselines.gnocchi_guidance import held_in_correction, joint_proximal, poisson_proximal

    cfg, net = model.config, model.model
    trials = train.rows(model.valid_ids[:n_trials])
    t, n_in = trials.spikes_heldin.shape[1:]
    n_bins = t + model.context.n_forward_bins
    y = torch.as_tensor(trials.spikes_heldin, dtype=torch.float32).repeat_interleave(cfg.n_samples, 0)
    observed, y = (~torch.isnan(y)).float(), torch.nan_to_num(y)
    rows = torch.as_tensor(model.encode(trials)).repeat_interleave(cfg.n_samples, 0)

    # the readout the first arm's model hands its solver (an arm's override included); both solvers solve the
    # same problems through it, so the joint column's seconds are not those of the joint arm's own readout
    log_rates = model.held_in_log_rates(n_bins, t, n_in)

    def objective(z: torch.Tensor, start: torch.Tensor, variance: float) -> torch.Tensor:
        """Each sample's objective summed wholly in float64 (finer than the solvers' own sums)."""
        eta = log_rates(z).clamp(max=10.0)
        return (((torch.exp(eta) - y * eta) * observed).flatten(1).double().sum(1)
                + (z - start).pow(2).flatten(1).double().sum(1) / (2 * variance))

    problems = []
    correct = held_in_correction(log_rates, y, observed, 3.0, cfg.guidance_iters, cfg.clip_x0)

    def capture(x0_hat: torch.Tensor, alpha_bar: float) -> torch.Tensor:  # the sampler's correction, recorded
        problems.append((x0_hat.clone(), 3.0 * (1.0 - alpha_bar)))
        return correct(x0_hat, alpha_bar)

    generator = torch.Generator().manual_seed(0)
    shape = (len(rows), net.autoencoder.latent_length(n_bins), net.dims.latent_dim)
    out = []
    with torch.no_grad():
        ddim_sample(lambda x, s: net.denoiser(x, s, rows).float(), shape, model.schedule, cfg.ddim_steps,
                    cfg.ddim_eta, generator, torch.device("cpu"), cfg.clip_x0, capture)
        for step in [s for s in DIAGNOSED_STEPS if s < len(problems)]:
            start, variance = problems[step]
            best = poisson_proximal(start, log_rates, y, observed, variance, 300)
            f_start, f_best = objective(start, start, variance), objective(best, start, variance)
            far = (start - best).flatten(1).norm(dim=1).clamp(min=1e-12)
            row = [str(step), f"{variance:.3f}"]
            for solve in (poisson_proximal, joint_proximal):
                t0 = time.perf_counter()
                z = solve(start, log_rates, y, observed, variance, cfg.guidance_iters)
                secs = time.perf_counter() - t0
                left = (objective(z, start, variance) - f_best) / (f_start - f_best).clamp(min=1e-12)
                dist = (z - best).flatten(1).norm(dim=1) / far
                row += [f"{100 * left.median().item():.2g}%", f"{100 * dist.median().item():.2g}%", f"{secs:.2f}"]
            out.append(row)
    return len(rows), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mc_maze_small")
    ap.add_argument("--trials", type=int, default=None, help="train+val trials (default: the real count)")
    ap.add_argument("--data-seeds", type=seed_list, default="0,1,2")
    ap.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples of the eval trials")
    ap.add_argument("--diagnose", type=int, default=0, metavar="N",
                    help="solve the proximal problems of (at most) N internal-validation trials three ways (0: off)")
    ap.add_argument("--diagnose-only", action="store_true", help="the diagnosis alone (no choice, no prediction)")
    ap.add_argument("--pair", default="per_sample-joint", metavar="A-B",
                    help=f"the two arms compared, A - B, from {', '.join(ARMS)} (default per_sample-joint)")
    ap.add_argument("--work", default=str(HERE / "_work"))
    args = ap.parse_args()
    arms = tuple(args.pair.split("-"))
    if len(arms) != 2 or arms[0] == arms[1] or not set(arms) <= set(ARMS):
        ap.error(f"--pair: {args.pair!r} is not A-B, two different arms of {', '.join(ARMS)}")

    import torch

    from nlb_suite.datasets.specs import get_dataset
    from nlb_suite.table import print_table

    torch.set_num_threads(1)
    trials = args.trials or get_dataset(args.dataset).n_train_val
    if args.diagnose_only and not args.diagnose:
        ap.error("--diagnose-only needs --diagnose N")
    per_seed = {s: run_seed(args.dataset, trials, s, Path(args.work), args.resamples, args.diagnose, args.diagnose_only,
                            arms) for s in args.data_seeds}
    print(f"\nsynthetic {args.dataset}, {trials} train+val trials, 5 ms, phase val; data seeds "
          f"{seeds_text(args.data_seeds)}; GNOCCHI's CPU default (model seed 0), one fit per seed, both arms")
    rows = []
    for s, res in per_seed.items() if not args.diagnose_only else ():
        for arm in arms:
            m, chosen = res["metrics"][arm], res["chosen"][arm]
            rows.append([str(s), arm, f"{chosen:g}", f"{res['scores'][arm][chosen]:.4f}",
                         *[f"{m[k]:.4f}" if k in m else "-" for k in METRICS],
                         *[f"{res[k][arm][0]:.0f} ({res[k][arm][1]:.0f})" for k in ("choice_s", "eval_s")]])
    if not args.diagnose_only:
        print_table(["seed", "arm", "guidance", "valid co-bps", *METRICS, "choice s (CPU)", "eval predict s (CPU)"],
                    rows)
        print(f"\npaired differences (eval trials resampled; a 95 % interval that includes 0 is a tie; {PAIR_CAPTION})")
        print_table(["pair", "seed", *METRICS], pair_rows(per_seed, *arms))
    if args.diagnose:
        for s, res in per_seed.items():
            print(f"\ndata seed {s}: proximal problems of {res['diagnosis'][0]} samples of validation trials, guidance 3 "
                  "(gap left: median share of the objective gap to the optimum; dist: median distance to it "
                  "over the optimum's distance from the start)")
            print_table(["DDIM step", "variance", "per_sample gap left", "per_sample dist", "per_sample s",
                         "joint gap left", "joint dist", "joint s"], res["diagnosis"][1])


if __name__ == "__main__":
    from nlb_suite.termination import run_script

    run_script(main, "bench_gnocchi_solver.py")
