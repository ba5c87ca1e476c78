"""The CPU settings every torch baseline fits and predicts under (baselines.torch_core.cpu_compute), and the
internal validation split they share (internal_split)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines.ndt import NDTBaseline, NDTConfig  # noqa: E402
from baselines.torch_core import cpu_compute, flushes_denormals, internal_split  # noqa: E402
from nlb_suite.baseline_api import RunContext  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)

DENORMAL = 1e-39  # below float32's smallest normal number (1.18e-38)


@pytest.fixture(autouse=True)
def flush_off():
    """Each test starts with torch's default (denormals kept) and leaves it so."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


def test_denormals_are_flushed_inside_and_kept_after():
    x = torch.tensor([DENORMAL])
    assert not flushes_denormals() and (x * 1.0).item() > 0
    with cpu_compute(1, torch.device("cpu")):
        assert flushes_denormals()
        assert (x * 1.0).item() == 0.0 and (x + 0.0).item() == 0.0
        assert torch.get_num_threads() == 1
    assert not flushes_denormals() and (x * 1.0).item() > 0


def test_threads_and_a_flush_already_on_are_restored():
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    with cpu_compute(1, torch.device("cpu")):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2 and flushes_denormals()
    with cpu_compute(0, torch.device("cpu")):  # 0: threads left as they are
        assert torch.get_num_threads() == 2


def test_restored_after_an_error_inside():
    with pytest.raises(RuntimeError, match="boom"):
        with cpu_compute(1, torch.device("cpu")):
            raise RuntimeError("boom")
    assert not flushes_denormals()


def test_other_devices_leave_cpu_settings_alone():
    torch.set_num_threads(2)
    with cpu_compute(1, torch.device("cuda")):  # constructing the device needs no GPU
        assert torch.get_num_threads() == 2 and not flushes_denormals()


def test_a_fit_and_a_prediction_run_with_denormals_flushed():
    """Every epoch of a real fit sees the flush (the on_epoch hook runs inside fit); afterwards it is off again."""
    train = poisson_trials(12, 8, 5, 2, 2, seed=0)
    ctx = RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=5, n_heldout=2, n_forward_bins=2, seed=0)
    seen = []
    ctx.extras["on_epoch"] = lambda epoch, row: seen.append(flushes_denormals())
    model = NDTBaseline(NDTConfig(n_layers=1, n_heads=1, ffn_dim=4, context_forward=2, context_backward=2,
                                  max_span=1, span_ramp_start=1, span_ramp_end=1, batch_size=4, max_epochs=2,
                                  patience=2, warmup_epochs=1), ctx)
    model.fit(train)
    assert seen == [True, True] and not flushes_denormals()
    model.predict(train)
    assert not flushes_denormals()


def test_internal_split_sizes_order_and_a_shared_generator():
    train, valid = internal_split(10, 0.25, 3)
    order = np.random.default_rng(3).permutation(10)
    np.testing.assert_array_equal(valid, np.sort(order[:2]))  # round(2.5) = 2 valid trials, the permutation's head
    np.testing.assert_array_equal(train, np.sort(order[2:]))
    assert [len(s) for s in internal_split(2, 0.0, 0)] == [1, 1] and [len(s) for s in internal_split(2, 1.0, 0)] == [1, 1]
    rng, ref = np.random.default_rng(7), np.random.default_rng(7)
    _, valid = internal_split(20, 0.2, rng)  # a Generator is advanced by exactly the one permutation
    np.testing.assert_array_equal(valid, np.sort(ref.permutation(20)[:4]))
    assert rng.random() == ref.random()


NEURAL = ("lfads", "ndt", "stndt", "node_sae", "gru_sae", "gnocchi")


@pytest.mark.parametrize("name", NEURAL)
def test_every_neural_baseline_refuses_unfit_train_trials_in_one_line(name):
    import dataclasses

    from nlb_suite.baseline_api import get_baseline, resolve_config
    from nlb_suite.errors import NLBInputError

    cls = get_baseline(name)
    cfg, _ = resolve_config(cls, "mc_maze_small", 5, None, "fast", "cpu")
    ctx = RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=5, n_heldout=2, n_forward_bins=2, seed=0)
    with pytest.raises(NLBInputError, match=rf"^baseline {name}: needs at least 2 train trials \(got 1\)$"):
        cls(cfg, ctx).fit(poisson_trials(1, 8, 5, 2, 2))
    no_heldout = dataclasses.replace(poisson_trials(4, 8, 5, 2, 2), spikes_heldout=None)
    with pytest.raises(NLBInputError, match=rf"^baseline {name}: the train trials carry no held-out spikes to fit$"):
        cls(cfg, ctx).fit(no_heldout)


