"""The one <think>/<answer> splitter: equal to the reference's regexes (run with ``re``) on tag soup."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from videor1.tags import answer_block, reference_format, sole_block, split_output, strict_format, wrapped_in

REFERENCE_ANSWER = r"<answer>\s*(.*?)\s*</answer>"  # first match, DOTALL, stripped; none -> ""
REFERENCE_THINK = r"<think>\s*(.*?)\s*</think>"
REFERENCE_FORMAT = r"<think>.*?</think>\s*<answer>.*?</answer>"  # full match, DOTALL

tag_soup = st.lists(
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            " ",
            "\n",
            "\u00a0",
            "x",
            "B",
            "<",
            ">",
            "/",
            "answer",
        ]
    ),
    max_size=16,
).map("".join)
texts = st.one_of(tag_soup, st.text(max_size=40))


def _reference_search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.DOTALL)
    return match.group(1).strip() if match else None


@settings(max_examples=600, deadline=None)
@given(text=texts)
def test_answer_and_think_equal_the_reference_search(text: str) -> None:
    assert answer_block(text) == _reference_search(REFERENCE_ANSWER, text)
    reasoning, answer, has_tag = split_output(text)
    reference_answer = _reference_search(REFERENCE_ANSWER, text)
    assert has_tag == (reference_answer is not None)
    assert answer == (reference_answer if has_tag else text.strip())
    think = _reference_search(REFERENCE_THINK, text)
    if think is not None:
        assert reasoning == think
    elif has_tag:
        assert reasoning == text[: text.find("<answer>")].strip()


@settings(max_examples=600, deadline=None)
@given(text=texts)
def test_reference_format_equals_the_lazy_full_match(text: str) -> None:
    assert reference_format(text) == bool(re.fullmatch(REFERENCE_FORMAT, text, re.DOTALL))


@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_strict_format_is_the_full_match_with_one_of_each_tag(text: str) -> None:
    stripped = text.strip()
    single = all(stripped.count(t) == 1 for t in ("<think>", "</think>", "<answer>", "</answer>"))
    assert strict_format(text) == (single and bool(re.fullmatch(REFERENCE_FORMAT, stripped, re.DOTALL)))


@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_sole_block_and_wrapped_in(text: str) -> None:
    stripped = text.strip()
    whole = re.fullmatch(r"<answer>(.*)</answer>", stripped, re.DOTALL)
    one = stripped.count("<answer>") == 1 and stripped.count("</answer>") == 1
    assert sole_block(text, "answer") == (whole.group(1).strip() if whole and one else None)
    assert wrapped_in(text, "think") == bool(re.fullmatch(r"\s*<think>.*</think>\s*", text, re.DOTALL))
