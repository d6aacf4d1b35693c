"""Rewards of one group of rollouts (one question): accuracy, format, length, temporal, total.

``score_group`` follows steps 2–5 of Video-R1's T-GRPO (https://arxiv.org/abs/2503.21776):

- accuracy (``accuracy_reward``) and format (``format_reward``) of every ordered rollout;
- temporal: for videos with a shuffled group, ``videor1.algorithms.temporal.temporal_decision`` on
  the ordered and shuffled accuracy rewards; images never get it, shuffled rollouts only feed it;
- length (``length_bonus``): if at least two ordered rollouts are correct (accuracy > 0.1), each
  correct one whose length (tokens, EOS included) lies in ``[320, 512]`` gets ``+0.2``;
- total = accuracy + temporal + format + length.

The reference tests "correct" on the accuracy *after* the temporal bonus for the length reward; the
bonus only goes to rollouts already above the threshold, so testing the raw accuracy is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from videor1.algorithms.temporal import CORRECT_THRESHOLD, TEMPORAL_ALPHA, TEMPORAL_MU, temporal_decision
from videor1.rewards.accuracy import score_answer
from videor1.rewards.format import format_reward
from videor1.types import RewardBreakdown

LENGTH_OMEGA = 0.2
LENGTH_MIN = 320
LENGTH_MAX = 512


def length_bonus(
    accuracy: Sequence[float],  # [G] accuracy rewards of the ordered rollouts
    lengths: Sequence[int],  # [G] completion lengths in tokens, EOS included
    *,
    omega: float = LENGTH_OMEGA,
    min_length: int = LENGTH_MIN,
    max_length: int = LENGTH_MAX,
    correct_threshold: float = CORRECT_THRESHOLD,
) -> list[float]:
    """Per-rollout length bonus (Video-R1, https://arxiv.org/abs/2503.21776).

    >>> length_bonus([1, 1, 0, 1], [400, 600, 400, 320])  # 3 correct; 400 and 320 inside [320, 512]
    [0.2, 0.0, 0.0, 0.2]
    >>> length_bonus([1, 0, 0, 0], [400, 400, 400, 400])  # fewer than two correct: no bonus
    [0.0, 0.0, 0.0, 0.0]
    """
    if len(accuracy) != len(lengths):
        raise ValueError(f"length_bonus: {len(accuracy)} accuracy rewards but {len(lengths)} lengths")
    correct = [acc > correct_threshold for acc in accuracy]
    if sum(correct) < 2:
        return [0.0] * len(accuracy)
    return [
        omega if ok and min_length <= length <= max_length else 0.0 for ok, length in zip(correct, lengths)
    ]


def score_group(
    completions: Sequence[str],
    solution: str,
    problem_type: str,
    *,
    lengths: Sequence[int],
    shuffled_completions: Sequence[str] | None = None,
    is_video: bool,
    mode: str = "default",
    length_reward: bool = True,
    mu: float = TEMPORAL_MU,
    alpha: float = TEMPORAL_ALPHA,
    omega: float = LENGTH_OMEGA,
    length_min: int = LENGTH_MIN,
    length_max: int = LENGTH_MAX,
    correct_threshold: float = CORRECT_THRESHOLD,
    margin: float | None = None,
) -> RewardBreakdown:
    """Named reward components of one group, each a list over the ordered rollouts.

    ``shuffled_completions`` (None or empty: no temporal decision) are scored for accuracy only and
    feed the decision; their parse failures are recorded in ``temporal_record`` but not in
    ``parse_failures`` (which counts the ordered rollouts). ``margin`` selects the stricter temporal
    rule of ``temporal_decision`` (None = the reference's).

    >>> done = "<think>" + "x" * 10 + "</think><answer>B</answer>"
    >>> out = score_group([done, "<answer>A</answer>"], "<answer>B</answer>", "multiple choice",
    ...                   lengths=[400, 400], shuffled_completions=["<answer>A</answer>"], is_video=True)
    >>> out.accuracy, out.format, out.temporal, out.length, out.total
    ([1.0, 0.0], [1.0, 0.0], [0.3, 0.0], [0.0, 0.0], [2.3, 0.0])
    """
    if len(completions) != len(lengths):
        raise ValueError(f"score_group: {len(completions)} completions but {len(lengths)} lengths")
    scores = [score_answer(text, solution, problem_type, mode=mode) for text in completions]
    accuracy = [score.value for score in scores]
    formats = [format_reward(text, mode=mode) for text in completions]

    shuffled = list(shuffled_completions or [])
    if is_video and shuffled:
        shuffled_scores = [score_answer(text, solution, problem_type, mode=mode) for text in shuffled]
        temporal, record = temporal_decision(
            accuracy,
            [score.value for score in shuffled_scores],
            mu=mu,
            alpha=alpha,
            correct_threshold=correct_threshold,
            margin=margin,
        )
        record["shuffled_parse_failures"] = sum(not score.parse_ok for score in shuffled_scores)
    else:
        temporal, record = temporal_decision(
            accuracy, [], mu=mu, alpha=alpha, correct_threshold=correct_threshold
        )
        if not is_video:
            record["reason"] = "image: no temporal bonus"

    if length_reward:
        length = length_bonus(
            accuracy,
            lengths,
            omega=omega,
            min_length=length_min,
            max_length=length_max,
            correct_threshold=correct_threshold,
        )
    else:
        length = [0.0] * len(completions)

    total = [a + t + f + n for a, t, f, n in zip(accuracy, temporal, formats, length)]
    return RewardBreakdown(
        accuracy=accuracy,
        format=formats,
        length=length,
        temporal=temporal,
        total=total,
        parse_failures=sum(not score.parse_ok for score in scores),
        temporal_record=record,
    )
