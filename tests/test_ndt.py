"""NDT and STNDT: masks and loss locations, span ramp, attention band, spatial block, InfoNCE, determinism,
config errors, and `nlb-eval run ndt|stndt` feeding compare, report, package and ensemble."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.ndt import NDTBaseline, NDTConfig, NDTData, tokens  # noqa: E402
from baselines.ndt_model import (  # noqa: E402
    NDT,
    TFIXUP_SCOPES,
    NDTDims,
    NDTOutput,
    SpatialWeights,
    context_band,
    corrupt,
    info_nce,
    loss_weights,
    sample_mask,
    sinusoidal_positions,
    span_limit,
)
from baselines.stndt import STNDTBaseline, STNDTConfig  # noqa: E402
from baselines.torch_core import internal_split  # noqa: E402
from nlb_suite.baseline_api import RunContext, TrialSet, build_config, get_baseline, resolve_config  # noqa: E402
from nlb_suite.errors import ConfigFieldError, NLBInputError  # noqa: E402
from nlb_suite.seeding import seed_everything  # noqa: E402
from support.tiny_trials import one_torch_thread, poisson_trials  # noqa: E402, F401  (autouse fixture)

N_IN, N_OUT, T, FWD = 6, 2, 10, 3
TINY = dict(n_layers=1, n_heads=2, ffn_dim=8, dropout=0.1, dropout_embedding=0.1, dropout_rates=0.1,
            context_forward=3, context_backward=3, max_span=2, span_ramp_start=1, span_ramp_end=2, batch_size=8,
            max_epochs=3, patience=3, warmup_epochs=1, lr=3e-3)




def trials(n: int = 16, seed: int = 0) -> TrialSet:
    """Random Poisson train trials with held-out neurons and forward bins."""
    return poisson_trials(n, T, N_IN, N_OUT, FWD, seed, rate=0.5, first_id=100)


def context(seed: int = 0) -> RunContext:
    return RunContext(dataset="mc_maze_small", bin_ms=5, n_heldin=N_IN, n_heldout=N_OUT, n_forward_bins=FWD, seed=seed)


# ----- attention band --------------------------------------------------------------------------------

def test_context_band_by_hand():
    """Bin i sees bins i-2 .. i+1 (backward 2, forward 1); -1 lifts a limit."""
    want = np.array([[1, 1, 0, 0, 0],
                     [1, 1, 1, 0, 0],
                     [1, 1, 1, 1, 0],
                     [0, 1, 1, 1, 1],
                     [0, 0, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(context_band(5, forward=1, backward=2).numpy(), want)
    np.testing.assert_array_equal(context_band(5, forward=-1, backward=0).numpy(), np.triu(np.ones((5, 5), bool)))
    assert context_band(4, -1, -1).all()


def test_attention_ignores_bins_outside_the_band():
    """One layer, eval mode: changing a bin outside bin 0's band leaves bin 0's output unchanged; inside, not."""
    seed_everything(0)
    model = NDT(NDTDims(n_neurons=4, n_steps=8, n_layers=1, n_heads=2, ffn_dim=8, context_forward=2,
                        context_backward=0)).eval()
    x = torch.rand(1, 8, 4)
    base = model(x).log_rates[0, 0]
    far, near = x.clone(), x.clone()
    far[0, 5, 1] += 3.0  # 5 bins ahead of bin 0: outside forward context 2 (one neuron: LayerNorm
    near[0, 2, 1] += 3.0  # 2 bins ahead: inside                               removes a shift of all of them)
    assert torch.equal(model(far).log_rates[0, 0], base)
    assert not torch.allclose(model(near).log_rates[0, 0], base)


# ----- masks --------------------------------------------------------------------------------------

def test_span_ramp():
    """Longest span: 1 before the ramp, linear to max_span between ramp start and end, max_span after."""
    got = [span_limit(e, max_span=5, ramp_start=10, ramp_end=20) for e in (0, 9, 10, 12, 15, 19, 20, 100)]
    assert got == [1, 1, 1, 1, 3, 4, 5, 5]
    assert span_limit(50, max_span=1, ramp_start=0, ramp_end=1) == 1


def test_timestep_mask_covers_whole_bins_in_spans():
    """Mode timestep masks every neuron of a masked bin; each masked run is at least the drawn span width long
    (or ends at the last bin); about mask_ratio of the bins are masked."""
    seed_everything(3)
    width = int(torch.randint(1, 4, (1,)).item())  # replay sample_mask's draw
    seed_everything(3)
    mask = sample_mask((200, 50, 4), ratio=0.25, mode="timestep", span=3)
    assert torch.equal(mask, mask[:, :, :1].expand_as(mask))
    bins = mask[:, :, 0].numpy()
    for row in bins:
        edges = np.flatnonzero(np.diff(np.r_[0, row.astype(int), 0]))
        for start, stop in zip(edges[::2], edges[1::2]):
            assert stop - start >= width or stop == len(row)
    expected = 1 - (1 - 0.25 / width) ** width  # a bin is masked if any of the w seeds behind it fired
    assert abs(bins.mean() - expected) < 0.02
    full = sample_mask((100, 50, 40), ratio=0.25, mode="full", span=1)
    assert abs(full.float().mean().item() - 0.25) < 0.01
    assert not torch.equal(full, full[:, :, :1].expand_as(full))


def test_corrupt_zero_random_keep():
    """Masked entries: zeroed / random count below the batch max / kept in the given shares; unmasked untouched."""
    seed_everything(0)
    x = torch.randint(1, 6, (400, 50, 10)).float()
    mask = torch.rand(x.shape) < 0.3
    out = corrupt(x, mask, zero_ratio=0.8, random_ratio=0.5)
    assert torch.equal(out[~mask], x[~mask])
    m = mask.sum().item()
    zeroed = ((out == 0) & mask).sum().item() / m
    kept = ((out == x) & mask).sum().item() / m
    assert abs(zeroed - (0.8 + 0.2 * 0.5 * 1 / 5)) < 0.01  # random draws hit 0 one time in 5 (counts 0..4)
    assert abs(kept - (0.1 + 0.1 * (1 / 5))) < 0.01  # kept, or a random draw equal to the count
    changed = mask & (out != x)
    assert out[changed].max() <= 4 and out[changed].min() >= 0  # random counts in [0, batch max 5)
    assert torch.equal(corrupt(x, mask, 0.0, 0.0), x)
    assert torch.equal(corrupt(x, mask, 1.0, 0.0)[mask], torch.zeros(m))


def test_loss_weights_by_location():
    """1 on masked held-in entries, 0 on unmasked held-in, 1 on every held-out entry and forward entry."""
    mask = torch.zeros(1, 3, 2, dtype=torch.bool)
    mask[0, 1, :] = True
    w = loss_weights(mask, n_heldout=1, n_forward=2)
    want = np.array([[0, 0, 1], [1, 1, 1], [0, 0, 1], [1, 1, 1], [1, 1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(w[0].numpy(), want)


def test_reconstruction_gradients_route_by_location():
    """The NDT loss: no gradient to (and no dependence on) unmasked held-in entries; gradients on masked held-in,
    every held-out and every forward entry."""
    b = NDTBaseline(NDTConfig(**TINY), context())
    data = NDTData(x=torch.ones(2, T, N_IN), x_obs=torch.ones(2, T, N_IN),
                   target=torch.rand(2, T + FWD, N_IN + N_OUT) * 3, weight=torch.ones(2, T + FWD, N_IN + N_OUT))
    mask = torch.zeros(2, T, N_IN, dtype=torch.bool)
    mask[:, 4] = True
    log_rates = torch.zeros(2, T + FWD, N_IN + N_OUT, requires_grad=True)
    out = NDTOutput(log_rates, torch.zeros(1), None, torch.zeros(1))
    loss = b.recon_loss(out, data, torch.arange(2), mask)
    loss.backward()
    g = log_rates.grad
    unmasked = torch.ones(T, dtype=torch.bool)
    unmasked[4] = False
    assert torch.all(g[:, :T, :N_IN][:, unmasked] == 0)
    assert torch.all(g[:, 4, :N_IN] != 0)
    assert torch.all(g[:, :T, N_IN:] != 0) and torch.all(g[:, T:] != 0)
    changed = NDTData(x=data.x, x_obs=data.x_obs, target=data.target.clone(), weight=data.weight)
    changed.target[:, :4, :N_IN] += 5.0  # unmasked held-in targets: not scored
    assert torch.equal(b.recon_loss(out, changed, torch.arange(2), mask), loss)


# ----- STNDT ---------------------------------------------------------------------------------------

def test_info_nce_hand_computed():
    """Two views of 2 trials, unit features, temperature 0.5: the NT-Xent value computed by hand."""
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[0.6, 0.8], [0.8, -0.6]])
    e = math.exp
    rows = [  # -log(exp(positive / t) / sum over the other three rows)
        -math.log(e(1.2) / (e(0.0) + e(1.2) + e(1.6))),  # z1[0]: b1 0, a2 0.6 (positive), b2 0.8
        -math.log(e(-1.2) / (e(0.0) + e(1.6) + e(-1.2))),  # z1[1]: a1 0, a2 0.8, b2 -0.6 (positive)
        -math.log(e(1.2) / (e(1.2) + e(1.6) + e(0.0))),  # z2[0]: a1 0.6 (positive), b1 0.8, b2 0
        -math.log(e(-1.2) / (e(1.6) + e(-1.2) + e(0.0))),  # z2[1]: a1 0.8, b1 -0.6 (positive), a2 0
    ]
    got = info_nce(z1, z2, temperature=0.5).item()
    assert got == pytest.approx(sum(rows) / 4, rel=1e-6)
    assert info_nce(3 * z1, 0.5 * z2, temperature=0.5).item() == pytest.approx(got, rel=1e-6)  # cosine similarity


def test_spatial_weights_are_row_stochastic_and_neuron_equivariant():
    """Attention across neurons: rows sum to 1; permuting neurons permutes the N x N weights the same way."""
    seed_everything(0)
    sw = SpatialWeights(n_steps=6, n_heads=2)
    s = torch.randn(3, 5, 6)
    w = sw(s)
    assert w.shape == (3, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 5))
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(sw(s[:, perm]), w[:, perm][:, :, perm])


def test_sinusoidal_positions_are_fixed_codes_by_hand():
    """STNDT's positions: column 2i = sin(p / 10000^(2i/w)), 2i + 1 its cosine (odd widths end on a sine); a
    buffer for both branches, never trained or saved, while "learned" keeps NDT's trained tables."""
    codes = sinusoidal_positions(3, 5)
    want = [[math.sin(p / 10000 ** (c / 5)) if c % 2 == 0 else math.cos(p / 10000 ** ((c - 1) / 5))
             for c in range(5)] for p in range(3)]
    np.testing.assert_allclose(codes.numpy(), want, rtol=1e-6, atol=1e-7)
    dims = dict(n_neurons=N_IN + N_OUT, n_steps=T + FWD, n_layers=1, ffn_dim=8, spatial=True)
    fixed = NDT(NDTDims(**dims, position="sinusoidal"))
    names = {n for n, _ in fixed.named_parameters()}
    assert not {"position", "spatial_position"} & names and "position" not in fixed.state_dict()
    torch.testing.assert_close(fixed.position, sinusoidal_positions(T + FWD, N_IN + N_OUT))
    torch.testing.assert_close(fixed.spatial_position, sinusoidal_positions(N_IN + N_OUT, T + FWD))
    learned = NDT(NDTDims(**dims))
    assert {"position", "spatial_position"} <= {n for n, _ in learned.named_parameters()}
    assert len(list(learned.parameters())) == len(list(fixed.parameters())) + 2


