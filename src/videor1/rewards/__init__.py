"""Rewards: pure functions, string in, number out (the Video-R1 reward).

``accuracy_reward`` / ``score_answer`` (five problem types, ``mode="default"`` or ``"video-r1"``),
``format_reward``, ``length_bonus`` and ``score_group`` (all components of one group, as a
``videor1.types.RewardBreakdown``). ``prepare_scorers(problem_types)`` imports at setup what those
problem types need (free-form: ``rouge_score``), so no reward call imports anything.
"""

from videor1.rewards.accuracy import (
    REWARD_MODES,
    AnswerScore,
    accuracy_reward,
    prepare_scorers,
    score_answer,
)
from videor1.rewards.format import format_reward
from videor1.rewards.group import length_bonus, score_group
from videor1.rewards.parsing import extract_answer, normalize_text, parse_number, parse_option_letter

__all__ = [
    "REWARD_MODES",
    "AnswerScore",
    "accuracy_reward",
    "extract_answer",
    "format_reward",
    "length_bonus",
    "normalize_text",
    "parse_number",
    "parse_option_letter",
    "prepare_scorers",
    "score_answer",
    "score_group",
]