@pytest.mark.parametrize("name", ("node_sae", "gru_sae"))
def test_the_saes_report_the_validation_trials_their_model_seed_drew(name):
    from nlb_suite.baseline_api import get_baseline, resolve_config

    cls = get_baseline(name)
    cfg, _ = resolve_config(cls, "mc_maze_small", 5, {"max_epochs": 1, "patience": 1}, "fast", "cpu")
    ctx = RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=5, n_heldout=2, n_forward_bins=2, seed=3)
    model = cls(cfg, ctx)
    assert model.validation_trials() is None  # before the fit
    model.fit(poisson_trials(10, 8, 5, 2, 2))
    np.testing.assert_array_equal(model.validation_trials(), internal_split(10, cfg.valid_frac, 3)[1])


def test_check_ranges_bounds_of_each_kind():
    import dataclasses

    from baselines.torch_core import check_ranges
    from nlb_suite.errors import NLBInputError

    @dataclasses.dataclass
    class Cfg:
        p: float = 1.0
        nn: float = 0.0
        uo: float = 0.0
        uc: float = 1.0
        fr: float = 0.5

    kinds = {"positive": ("p",), "non_negative": ("nn",), "unit_open": ("uo",), "unit_closed": ("uc",),
             "fractions": ("fr",)}
    check_ranges(Cfg(), "x", **kinds)  # every boundary value above passes
    for field, bad, expected in (("p", 0.0, "> 0"), ("nn", -1e-9, ">= 0"), ("uo", 1.0, "in [0, 1)"),
                                 ("uc", 1.0001, "in [0, 1]"), ("fr", 0.0, "in (0, 1)"), ("fr", 1.0, "in (0, 1)"),
                                 ("p", float("inf"), "> 0"), ("uc", float("nan"), "in [0, 1]")):
        with pytest.raises(NLBInputError, match=rf"^baseline x: {field} must be {re.escape(expected)} \(got {bad!r}\)$"):
            check_ranges(Cfg(**{field: bad}), "x", **kinds)


@pytest.mark.parametrize("name,who", [("lfads", "lfads"), ("ndt", "ndt"), ("stndt", "stndt"), ("node_sae", "sae"),
                                      ("gnocchi", "gnocchi")])
def test_each_neural_config_names_itself_and_the_field_out_of_range(name, who):
    from nlb_suite.baseline_api import get_baseline
    from nlb_suite.errors import NLBInputError

    config = get_baseline(name).Config
    with pytest.raises(NLBInputError, match=rf"^baseline {who}: valid_frac must be in \(0, 1\) \(got 1.0\)$"):
        config(valid_frac=1.0)
    with pytest.raises(NLBInputError, match=rf"^baseline {who}: dropout must be in \[0, 1\) \(got 1.0\)$"):
        config(dropout=1.0)
    with pytest.raises(NLBInputError, match=rf"^baseline {who}: cpu_threads must be >= 0 \(got -1\)$"):
        config(cpu_threads=-1)
    with pytest.raises(NLBInputError, match=rf"^baseline {who}: max_epochs must be >= 1 \(got 0\)$"):
        config(max_epochs=0)


def test_curves_log_the_largest_gradient_norm_before_clipping_and_the_clipped_steps():
    """loss (w - 10)^2 from w = 0: the first gradient norm is 20; Adam's first step moves w by lr (0.1), so the
    second is 19.8. A clip at 19.9 scales down the first step only; later epochs stay below it."""
    from baselines.torch_core import Trainer, TrainSettings

    w = torch.nn.Parameter(torch.zeros(()))
    module = torch.nn.Module()
    module.w = w
    trainer = Trainer(module, TrainSettings(lr=0.1, batch_size=2, max_epochs=2, grad_clip=19.9, lr_schedule="none"),
                      torch.device("cpu"))
    rows = trainer.fit(4, lambda idx, epoch: ((w - 10.0) ** 2, {}), lambda epoch: {"valid_loss": 0.0},
                       progress=False)
    assert rows[0]["grad_norm_max"] == pytest.approx(20.0) and rows[0]["clipped_steps"] == 1
    assert rows[1]["grad_norm_max"] == pytest.approx(2 * (10 - 0.2), abs=1e-4) and rows[1]["clipped_steps"] == 0