def test_tfixup_scales_exactly_the_weights_its_scope_names():
    """T-Fixup over 2 layers scales by 0.67 x 2^-1/4: "full" the value rows (x sqrt 2 more), the attention output
    and both feed-forward blocks; "reference" (what the NDT/STNDT code ends up scaling) the attention output and
    the temporal feed-forward only; "off" nothing. Every weight is otherwise the same draw under each scope."""
    dims = dict(n_neurons=N_IN + N_OUT, n_steps=T + FWD, n_layers=2, ffn_dim=8, spatial=True)
    nets = {}
    for scope in TFIXUP_SCOPES:
        seed_everything(3)
        nets[scope] = {name: p.detach() for name, p in NDT(NDTDims(**dims, tfixup=scope)).named_parameters()}
    s, width = 0.67 * 2 ** -0.25, N_IN + N_OUT
    temporal = {"attn.out.weight", "ffn.0.weight", "ffn.3.weight"}
    mixing = {"mix_ffn.0.weight", "mix_ffn.3.weight"}
    seen = set()
    for name, plain in nets["off"].items():
        leaf = name.split(".", 2)[2] if name.startswith("layers.") else name
        seen.add(leaf)
        torch.testing.assert_close(nets["reference"][name], plain * (s if leaf in temporal else 1.0))
        want = plain * (s if leaf in temporal | mixing else 1.0)
        if leaf == "attn.qkv.weight":
            want = torch.cat([plain[:2 * width], plain[2 * width:] * s * math.sqrt(2.0)])
        torch.testing.assert_close(nets["full"][name], want)
    assert temporal | mixing | {"attn.qkv.weight"} <= seen


