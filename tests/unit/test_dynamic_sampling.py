"""Dynamic sampling: groups without advantage signal are dropped and the batch refilled."""

from __future__ import annotations

import pytest
import torch

from videor1.algorithms.dynamic_sampling import GroupFiller, informative_mask


def test_informative_mask_is_judged_on_advantages():
    # all-zero advantages carry nothing; a spread does; equal non-zero advantages (a fired T-GRPO bonus
    # under the advantage form, on a group whose rewards tie) do too
    advantages = torch.tensor([[0.0, 0.0], [-0.7, 0.7], [0.3, 0.3], [1e-7, -1e-7]])
    assert informative_mask(advantages).tolist() == [False, True, True, False]


def test_filler_refills_across_rounds():
    filler: GroupFiller[str] = GroupFiller(target=2)
    # round 1: q0 no signal (dropped), q1 informative
    filler.add(["q0", "q1"], torch.tensor([[0.0, 0.0], [0.7, -0.7]]))
    assert not filler.full
    # round 2: q2 informative, q3 informative but the batch is already full
    filler.add(["q2", "q3"], torch.tensor([[-0.7, 0.7], [0.3, 0.3]]))
    assert filler.full
    assert filler.batch() == ["q1", "q2"]
    assert (filler.seen, filler.dropped) == (4, 1)


def test_filler_tops_up_with_leftovers_when_rounds_run_out():
    filler: GroupFiller[str] = GroupFiller(target=3)
    filler.add(["a", "b", "c"], torch.tensor([[0.0, 0.0], [-0.7, 0.7], [0.0, 0.0]]))
    assert filler.batch() == ["b", "a", "c"]  # informative first, then leftovers in arrival order


def test_filler_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="2 groups but advantages has 1 rows"):
        GroupFiller(target=1).add(["a", "b"], torch.tensor([[1.0, 0.0]]))
