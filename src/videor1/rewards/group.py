"""Rewards of one group of rollouts (one question): accuracy, format, length and their total.

``score_group`` follows steps 2, 4 and 5 of Video-R1's T-GRPO (https://arxiv.org/abs/2503.21776):

- accuracy (``accuracy_reward``) and format (``format_reward``) of every ordered rollout;
- length (``length_bonus``): if at least two ordered rollouts are correct (accuracy > 0.1), each
  correct one whose length (tokens, EOS included) lies in ``[320, 512]`` gets ``+0.2``;
- total = accuracy + format + length;
- the shuffled rollouts (T-GRPO) are scored for accuracy only.

The temporal bonus (step 3) is not a reward component (``videor1.algorithms.temporal``). The
reference tests "correct" on the accuracy *after* the temporal bonus for the length reward; the
bonus only goes to rollouts already above the threshold, so testing the raw accuracy is the same. A scorer that raises scores 0 (as in the reference) and is counted in
``scorer_errors``, so a broken scorer shows up in the logs instead of looking like a bad policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from videor1.rewards.accuracy import score_answer
from videor1.rewards.format import format_reward
from videor1.types import RewardBreakdown


def length_bonus(
    accuracy: Sequence[float],  # [G] accuracy rewards of the ordered rollouts
    lengths: Sequence[int],  # [G] completion lengths in tokens, EOS included
    *,
    omega: float,
    min_length: int,
    max_length: int,
    correct_threshold: float,
) -> list[float]:
    """Per-rollout length bonus (Video-R1, https://arxiv.org/abs/2503.21776).

    >>> ref = dict(omega=0.2, min_length=320, max_length=512, correct_threshold=0.1)
    >>> length_bonus([1, 1, 0, 1], [400, 600, 400, 320], **ref)  # 3 correct; 400 and 320 inside [320, 512]
    [0.2, 0.0, 0.0, 0.2]
    >>> length_bonus([1, 0, 0, 0], [400, 400, 400, 400], **ref)  # fewer than two correct: no bonus
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
    shuffled_completions: Sequence[str] = (),
    mode: str,
    length_reward: bool,
    omega: float,
    length_min: int,
    length_max: int,
    correct_threshold: float,
) -> RewardBreakdown:
    """Named reward components of one group, each a list over the ordered rollouts.

    ``shuffled_completions`` are scored for accuracy only (``shuffled_accuracy``); their parse
    failures are counted apart from the ordered rollouts' ``parse_failures``.

    >>> done = "<think>" + "x" * 10 + "</think><answer>B</answer>"
    >>> out = score_group([done, "<answer>A</answer>"], "<answer>B</answer>", "multiple choice",
    ...                   lengths=[400, 400], shuffled_completions=["<answer>A</answer>"], mode="default",
    ...                   length_reward=True, omega=0.2, length_min=320, length_max=512, correct_threshold=0.1)
    >>> out.accuracy, out.format, out.length, out.total, out.shuffled_accuracy
    ([1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0])
    """
    if len(completions) != len(lengths):
        raise ValueError(f"score_group: {len(completions)} completions but {len(lengths)} lengths")
    scores = [score_answer(text, solution, problem_type, mode=mode) for text in completions]
    shuffled = [score_answer(text, solution, problem_type, mode=mode) for text in shuffled_completions]
    accuracy = [score.value for score in scores]
    formats = [format_reward(text, mode=mode) for text in completions]
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
    errors = [score.reason for score in scores + shuffled if score.raised]
    return RewardBreakdown(
        accuracy=accuracy,
        format=formats,
        length=length,
        total=[a + f + n for a, f, n in zip(accuracy, formats, length)],
        shuffled_accuracy=[score.value for score in shuffled],
        parse_failures=sum(not score.parse_ok for score in scores),
        shuffled_parse_failures=sum(not score.parse_ok for score in shuffled),
        scorer_errors=len(errors),
        scorer_error=errors[0] if errors else "",
    )
