"""Group-relative advantages for GRPO-style training.

Rewards arrive as one row per question (a *group*) and one column per rollout: ``[Q, G]``.

- ``grpo`` (the reference, Video-R1, https://arxiv.org/abs/2503.21776): ``A = (r - mean_group) / (std_group + 1e-4)`` with
  the *unbiased* standard deviation (``torch.std`` default, divisor ``G - 1``).
- ``dr-grpo`` (Dr.GRPO, Liu et al. 2025): ``A = r - mean_group``. Dividing by the group's spread
  up-weights questions that are nearly always right or nearly always wrong; Dr.GRPO drops that
  division (and pairs it with the ``dr-grpo`` loss aggregation in ``losses.py``).

A group whose rewards are all equal gets zero advantage under both rules: it carries no
learning signal (``dynamic_sampling.py`` can drop and refill such groups).
"""

from __future__ import annotations

from typing import Literal

import torch

AdvantageKind = Literal["grpo", "dr-grpo"]

STD_EPS = 1e-4  # the reference's epsilon in the denominator


def group_advantages(
    rewards: torch.Tensor,  # [Q, G] total reward of each rollout, one row per question
    *,
    kind: AdvantageKind = "grpo",
    eps: float = STD_EPS,
) -> torch.Tensor:  # [Q, G]
    """Advantages of each rollout relative to its own group.

    >>> group_advantages(torch.tensor([[1.0, 0.0]]))  # mean 0.5, unbiased std 0.7071
    tensor([[ 0.7070, -0.7070]])
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be [num_questions, G >= 2], got shape {tuple(rewards.shape)}")
    rewards = rewards.float()
    mean = rewards.mean(dim=1, keepdim=True)  # [Q, 1]
    centred = rewards - mean  # [Q, G]
    if kind == "dr-grpo":
        return centred
    if kind == "grpo":
        std = rewards.std(dim=1, keepdim=True, unbiased=True)  # [Q, 1]
        return centred / (std + eps)
    raise ValueError(f"unknown advantage kind {kind!r}; choose 'grpo' or 'dr-grpo'")


def zero_variance_groups(
    rewards: torch.Tensor,  # [Q, G]
    *,
    atol: float = 1e-6,
) -> torch.Tensor:  # [Q] bool: True where every rollout of the group got the same reward
    """Groups that carry no advantage signal (all rewards equal within ``atol``)."""
    spread = rewards.max(dim=1).values - rewards.min(dim=1).values  # [Q]
    return spread <= atol
