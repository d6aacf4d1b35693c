"""Dynamic sampling (DAPO): keep only groups that carry a learning signal, refill the batch with new questions.

A group carries no signal when every advantage it would train on is zero. The decision is taken on
those advantages, not on the rewards, because the temporal bonus can give tied rewards non-zero
advantages (``videor1.algorithms.temporal.place_bonus``). The recipe rolls out extra questions (up
to ``rl.max_resample_rounds`` more rounds) until ``target`` informative groups are collected; if
the rounds run out the batch is filled with signal-free leftovers so that every rank keeps the same
batch shape.

The reference does not do this (its zero-variance groups stay in the loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

T = TypeVar("T")


def informative_mask(
    advantages: torch.Tensor,  # [Q, G] the advantages the policy would train on
    *,
    atol: float = 1e-6,
) -> torch.Tensor:  # [Q] bool: True where some rollout's advantage is non-zero
    """Groups worth training on: some advantage differs from zero by more than ``atol``.

    >>> informative_mask(torch.tensor([[0.0, 0.0], [0.7, -0.7], [0.3, 0.3]]))  # the last: a fired bonus
    tensor([False,  True,  True])
    """
    return (advantages.abs() > atol).any(dim=1)


@dataclass
class GroupFiller(Generic[T]):
    """Collects informative groups across rollout rounds until ``target`` are held.

    ``add(groups, advantages)`` takes one round (a list of per-question group objects and their
    ``[Q, G]`` advantages); ``batch()`` returns exactly ``target`` groups, informative first, topped
    up with signal-free leftovers in arrival order when not enough informative ones were found.
    """

    target: int
    kept: list[T] = field(default_factory=list)
    leftovers: list[T] = field(default_factory=list)
    seen: int = 0
    dropped: int = 0

    def add(self, groups: list[T], advantages: torch.Tensor) -> None:
        if len(groups) != advantages.shape[0]:
            raise ValueError(f"{len(groups)} groups but advantages has {advantages.shape[0]} rows")
        keep = informative_mask(advantages).tolist()
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
