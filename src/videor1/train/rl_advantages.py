"""Phases 2 and 3 of an RL step: score each group, then its advantages; and dynamic sampling's choice.

:func:`score` and :func:`advantages` are pure (config and values in, a new value out):
``videor1.rewards.score_group`` gives the reward components, and
``videor1.algorithms.temporal.temporal_advantages`` decides and places the temporal bonus.
:func:`informative_groups` picks the groups dynamic sampling keeps
(``videor1.algorithms.dynamic_sampling``) and :func:`pack` gathers them into batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from videor1.algorithms.dynamic_sampling import GroupFiller, informative_mask
from videor1.algorithms.temporal import Advantages, TemporalRule, temporal_advantages
from videor1.config import RLConfig
from videor1.models.vision import MediaFeatures
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


def pack(run: Run, batches: Sequence[TrainBatch], picks: Sequence[tuple[int, int]]) -> TrainBatch:
    """One batch of the questions ``picks`` (``(batch, question)`` pairs, in that order): their prompts
    collated again (the processor lays out the pixels), their encodings, completions, rewards and
    advantage rows. ``still_clips``, ``tokens`` and ``engine_seconds`` stay those of the rollout calls
    the questions came from (the step metrics read them from every rolled-out batch instead)."""
    first = picks[0][0]
    if list(picks) == [(first, k) for k in range(len(batches[first].questions))]:
        return batches[first]
    runs: list[tuple[int, list[int]]] = []  # consecutive picks from one batch
    for m, k in picks:
        if runs and runs[-1][0] == m:
            runs[-1][1].append(k)
        else:
            runs.append((m, [k]))
    features = MediaFeatures()
    for m, keep in runs:  # images after images, videos after videos: collate's order for these questions
        r = batches[m].rollouts
        features = features.concat(select_media(r.features, r.questions, keep))
    sources = [batches[m] for m in dict.fromkeys(m for m, _ in runs)]
    questions = tuple(batches[m].questions[k] for m, k in picks)
    rollouts = replace(
        sources[0].rollouts,
        questions=questions,
        prompts=collate_prompts(run, [q.sample for q in questions], [q.media for q in questions]),
        features=features,
        ordered=tuple(batches[m].rollouts.ordered[k] for m, k in picks),
        shuffled=tuple(batches[m].rollouts.shuffled[k] for m, k in picks),
        still_clips=tuple(c for b in sources for c in b.rollouts.still_clips),
        tokens=sum(b.rollouts.tokens for b in sources),
        engine_seconds=sum(b.rollouts.engine_seconds for b in sources),
    )
    rows = [batches[m].advantages.rows(keep) for m, keep in runs]
    values = Advantages(
        torch.cat([a.values for a in rows]),
        torch.cat([a.bonuses for a in rows]),
        torch.cat([a.shift for a in rows]),
        tuple(d for a in rows for d in a.decisions),
    )
    return TrainBatch(rollouts, tuple(batches[m].rewards[k] for m, k in picks), values)
