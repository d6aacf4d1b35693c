"""Dynamic sampling (DAPO): keep only groups whose rewards differ, refill the batch with new questions.

A group whose G rollouts all got the same reward has zero advantage under both the std-normalised
and the mean-centred rules, so it contributes only the KL term to the loss and dilutes the
per-sequence mean. With ``rl.dynamic_sampling`` the recipe rolls out extra questions (up to
``rl.max_resample_rounds`` more rounds) until ``target`` informative groups are collected; if the
rounds run out the batch is filled with the least-bad leftovers (zero-variance groups) so that
every rank keeps the same batch shape and collective sequence.

The reference does not do this (its zero-variance groups stay in the loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

from videor1.algorithms.advantages import zero_variance_groups

T = TypeVar("T")


def informative_mask(
    rewards: torch.Tensor,  # [Q, G] total rewards
    *,
    atol: float = 1e-6,
) -> torch.Tensor:  # [Q] bool: True where the group has a reward spread
    """Groups worth training on: not all rewards equal."""
    return ~zero_variance_groups(rewards, atol=atol)


@dataclass
class GroupFiller(Generic[T]):
    """Collects informative groups across rollout rounds until ``target`` are held.

    ``add(groups, rewards)`` takes one round (a list of per-question group objects and their
    ``[Q, G]`` rewards); ``batch()`` returns exactly ``target`` groups, informative first, topped
    up with zero-variance leftovers in arrival order when not enough informative ones were found.
    """

    target: int
    kept: list[T] = field(default_factory=list)
    leftovers: list[T] = field(default_factory=list)
    seen: int = 0
    dropped: int = 0

    def add(self, groups: list[T], rewards: torch.Tensor) -> None:
        if len(groups) != rewards.shape[0]:
            raise ValueError(f"{len(groups)} groups but rewards has {rewards.shape[0]} rows")
        keep = informative_mask(rewards).tolist()
        for group, ok in zip(groups, keep):
            self.seen += 1
            if ok and len(self.kept) < self.target:
                self.kept.append(group)
            elif not ok:
                self.dropped += 1
                self.leftovers.append(group)

    @property
    def full(self) -> bool:
        return len(self.kept) >= self.target

    def batch(self) -> list[T]:
        out = list(self.kept[: self.target])
        out.extend(self.leftovers[: self.target - len(out)])
        if len(out) < self.target:
            raise ValueError(f"only {len(out)} groups collected for a batch of {self.target}")
        return out