def test_stndt_contrastive_loss_is_weighted_infonce_in_training_only(tmp_path):
    """STNDT's extra loss is contrast_weight x InfoNCE; it is logged in training and absent from validation."""
    cfg = STNDTConfig(**{**TINY, "contrast_weight": 0.1})
    b = STNDTBaseline(cfg, RunContext(**{**context().__dict__, "run_dir": tmp_path}))
    b.fit(trials())
    header = (tmp_path / "curves.csv").read_text().splitlines()[0].split(",")
    assert "contrast" in header and not any(h.startswith("valid") and "contrast" in h for h in header)
    data = NDTData(x=torch.rand(4, T, N_IN).round(), x_obs=torch.ones(4, T, N_IN))
    seed_everything(1)
    extra, logs = b.extra_loss(data, torch.arange(4))
    assert extra.item() == pytest.approx(0.1 * logs["contrast"], rel=1e-6)
    off = STNDTBaseline(STNDTConfig(**{**TINY, "contrast_weight": 0.0}), context())
    off.build(N_IN + N_OUT, T + FWD)
    assert off.extra_loss(data, torch.arange(4))[1] == {}


# ----- fit / predict -------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,cfg", [(NDTBaseline, NDTConfig), (STNDTBaseline, STNDTConfig)])
def test_determinism_and_shapes(cls, cfg):
    """One seed, identical rates; another seed, different rates; the validation split is the same for both."""
    train = trials()
    fits = []
    for seed in (7, 7, 8):
        b = cls(cfg(**TINY), context(seed))
        b.fit(train)
        fits.append((b.predict(train), b.validation_trials()))
    (ra, va), (rb, vb), (rc, vc) = fits
    assert ra.heldin.shape == (16, T, N_IN) and ra.heldout.shape == (16, T, N_OUT)
    assert ra.heldin_forward.shape == (16, FWD, N_IN) and ra.heldout_forward.shape == (16, FWD, N_OUT)
    for name in ("heldin", "heldout", "heldin_forward", "heldout_forward"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
    assert not np.array_equal(ra.heldout, rc.heldout)
    np.testing.assert_array_equal(va, vc)  # valid_seed, not the model seed, draws the split
    np.testing.assert_array_equal(va, internal_split(16, 0.2, 0)[1])
    assert not np.array_equal(internal_split(16, 0.2, 1)[1], va)


@pytest.mark.parametrize("cls,cfg", [(NDTBaseline, NDTConfig), (STNDTBaseline, STNDTConfig)])
def test_latents_are_the_window_of_what_the_readout_maps_to_log_rates(cls, cfg):
    """latents() = the encoder's normalised output in the window: the readout of it gives the held-in and
    held-out rates predict() returns; before fit it is a one-line error."""
    train = trials()
    b = cls(cfg(**TINY), context(3))
    with pytest.raises(NLBInputError, match="before fit"):
        b.latents(train)
    b.fit(train)
    lat = b.latents(train)
    assert lat.shape == (16, T, N_IN + N_OUT) and lat.dtype == np.float32
    readout = b.model.readout
    log_rates = torch.as_tensor(lat) @ readout.weight.detach().T + readout.bias.detach()
    rates = b.predict(train)
    np.testing.assert_allclose(np.exp(log_rates.numpy()), np.concatenate([rates.heldin, rates.heldout], 2),
                               rtol=1e-4, atol=1e-6)


def test_tokens_append_zero_heldout_and_forward():
    x = torch.ones(2, T, N_IN)
    tok = tokens(x, N_IN + N_OUT, FWD)
    assert tok.shape == (2, T + FWD, N_IN + N_OUT)
    assert tok[:, :T, :N_IN].eq(1).all() and tok[:, :T, N_IN:].eq(0).all() and tok[:, T:].eq(0).all()


@pytest.mark.parametrize("name,values,match", [
    ("ndt", {"mask_ratio": 0.0}, "mask_ratio"), ("ndt", {"dropout": 1.0}, "dropout"),
    ("ndt", {"mask_mode": "neuron"}, "mask_mode"), ("ndt", {"context_forward": -2}, "context_forward"),
    ("ndt", {"span_ramp_start": 10, "span_ramp_end": 5}, "span_ramp_end"), ("ndt", {"lr": 0}, "lr"), ("ndt", {"valid_seed": -1}, "valid_seed"), ("ndt", {"valid_seed": 2**63}, "valid_seed must be a seed"),
    ("stndt", {"temperature": 0.0}, "temperature"), ("stndt", {"contrast_layer": "decoder"}, "contrast_layer"),
    ("stndt", {"linear_embedder": False}, "linear_embedder"),
    ("stndt", {"position": "rotary"}, "position must be one of learned, sinusoidal"),
    ("ndt", {"tfixup": "partial"}, "tfixup must be one of full, reference, off"),
])
def test_bad_config_values(name, values, match):
    with pytest.raises(NLBInputError, match=match):
        build_config(get_baseline(name), values, source="test")


STNDT_DATASETS = ("mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium", "mc_maze_small")


@pytest.mark.parametrize("dataset", STNDT_DATASETS)
def test_stndt_published_settings_are_stndt_configs_as_they_load(dataset):
    """The YAMLs' top level is STNDT's own setup: width = neurons through a linear embedder, full-mode masking
    of 25 % with no span (the reference never expands spans in full mode), fixed sinusoidal positions
    (LEARNABLE_POSITION False), InfoNCE on the embedder at 0.07 / weight 0.1 / 5 % contrast masking, and dropouts
    inside STNDT's own search ranges."""
    cfg, _ = resolve_config(STNDTBaseline, dataset, 5, profile="none", device="cpu")
    assert (cfg.embed_dim, cfg.linear_embedder, cfg.mask_mode, cfg.mask_ratio, cfg.max_span, cfg.position) == (
        0, True, "full", 0.25, 1, "sinusoidal")
    assert (cfg.contrast_layer, cfg.temperature, cfg.contrast_weight, cfg.contrast_mask_ratio) == (
        "embedder", 0.07, 0.1, 0.05)
    assert cfg.n_layers == (6 if dataset == "dmfc_rsg" else 4) and cfg.weight_decay == 5e-5 and cfg.lr == 1e-3
    top = {"mc_rtt": (0.4, 0.5, 0.6), "area2_bump": (0.6, 0.6, 0.6), "dmfc_rsg": (0.7, 0.7, 0.7)}.get(
        dataset, (0.4, 0.6, 0.4))  # configs/<name>.json: dropout, embedding, rates
    low = 0.3 if dataset == "dmfc_rsg" else 0.0
    for value, high in zip((cfg.dropout, cfg.dropout_embedding, cfg.dropout_rates), top):
        assert low <= value <= high


def test_shapes_the_network_cannot_take_are_one_line_errors():
    with pytest.raises(ConfigFieldError, match=r"ndt: n_heads=2 does not divide the token width 7 \(7 neurons;") as info:
        NDTBaseline(NDTConfig(**TINY), context()).build(7, T + FWD)
    assert info.value.fields == ("n_heads", "embed_dim", "model_dim")
    with pytest.raises(ConfigFieldError, match=r"width 21 \(7 neurons x embed_dim 3;"):
        NDTBaseline(NDTConfig(**{**TINY, "embed_dim": 3}), context()).build(7, T + FWD)
    with pytest.raises(ConfigFieldError, match="stndt: embed_dim=2 makes the token width 16, but the spatial block "
                       "mixes neurons") as info:
        STNDTBaseline(STNDTConfig(**{**TINY, "embed_dim": 2}), context()).build(N_IN + N_OUT, T + FWD)
    assert info.value.fields == ("embed_dim",)


def test_a_shape_the_data_rules_out_names_where_each_value_came_from(synthetic, tmp_path, capsys):
    """The token width's conflicts name the file section and flag of each value (one line, exit 2, no run folder
    left): at config time when model_dim sets the width, at fit time when the data's neurons do."""
    from nlb_suite.cli import main

    folder = str(synthetic("mc_maze_small"))
    yaml_file = Path(__file__).resolve().parents[1] / "baselines" / "configs" / "ndt" / "mc_maze_small.yaml"
    cases = [("ndt", ["--set", "n_heads=3"],
              f"--set (n_heads), {yaml_file}: profiles.fast (model_dim): baseline ndt: n_heads=3 does not divide "
              "the token width 32 (model_dim; set n_heads, embed_dim or model_dim so that it does)"),
             ("ndt", ["--set", "model_dim=0", "--set", "n_heads=3"],  # 142 neurons: only the fit knows
              f"--set (n_heads, model_dim), {yaml_file} (embed_dim): baseline ndt: n_heads=3 does not divide the "
              "token width 142 (142 neurons; set n_heads, embed_dim or model_dim so that it does)"),
             ("stndt", ["--set", "model_dim=40"],
              "--set: baseline stndt: model_dim=40 makes the token width 40, but the spatial block mixes neurons")]
    for name, flags, expected in cases:
        out = tmp_path / name
        rc = main(["run", name, "--dataset", "mc_maze_small", "--data", folder, "--profile", "fast", "--ci", "0",
                   "--out", str(out), *flags])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
        assert err.startswith(f"nlb-eval run: error: {expected}"), err
        assert not out.exists() and list(tmp_path.iterdir()) == []


# ----- end to end through the CLI -----------------------------------------------------------------

def test_cli_run_compare_report_package_ensemble(synthetic, tmp_path, capsys):
    """`nlb-eval run ndt|stndt` (fast profile, tiny) record an internal validation score; compare, report,
    package and ensemble take the run folders, and the ensemble folder too."""
    from nlb_suite.cli import main

    folder = synthetic("mc_maze_small")
    tiny = ["--set", "max_epochs=2", "--set", "patience=2", "--set", "warmup_epochs=1"]
    runs = []
    for name, seed in (("ndt", 0), ("stndt", 1)):
        out = tmp_path / f"{name}{seed}"
        assert main(["run", name, "--dataset", "mc_maze_small", "--data", str(folder), "--profile", "fast",
                     "--seed", str(seed), "--ci", "0", "--out", str(out), *tiny]) == 0
        info = json.loads((out / "run.json").read_text())
        val = info["internal_validation"]
        assert val["n_trials"] == len(val["trial_ids"]) > 0 and math.isfinite(val["co-bps"])
        assert (out / "curves.csv").exists() and (out / f"{name}_best.pt").exists()
        # a torch fit records the CPU kernels it ran on (its numbers are bit-identical only on one machine)
        assert info["machine"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
        runs.append(str(out))
    ens = tmp_path / "ens"
    assert main(["ensemble", *runs, "--out", str(ens), "--ci", "0"]) == 0
    info = json.loads((ens / "run.json").read_text())
    assert info["baseline"] == "ensemble" and 1 <= info["ensemble"]["size"] <= 2
    capsys.readouterr()
    assert main(["compare", *runs, str(ens), "--ci", "0"]) == 0
    table = capsys.readouterr().out
    assert "ensemble" in table and "stndt" in table
    assert main(["report", runs[1], str(ens), "--out", str(tmp_path / "r.html")]) == 0
    assert "ensemble" in (tmp_path / "r.html").read_text()
    assert main(["package", str(ens), "--out", str(tmp_path / "sub.h5")]) == 0
    assert (tmp_path / "sub.h5").exists()
