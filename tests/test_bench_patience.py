"""benchmarks/bench_patience.py: replaying early stopping on a finished run's curves is what training does."""

from support.bench_scripts import load_bench


def test_replay_keeps_the_lowest_and_stops_after_patience_flat_epochs():
    b = load_bench("bench_patience")
    values = [3.0, 2.0, 2.5, 2.4, 1.0, 1.5]
    assert b.replay(values, 2) == (1, 3)  # epochs 2 and 3 do not beat epoch 1: 3 - 1 >= 2
    assert b.replay(values, 3) == (4, 5)  # epoch 4 is new lowest; the curve ends first
    assert b.replay([1.0, 1.0, 1.0], 1) == (0, 1)  # equal is not lower


def test_replay_matches_a_run_trained_with_that_patience(synthetic, tmp_path):
    """A tiny NDT trained 10 epochs, replayed at patience 2, against the same fit trained with patience 2."""
    from nlb_suite.runs import RunSpec, execute

    b = load_bench("bench_patience")
    data = synthetic("mc_maze_small")
    base = {"max_epochs": 10, "warmup_epochs": 1, "lr": 0.05}  # a large step: the validation NLL stalls
    curves = {}
    for patience in (10, 2):
        out = tmp_path / f"p{patience}"
        execute(RunSpec("ndt", "mc_maze_small", data=data, out=out, seed=0, device="cpu", ci=0, profile="fast",
                        overrides={**base, "patience": patience}), progress=False)
        curves[patience] = b.read_curves(out, "valid_nll")[0]
    kept, last = b.replay(curves[10], 2)
    assert len(curves[2]) == last + 1 < 10  # stopped where the replay says, before the budget
    assert curves[2] == curves[10][: last + 1]  # the same computation up to the stop
    assert b.replay(curves[2], 2)[0] == kept
