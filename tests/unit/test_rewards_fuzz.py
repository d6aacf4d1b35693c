"""Fuzz: arbitrary unicode never makes a reward raise or leave [0, 1]."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from videor1.rewards import accuracy_reward, extract_answer, format_reward, score_answer
from videor1.types import PROBLEM_TYPES

# The Video-R1 reward's regexes, run with ``re`` as the oracle (src/r1-v/src/open_r1/grpo.py upstream).
ANSWER_PATTERN = r"<answer>\s*(.*?)\s*</answer>"
REFERENCE_FORMAT_PATTERN = r"<think>.*?</think>\s*<answer>.*?</answer>"

TYPES = [*PROBLEM_TYPES, "unknown type"]
MODES = ["default", "video-r1"]

# Raw unicode, or unicode wrapped in the tags the parsers look for.
texts = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda a, b: f"<think>{a}</think><answer>{b}</answer>", st.text(max_size=30), st.text(max_size=20)
    ),
    st.builds(lambda a: f"<answer>{a}</answer>", st.text(max_size=20)),
    st.builds(lambda n: f"<answer>{n}</answer>", st.floats(allow_nan=True, allow_infinity=True).map(repr)),
)


@settings(max_examples=300, deadline=None)
@given(completion=texts, solution=texts, problem_type=st.sampled_from(TYPES), mode=st.sampled_from(MODES))
def test_accuracy_never_raises_and_stays_in_unit_interval(
    completion: str, solution: str, problem_type: str, mode: str
) -> None:
    value = accuracy_reward(completion, solution, problem_type, mode=mode)
    assert isinstance(value, float) and not math.isnan(value)
    assert 0.0 <= value <= 1.0
    score = score_answer(completion, solution, problem_type, mode=mode)
    assert score.value == value


@settings(max_examples=200, deadline=None)
@given(completion=texts, mode=st.sampled_from(MODES))
def test_format_never_raises_and_is_binary(completion: str, mode: str) -> None:
    assert format_reward(completion, mode=mode) in (0.0, 1.0)


# Strings built from the format's own pieces, to hit the tag-boundary cases.
tag_soup = st.lists(
    st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x", "<", ">", "/"]),
    max_size=14,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(completion=st.one_of(tag_soup, texts))
def test_video_r1_format_equals_the_reference_lazy_pattern(completion: str) -> None:
    expected = 1.0 if re.fullmatch(REFERENCE_FORMAT_PATTERN, completion, re.DOTALL) else 0.0
    assert format_reward(completion, mode="video-r1") == expected


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(tag_soup, texts))
def test_extract_answer_equals_the_reference_regex(text: str) -> None:
    match = re.search(ANSWER_PATTERN, text, re.DOTALL)
    assert extract_answer(text) == (match.group(1).strip() if match else "")
