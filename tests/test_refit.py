"""`refit: true`: the selection fit chooses the epoch on the internal split, the refit trains on every train
trial at the selection fit's learning rates with as many steps per epoch; run.json keeps the selection fit's
validation scores apart, ensemble and sweeps refuse refit runs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import baselines.torch_core as torch_core  # noqa: E402
from baselines.lfads import LFADSBaseline, LFADSConfig  # noqa: E402
from baselines.ndt import NDTBaseline, NDTConfig  # noqa: E402
from baselines.torch_core import (  # noqa: E402
    RefitPlan,
    Trainer,
    TrainHooks,
    TrainSettings,
    internal_split,
    recorded_fits,
    refitting,
    training_hooks,
)
from nlb_suite.baseline_api import RunContext  # noqa: E402
from nlb_suite.errors import NLBInputError  # noqa: E402
from nlb_suite.internal_validation import score_trials  # noqa: E402
from nlb_suite.seeding import seed_everything  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)

N_IN, N_OUT, T, FWD = 6, 2, 10, 3
NDT_TINY = dict(n_layers=1, n_heads=2, ffn_dim=8, dropout=0.1, dropout_embedding=0.1, dropout_rates=0.1,
                context_forward=3, context_backward=3, max_span=2, span_ramp_start=1, span_ramp_end=2, batch_size=8,
                max_epochs=8, patience=8, warmup_epochs=1, lr=3e-3, valid_frac=0.25)
LFADS_TINY = dict(ic_enc_dim=6, ci_enc_dim=4, con_dim=4, co_dim=2, ic_dim=4, gen_dim=6, fac_dim=3, batch_size=8,
                  max_epochs=12, patience=12, kl_increase_epoch=2, l2_increase_epoch=2, lr_schedule="plateau",
                  plateau_patience=0, plateau_factor=0.5, sv_rate=0.2, lr=2e-3)


def context(run_dir=None, seed: int = 3) -> RunContext:
    return RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=N_IN, n_heldout=N_OUT, n_forward_bins=FWD,
                      seed=seed, run_dir=run_dir)


def trials(n: int = 16):
    return poisson_trials(n, T, N_IN, N_OUT, FWD, seed=1, rate=0.5, first_id=200)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ----- the Trainer ---------------------------------------------------------------------------------

def test_a_refit_replays_the_plan_on_every_trial_without_validating(tmp_path):
    """10 trials, 2 steps per epoch: batches of 5 covering all 10 each epoch, at the plan's learning rate; no
    validation; the last weights are kept and saved as <name>_refit.pt."""
    seed_everything(0)
    module = torch.nn.Linear(3, 1)
    seen: list[tuple[int, list[int], float]] = []
    x = torch.randn(10, 3)

    def step(idx, epoch):
        seen.append((epoch, idx.tolist(), trainer.optimizer.param_groups[0]["lr"]))
        return (module(x[idx]) ** 2).mean(), {}

    def validate(epoch):
        raise AssertionError("a refit must not validate")

    trainer = Trainer(module, TrainSettings(lr=1.0, batch_size=4, max_epochs=50), torch.device("cpu"), tmp_path,
                      name="m")
    with refitting(RefitPlan(lrs=[0.1, 0.05, 0.01], batches_per_epoch=2)):
        rows = trainer.fit(10, step, validate)
    assert [r["epoch"] for r in rows] == [0, 1, 2] and [r["lr"] for r in rows] == [0.1, 0.05, 0.01]
    for epoch, lr in enumerate([0.1, 0.05, 0.01]):
        batches = [ids for e, ids, _ in seen if e == epoch]
        assert [len(b) for b in batches] == [5, 5] and sorted(sum(batches, [])) == list(range(10))
        assert {r for e, _, r in seen if e == epoch} == {lr}
    assert trainer.best_epoch == -1 and not (tmp_path / "m_best.pt").exists()  # no selection in a refit
    saved = torch.load(tmp_path / "m_refit.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in module.state_dict().items())
    written = read_csv(tmp_path / "refit_curves.csv")
    assert list(written[0]) == ["epoch", "train_loss", "lr", "train_s", "grad_norm_max", "clipped_steps"]
    assert not (tmp_path / "curves.csv").exists()


def test_a_plain_fit_records_the_epoch_it_kept_and_each_epochs_learning_rate():
    seed_everything(0)
    module = torch.nn.Linear(2, 1)
    x = torch.randn(6, 2)
    losses = iter([3.0, 1.0, 2.0, 1.0, 5.0])  # the first of two equal minima is kept

    def step(idx, epoch):
        return (module(x[idx]) ** 2).mean(), {}

    trainer = Trainer(module, TrainSettings(lr=0.1, batch_size=4, max_epochs=5, patience=5), torch.device("cpu"))
    with recorded_fits() as fits:
        rows = trainer.fit(6, step, lambda epoch: {"valid_loss": next(losses)})
    assert len(fits) == 1
    assert fits[0].best_epoch == 1 == trainer.best_epoch
    assert fits[0].lrs == [r["lr"] for r in rows] and len(fits[0].lrs) == 5
    assert fits[0].batches_per_epoch == 2  # 6 trials in batches of 4


def test_a_refit_takes_exactly_the_planned_steps_when_the_trials_do_not_divide():
    """9 trials in 4 steps: batches of 3, 2, 2, 2 (batches of ceil(9/4) = 3 would take only 3 steps)."""
    module = torch.nn.Linear(1, 1)
    sizes: list[int] = []

    def step(idx, epoch):
        sizes.append(len(idx))
        return module(torch.ones(len(idx), 1)).sum(), {}

    with refitting(RefitPlan(lrs=[0.1], batches_per_epoch=4)):
        Trainer(module, TrainSettings(batch_size=2), torch.device("cpu")).fit(9, step, lambda epoch: {})
    assert sizes == [3, 2, 2, 2]


def test_hold_out_in_a_refit_trains_every_trial_and_advances_the_generator_alike():
    """LFADS draws its sample-validation mask after the split: a refit must draw the same mask."""
    model = NDTBaseline(NDTConfig(**NDT_TINY), context())
    plain_rng, refit_rng = np.random.default_rng(4), np.random.default_rng(4)
    train, valid = model.hold_out(10, 0.3, plain_rng)
    assert len(valid) == 3 and model.validation_trials().tolist() == valid.tolist()
    with refitting(RefitPlan(lrs=[1e-3], batches_per_epoch=1)):
        all_train, none_valid = model.hold_out(10, 0.3, refit_rng)
    assert all_train.tolist() == list(range(10)) and none_valid.numel() == 0
    assert model.validation_trials().tolist() == valid.tolist()  # the selection fit's, until refit_all drops them
    assert plain_rng.random() == refit_rng.random()
    assert train.tolist() == internal_split(10, 0.3, np.random.default_rng(4))[0].tolist()


# ----- NDT and LFADS -------------------------------------------------------------------------------

def test_ndt_refit_keeps_the_selection_fits_scores_and_trains_every_trial_for_its_epochs(tmp_path, monkeypatch):
    """The selection fit is the plain fit (same scores, bit for bit); the refit starts from the same weights
    (the readout bias aside: the mean log-rate of all trials) and runs the kept epochs at their learning rates on
    all 16 trials in as many steps (12 train trials, batch 8: 2 steps); validation_trials() is then None,
    `curves` stay the selection fit's and the rates differ from the plain fit's."""
    data = trials()
    plain = NDTBaseline(NDTConfig(**NDT_TINY), context(tmp_path / "plain"))
    (tmp_path / "plain").mkdir()
    plain.fit(data)
    valid_ids = plain.validation_trials()
    plain_scores = score_trials(plain.predict(data), data, valid_ids)
    plain_curves = read_csv(tmp_path / "plain" / "curves.csv")
    kept = int(min(plain_curves, key=lambda r: float(r["valid_nll"]))["epoch"])

    calls: list[tuple[str, int, int]] = []
    starts: list[dict] = []
    real_indices, real_split, real_init = torch_core.batch_indices, torch_core.batch_split, Trainer.__init__

    def spy_indices(n, batch_size, device, shuffle=True):
        calls.append(("batch_indices", n, batch_size))
        return real_indices(n, batch_size, device, shuffle)

    def spy_split(n, n_batches, device):
        calls.append(("batch_split", n, n_batches))
        return real_split(n, n_batches, device)

    def spy_init(trainer, module, *args, **kwargs):  # the weights training starts from
        starts.append({k: v.clone() for k, v in module.state_dict().items()})
        real_init(trainer, module, *args, **kwargs)

    monkeypatch.setattr(torch_core, "batch_indices", spy_indices)
    monkeypatch.setattr(torch_core, "batch_split", spy_split)
    monkeypatch.setattr(Trainer, "__init__", spy_init)
    (tmp_path / "refit").mkdir()
    model = NDTBaseline(NDTConfig(**NDT_TINY, refit=True), context(tmp_path / "refit"))
    model.fit(data)
    sel = model.selection_fit()
    assert sel["co-bps"] == plain_scores["co-bps"] and sel["fp-bps"] == plain_scores["fp-bps"]
    assert sel["trial_ids"] == [200 + int(i) for i in valid_ids] and sel["n_trials"] == 4
    assert (sel["kept_epoch"], sel["epochs_run"], sel["refit_epochs"]) == (kept + 1, 8, kept + 1)
    assert (sel["refit_trials"], sel["batches_per_epoch"]) == (16, 2)
    assert calls == [("batch_indices", 12, 8)] * 8 + [("batch_split", 16, 2)] * (kept + 1)
    assert len(starts) == 2 and starts[0].keys() == starts[1].keys()
    assert [k for k in starts[0] if not torch.equal(starts[0][k], starts[1][k])] == ["readout.bias"]
    assert [r["valid_nll"] for r in model.curves] == [r["valid_nll"] for r in plain.curves]
    assert len(model.refit_curves) == kept + 1 and "valid_nll" not in model.refit_curves[0]
    refit_rows = read_csv(tmp_path / "refit" / "refit_curves.csv")
    assert [r["lr"] for r in refit_rows] == [r["lr"] for r in plain_curves[:kept + 1]]
    assert model.validation_trials() is None
    assert not np.allclose(model.predict(data).heldout, plain.predict(data).heldout)


def test_lfads_refit_replays_a_plateau_schedule_and_keeps_its_sample_validation_mask(tmp_path, monkeypatch):
    """A plateau schedule cannot be rerun without validation: the refit replays the learning rates the
    selection fit used, epoch by epoch, a cut included; and it holds back the same sample-validation entries."""
    import baselines.lfads as lfads

    masks: list[torch.Tensor] = []
    real = lfads.to_device

    def spy(array, device):
        out = real(array, device)
        if np.asarray(array).dtype == bool and not np.all(array):  # the sample-validation mask (1 = held back;
            # the other boolean arrays are the observed-entry weights, all true here)
            masks.append(out)
        return out

    monkeypatch.setattr(lfads, "to_device", spy)
    (tmp_path / "a").mkdir()
    model = LFADSBaseline(LFADSConfig(**LFADS_TINY, refit=True), context(tmp_path / "a", seed=5))
    model.fit(trials(20))
    sel = model.selection_fit()
    selection = read_csv(tmp_path / "a" / "curves.csv")
    refit = read_csv(tmp_path / "a" / "refit_curves.csv")
    assert len(refit) == sel["kept_epoch"] and [r["lr"] for r in refit] == [r["lr"] for r in selection][:len(refit)]
    assert len({r["lr"] for r in refit}) > 1  # the plateau cut the rate before the kept epoch, and the refit too
    assert len(masks) == 2 and masks[0].float().mean() > 0.1 and torch.equal(masks[0], masks[1])
    assert model.validation_trials() is None and (tmp_path / "a" / "lfads_refit.pt").exists()


def test_refit_inside_a_sweep_is_refused():
    model = NDTBaseline(NDTConfig(**NDT_TINY, refit=True), context())
    with training_hooks(TrainHooks()), pytest.raises(NLBInputError) as err:
        model.fit(trials())
    assert str(err.value) == ("baseline ndt: refit=true cannot run inside a sweep (a sweep scores each trial on "
                              "its validation trials); run the chosen config with `nlb-eval run`")


# ----- through the CLI -----------------------------------------------------------------------------

def test_cli_run_records_the_selection_fit_and_ensemble_ranks_refit_runs_by_it(synthetic, tmp_path, capsys):
    """Two refit runs: run.json keeps the selection fits' scores, the report says what the refit did, and
    `ensemble` ranks them by those scores but will not choose a size on trials they trained on."""
    from nlb_suite.cli import main

    folder = synthetic("mc_maze_small")
    outs, selections = [], []
    for seed in (0, 1):
        out = tmp_path / f"ndt_refit{seed}"
        assert main(["run", "ndt", "--dataset", "mc_maze_small", "--data", str(folder), "--profile", "fast",
                     "--ci", "0", "--seed", str(seed), "--out", str(out), "--set", "max_epochs=3", "--set",
                     "patience=3", "--set", "warmup_epochs=1", "--set", "refit=true"]) == 0
        info = json.loads((out / "run.json").read_text())
        assert info["internal_validation"] is None
        sel = info["selection_fit"]
        assert sel["refit_epochs"] == sel["kept_epoch"] and sel["refit_trials"] == info["n_train_trials"]
        assert sel["n_trials"] == len(sel["trial_ids"]) > 0 and np.isfinite(sel["co-bps"])
        assert {"refit_curves.csv", "ndt_refit.pt", "curves.csv", "ndt_best.pt"} <= {p.name for p in out.iterdir()}
        outs.append(out)
        selections.append(sel)
    sel = selections[0]
    assert main(["report", str(outs[0]), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    want = (f"the selection fit kept epoch {sel['kept_epoch']} of {sel['epochs_run']} (validation co-bps "
            f"{sel['co-bps']:.4g}, fp-bps {sel['fp-bps']:.4g} on {sel['n_trials']} trials); then trained again on all "
            f"{sel['refit_trials']} train trials for {sel['refit_epochs']} epochs (refit_curves.csv); its training "
            "curve is the selection fit&#x27;s")
    assert page.count(want) == 2  # the curves section's note and the provenance card

    capsys.readouterr()
    runs = [str(o) for o in outs]
    assert main(["ensemble", *runs, "--out", str(tmp_path / "ens"), "--ci", "0"]) == 2
    err = capsys.readouterr().err
    assert err == (f"nlb-eval ensemble: error: {outs[0]}: refitted on all train trials (refit: true), so its rates "
                   "have seen the validation trials the ensemble size is chosen on: give --size K to average the top "
                   "K runs by their (selection fits') validation co-bps\n")
    assert not (tmp_path / "ens").exists()
    assert main(["ensemble", *runs, "--size", "1", "--out", str(tmp_path / "ens"), "--ci", "0"]) == 0
    out = capsys.readouterr().out
    best = int(np.argmax([s["co-bps"] for s in selections]))
    assert f"{selections[best]['co-bps']:.4f} (selection fit)" in out
    info = json.loads((tmp_path / "ens" / "run.json").read_text())
    assert info["internal_validation"] is None  # no trial is unseen by its member
    ranking = info["ensemble"]["ranking"]
    assert [r["run"] for r in ranking] == [runs[best], runs[1 - best]] and all(r["refit"] for r in ranking)
    assert [r["validation co-bps"] for r in ranking] == [selections[best]["co-bps"], selections[1 - best]["co-bps"]]


def test_a_sweep_runs_its_trials_without_refit_and_refuses_a_refit_asked_for():
    """The NDT mc_maze_small cpu profile refits; a sweep's trials are selection fits, so it sets refit=false
    (named as its origin), and refit=true from --set or the space, or refit searched, is one line."""
    from nlb_suite.baseline_api import get_baseline
    from nlb_suite.sweep.search import NO_REFIT, trial_overrides

    ndt, smoothing = get_baseline("ndt"), get_baseline("smoothing")
    space = "space.yaml: search space"
    overrides, origins = trial_overrides(ndt, {"max_epochs": 9, "lr": 1e-3}, {"lr": 2e-3}, ("dropout",), space)
    assert overrides == {"max_epochs": 9, "lr": 2e-3, "refit": False}
    assert origins == {"max_epochs": space, "refit": NO_REFIT}
    assert trial_overrides(smoothing, {}, {}, (), "s") == ({}, {})  # nothing to refit
    tail = ("refit=true: a sweep scores every trial on its validation trials, which a refit trains on; sweep without "
            "it, then `nlb-eval run ndt --dataset NAME (--data DIR | --synthetic) --config SWEEPDIR/best_config.yaml "
            "--set refit=true`")
    for fixed, user, searched, who in (({}, {"refit": True}, (), "--set"), ({"refit": True}, {}, (), space),
                                       ({}, {}, ("lr", "refit"), f"{space} (params.refit)")):
        with pytest.raises(NLBInputError) as err:
            trial_overrides(ndt, fixed, user, searched, space)
        assert str(err.value) == f"{who}: {tail}"


def test_cli_sweep_refuses_refit_before_starting_ray(synthetic, tmp_path, capsys):
    from nlb_suite.cli import main

    out = tmp_path / "sweep"
    assert main(["sweep", "ndt", "--dataset", "mc_maze_small", "--data", str(synthetic("mc_maze_small")),
                 "--search", "random", "--samples", "2", "--set", "refit=true", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("nlb-eval sweep: error: --set: refit=true: a sweep scores")
    assert not out.exists()
