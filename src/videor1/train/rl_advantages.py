"""Phases 2 and 3 of an RL step: score each group, then its advantages; and dynamic sampling's choice.

:func:`score` and :func:`advantages` are pure (config and values in, a new value out):
``videor1.rewards.score_group`` gives the reward components, and
``videor1.algorithms.temporal.temporal_advantages`` decides and places the temporal bonus.
:func:`informative_groups` picks the groups dynamic sampling keeps
(``videor1.algorithms.dynamic_sampling``) and :func:`subset` restricts a batch to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from videor1.algorithms.dynamic_sampling import GroupFiller, informative_mask
from videor1.algorithms.temporal import TemporalRule, temporal_advantages
from videor1.config import RLConfig
from videor1.train.rl_rollout import collate_prompts, select_media
from videor1.train.rl_types import Rollouts, ScoredGroups, TrainBatch
from videor1.train.run import Run


def score(rl: RLConfig, rollouts: Rollouts) -> ScoredGroups:
    """Reward components of every group; the shuffled rollouts are scored for accuracy only."""
    from videor1.rewards import score_group

    rewards = tuple(
        score_group(
            [c.text for c in ordered],
            q.sample.solution,
            q.sample.problem_type,
            lengths=[len(c.token_ids) for c in ordered],
            shuffled_completions=[c.text for c in shuffled],
            mode=rl.reward_mode,
            length_reward=rl.length_reward,
            omega=rl.length_omega,
            length_min=rl.length_min,
            length_max=rl.length_max,
            correct_threshold=rl.correct_threshold,
        )
        for q, ordered, shuffled in zip(rollouts.questions, rollouts.ordered, rollouts.shuffled)
    )
    return ScoredGroups(rollouts, rewards)


def advantages(rl: RLConfig, scored: ScoredGroups) -> TrainBatch:
    """GRPO or T-GRPO advantages of every group, from the rewards (no bonus) and both groups' accuracies."""
    values = temporal_advantages(
        torch.tensor([r.total for r in scored.rewards]),  # [Q, G]
        torch.tensor([r.accuracy for r in scored.rewards]),  # [Q, G]
        [r.shuffled_accuracy for r in scored.rewards],
        rule=temporal_rule(rl),
        form=rl.temporal_form,
        kind=rl.advantage,
    )
    return TrainBatch(scored.rollouts, scored.rewards, values)


def temporal_rule(rl: RLConfig) -> TemporalRule | None:
    """The configured decision rule; None for plain GRPO."""
    if not rl.temporal:
        return None
    return TemporalRule(rl.temporal_mu, rl.temporal_alpha, rl.correct_threshold, rl.temporal_margin)


def informative_groups(batches: Sequence[TrainBatch], target: int) -> tuple[dict[int, list[int]], int]:
    """Which questions of which batches dynamic sampling keeps (``{batch: [question, ...]}``, exactly
    ``target`` of them, informative first) and how many signal-free groups it dropped."""
    filler: GroupFiller[tuple[int, int]] = GroupFiller(target=target)
    for m, batch in enumerate(batches):
        filler.add([(m, k) for k in range(len(batch.questions))], batch.advantages.values)
    chosen: dict[int, list[int]] = {}
    for m, k in sorted(filler.batch()):
        chosen.setdefault(m, []).append(k)
    return chosen, filler.dropped


def groups_wanted(batches: Sequence[TrainBatch], target: int) -> bool:
    """True while fewer than ``target`` informative groups were rolled out."""
    return sum(int(informative_mask(b.advantages.values).sum()) for b in batches) < target


def subset(run: Run, batch: TrainBatch, keep: list[int]) -> TrainBatch:
    """The batch restricted to questions ``keep``: their prompts collated again (the processor lays out
    the pixels), their encodings, completions, rewards and advantage rows."""
    if keep == list(range(len(batch.questions))):
        return batch
    r = batch.rollouts
    questions = tuple(r.questions[k] for k in keep)
    rollouts = replace(
        r,
        questions=questions,
        prompts=collate_prompts(run, [q.sample for q in questions], [q.media for q in questions]),
        features=select_media(r.features, r.questions, keep),
        ordered=tuple(r.ordered[k] for k in keep),
        shuffled=tuple(r.shuffled[k] for k in keep),
    )
    return TrainBatch(rollouts, tuple(batch.rewards[k] for k in keep), batch.advantages.rows(keep))
