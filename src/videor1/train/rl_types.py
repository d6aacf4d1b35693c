"""The values an RL step's phases hand each other, and the recipe's state (a leaf module: phases import it,
it imports no phase).

One micro-batch of questions becomes, phase by phase::

    list[Question] --rollout--> Rollouts --score--> ScoredGroups --advantages--> TrainBatch
    list[TrainBatch] --logprob_caches--> list[LogProbCache] --update--> UpdateStats

Every value is complete when built and never filled in later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from videor1.algorithms.temporal import Advantages
from videor1.models.vision import MediaFeatures, VisionCounter
from videor1.rollout.base import RolloutEngine
from videor1.types import Completion, Media, RewardBreakdown, Sample, VideoClip

if TYPE_CHECKING:
    from videor1.train.run import Run


@dataclass
class RLState:
    """What ``videor1.train.rl.setup`` builds: the shared run plus what only RL needs."""

    run: Run
    ref_model: nn.Module | None  # frozen reference policy (``rl.beta > 0``), sharded like the policy
    engine: RolloutEngine
    counter: VisionCounter  # counts vision-tower passes (``vit_passes_per_video_question``)
    pad_token_id: int
    warned: set[str] = field(default_factory=set)  # kinds of per-item warning already logged in this run


@dataclass(frozen=True)
class StepGenerators:
    """The randomness of one rank at one step: each generator lives on the device it draws on."""

    data: torch.Generator  # CPU: frame permutations (frames are CPU tensors), refill questions, vLLM seeds
    sampling: torch.Generator  # the policy's device: token draws


@dataclass(frozen=True)
class Question:
    """One prompt of the step with its decoded media."""

    sample: Sample
    media: Media

    @property
    def is_video(self) -> bool:
        return isinstance(self.media, VideoClip)


@dataclass(frozen=True)
class ShuffledTwin:
    """The shuffled copy of one video question (T-GRPO): the same prompt with its frames permuted."""

    question: int  # index of the ordered question in its micro-batch
    clip: VideoClip  # the permuted frames
    frame_order: list[int]  # clip.frames[i] is the ordered clip's frame frame_order[i]


@dataclass(frozen=True)
class Rollouts:
    """Phase 1's result for one micro-batch: G completions per question, G_s per shuffled twin."""

    questions: tuple[Question, ...]
    prompts: Mapping[str, Any]  # the ordered prompts collated (left padded) on the policy's device
    features: MediaFeatures  # the prompts' vision encodings at rollout time (no grad)
    ordered: tuple[list[Completion], ...]  # [Q][G]
    shuffled: tuple[list[Completion], ...]  # [Q][G_s]; empty for images, still clips and plain GRPO
    still_clips: tuple[str, ...]  # why each video without a twin got none (every shuffle left it unchanged)
    tokens: int  # completion tokens generated, ordered and shuffled
    engine_seconds: float  # the engine's generate call alone


@dataclass(frozen=True)
class ScoredGroups:
    """Phase 2's result: each question's reward components (``videor1.rewards.score_group``)."""

    rollouts: Rollouts
    rewards: tuple[RewardBreakdown, ...]  # [Q]


@dataclass(frozen=True)
class TrainBatch:
    """Phase 3's result, what the update trains on: the scored rollouts and their advantages."""

    rollouts: Rollouts
    rewards: tuple[RewardBreakdown, ...]  # [Q]
    advantages: Advantages  # values [Q, G], temporal bonuses and decisions

    @property
    def questions(self) -> tuple[Question, ...]:
        return self.rollouts.questions


@dataclass(frozen=True)
class Collected:
    """Phases 1-3 over this rank's micro-batches, after dynamic sampling."""

    batches: tuple[TrainBatch, ...]  # what the update trains on
    rolled_out: tuple[TrainBatch, ...]  # every micro-batch rolled out this step, refills included
    dropped: int  # groups dynamic sampling dropped for carrying no advantage
    rollout_seconds: float  # media, collation, encoding and generation
    score_seconds: float  # rewards and advantages


@dataclass(frozen=True)
class LogProbCache:
    """Per-token log-probs fixed before the update (no grad), one micro-batch's rows ``[R, C]``.

    ``old`` is ``None`` when the step makes one update (``rl.num_iterations = 1``): the behaviour
    policy is then the policy being differentiated, and its detached log-probs are exact.
    """

    reference: torch.Tensor | None  # [R, C] reference model's; None when rl.beta = 0
    old: torch.Tensor | None  # [R, C] the policy's before the step's first update


@dataclass(frozen=True)
class UpdateStats:
    """One optimiser update's sums on this rank."""

    loss: float  # this rank's part of the loss (summed over ranks: the update's loss)
    kl_sum: float  # k3 KL summed over completion tokens
    clip_sum: float  # clipped completion tokens
    entropy_sum: float  # next-token entropy summed over completion tokens
    tokens: int  # completion tokens
    grad_norm: float  # the same on every rank
