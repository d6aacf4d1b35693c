"""Group advantages against hand-derived values."""

from __future__ import annotations

import math

import pytest
import torch

from videor1.algorithms.advantages import group_advantages, zero_variance_groups


def test_grpo_std_normalised_unbiased():
    # r = [1, 0, 0, 1]: mean 0.5, unbiased std = sqrt(4 * 0.25 / 3) = sqrt(1/3) = 0.577350
    # A = +-0.5 / (0.577350 + 1e-4) = +-0.865875
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    expected = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([[expected, -expected, -expected, expected]]))


def test_grpo_rows_are_independent():
    # row 0: [3, 1] -> mean 2, unbiased std sqrt(2) -> A = +-1/(1.414214 + 1e-4) = +-0.707057
    # row 1: [5, 5] -> zero spread -> A = 0
    adv = group_advantages(torch.tensor([[3.0, 1.0], [5.0, 5.0]]))
    a = 1 / (math.sqrt(2) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([[a, -a], [0.0, 0.0]]))


def test_dr_grpo_is_mean_centred_only():
    # [3, 1, 2] -> mean 2 -> [1, -1, 0]; no division
    adv = group_advantages(torch.tensor([[3.0, 1.0, 2.0]]), kind="dr-grpo")
    torch.testing.assert_close(adv, torch.tensor([[1.0, -1.0, 0.0]]))


def test_bad_shapes_and_kinds_raise():
    with pytest.raises(ValueError, match="G >= 2"):
        group_advantages(torch.tensor([[1.0]]))
    with pytest.raises(ValueError, match="unknown advantage kind"):
        group_advantages(torch.tensor([[1.0, 0.0]]), kind="ppo")  # type: ignore[arg-type]


def test_zero_variance_groups():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.3, 0.3, 0.3]])
    assert zero_variance_groups(rewards).tolist() == [True, False, True]


# --------------------------------------------------------------------------------------------------
# temporal bonus: before (reference) or after (advantage) the normalisation
# --------------------------------------------------------------------------------------------------


def test_reference_form_divides_the_bonus_out_for_01_rewards():
    from videor1.algorithms.temporal import place_bonus

    # accuracy [1, 1, 1, 0, 0, 0, 0, 0] + format 1 each; the decision fired -> +0.3 on the 3 correct
    acc = torch.tensor([[1.0, 1, 1, 0, 0, 0, 0, 0]])
    rewards = acc + 1.0
    bonus = 0.3 * acc
    plain = group_advantages(rewards)
    ref = place_bonus(rewards, bonus, form="reference", kind="grpo")
    # (1.3 c + 1) has mean and std scaled by 1.3: A changes only through the 1e-4 epsilon
    # unbiased std of c = sqrt(15/56) = 0.517549; plain correct A = 0.625 / (0.517549 + 1e-4) = 1.207381
    assert (ref - plain).abs().max().item() < 1e-4
    assert plain[0, 0].item() == pytest.approx(0.625 / (math.sqrt(15 / 56) + 1e-4), rel=1e-6)


def test_advantage_form_keeps_the_bonus():
    from videor1.algorithms.temporal import place_bonus

    acc = torch.tensor([[1.0, 1, 1, 0, 0, 0, 0, 0]])
    rewards, bonus = acc + 1.0, 0.3 * acc
    plain = group_advantages(rewards)
    ours = place_bonus(rewards, bonus, form="advantage", kind="grpo")
    # correct rollouts: 1.207381 + 0.3 = 1.507381; incorrect unchanged: -0.375 / 0.517649 = -0.724429
    torch.testing.assert_close(ours - plain, bonus)
    assert ours[0, 0].item() == pytest.approx(0.625 / (math.sqrt(15 / 56) + 1e-4) + 0.3, rel=1e-6)
    assert ours[0, 7].item() == pytest.approx(-0.375 / (math.sqrt(15 / 56) + 1e-4), rel=1e-6)
    # not fired (zero bonus): both forms are plain GRPO
    zero = torch.zeros_like(bonus)
    torch.testing.assert_close(place_bonus(rewards, zero, form="advantage", kind="grpo"), plain)
    # all correct and fired: GRPO gives 0, the advantage form +0.3 each
    all_ok = torch.ones(1, 4)
    torch.testing.assert_close(
        place_bonus(all_ok + 1, 0.3 * all_ok, form="advantage", kind="grpo"), torch.full((1, 4), 0.3)
    )
    with pytest.raises(ValueError, match="unknown temporal form"):
        place_bonus(rewards, bonus, form="late", kind="grpo")  # type: ignore[arg-type]
