"""The eval-target builder of tests/support lays its groups out exactly as nlb_tools does."""

from __future__ import annotations

from support.eval_targets import make_target


def test_builder_layout_matches_nlb_tools_keys():
    target, _ = make_target("area2_bump", 20)
    assert set(target["area2_bump_20"]) == {
        "eval_spikes_heldout", "train_behavior", "eval_behavior", "eval_spikes_heldin_forward",
        "eval_spikes_heldout_forward", "train_decode_mask", "eval_decode_mask", "psth", "eval_cond_idx",
        "train_cond_idx"}
