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
