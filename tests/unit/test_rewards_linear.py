"""100 KB adversarial completions score in well under a second, for every problem type and mode.

These are the strings a degenerate policy emits (long runs of spaces between a sign, a currency sign or
a lead-in word and junk; thousands of unclosed tags). Backtracking regexes took from seconds to
minutes on them; the measured rates live in ``bench/rewards.py``. The bound here is deliberately loose.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videor1.data.records import answer_text, record_problems
from videor1.eval.metrics import multiple_choice_letter
from videor1.eval.scoring import score_item
from videor1.rewards import format_reward, parse_number, parse_option_letter, score_answer, score_group
from videor1.tags import split_output
from videor1.types import PROBLEM_TYPES, Sample

SIZE = 100_000
SPACES = " " * SIZE


def _shapes() -> dict[str, str]:
    inner = {
        "dollar-spaces-x": "$" + SPACES + "x",
        "answer-spaces-1": "answer" + SPACES + "1",
        "minus-spaces-x": "-" + SPACES + "x",
        "number-unit-spaces": "3 m" + SPACES + "1",
        "the-answer-is-spaces": "the" + SPACES + "answer" + SPACES + "is" + SPACES + "1",
        "letter-spaces-or": "B" + SPACES + "or" + SPACES + "!",
        "digits-then-junk": "1" * SIZE + "x!",
        "thousands-then-junk": "1" + ",000" * (SIZE // 4) + "x!",
        "words": "word " * (SIZE // 5),
    }
    shapes = {name: f"<answer>{text}</answer>" for name, text in inner.items()}
    shapes.update({f"bare-{name}": text for name, text in inner.items()})
    shapes.update(
        {
            "unclosed-answers": "<answer>" * (SIZE // 8),
            "unclosed-thinks": "<think>" * (SIZE // 7),
            "think-then-unclosed-answers": "<think>" + "</think><answer>" * (SIZE // 16),
            "closed-thinks-no-answer": "<think>" + "</think>" * (SIZE // 8) + "x",
            "think-spaces-no-answer": "<think>a</think>" + SPACES + "x</answer>",
            "many-blocks": "<think>a</think><answer>B</answer>" * (SIZE // 34),
        }
    )
    return shapes


SHAPES = _shapes()
SOLUTIONS = {
    "multiple choice": "<answer>B</answer>",
    "numerical": "<answer>12</answer>",
    "regression": "<answer>3.5</answer>",
    "OCR": "<answer>open the door</answer>",
    "free-form": "<answer>the ball rolls to the left</answer>",
}


@pytest.fixture(scope="module", autouse=True)
def _warm_scorers() -> None:
    """Build the ROUGE scorer (an NLTK import, about a second) before anything is timed."""
    score_answer("<answer>a b</answer>", "<answer>a</answer>", "free-form")


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


@pytest.mark.parametrize("shape", list(SHAPES))
def test_adversarial_strings_score_in_linear_time(shape: str) -> None:
    text = SHAPES[shape]
    slow = {}
    for problem_type in PROBLEM_TYPES:
        for mode in ("default", "video-r1"):
            slow[f"score_answer/{problem_type}/{mode}"] = _timed(
                score_answer, text, SOLUTIONS[problem_type], problem_type, mode=mode
            )
            slow[f"score_group/{problem_type}/{mode}"] = _timed(
                score_group,
                [text, text],
                SOLUTIONS[problem_type],
                problem_type,
                lengths=[400, 400],
                shuffled_completions=[text],
                mode=mode,
                length_reward=True,
                omega=0.2,
                length_min=320,
                length_max=512,
                correct_threshold=0.1,
            )
        sample = Sample(
            problem_id=1,
            problem="q",
            data_type="video",
            problem_type=problem_type,
            options=["A. left", "B. right"] if problem_type == "multiple choice" else [],
            solution=SOLUTIONS[problem_type],
            path="./v.mp4",
        )
        slow[f"score_item/{problem_type}"] = _timed(score_item, sample, text)
    for mode in ("default", "video-r1"):
        slow[f"format/{mode}"] = _timed(format_reward, text, mode=mode)
    slow["parse_number"] = _timed(parse_number, text)
    slow["parse_option_letter"] = _timed(parse_option_letter, text)
    slow["multiple_choice_letter"] = _timed(multiple_choice_letter, text, ["A. left", "B. right"])
    slow["split_output"] = _timed(split_output, text)
    slow["answer_text"] = _timed(answer_text, text)
    record = {
        "problem_id": 1,
        "problem": "q",
        "data_type": "video",
        "problem_type": "free-form",
        "options": [],
        "solution": text,
        "process": text,
        "path": "./v.mp4",
    }
    slow["record_problems"] = _timed(record_problems, record)
    too_slow = {name: round(seconds, 2) for name, seconds in slow.items() if seconds > 1.0}
    assert not too_slow, f"{shape}: not linear time on {len(text):,} characters: {too_slow}"


# The number and letter patterns before they were made linear: the same languages, tested equal below.
_OLD_NUMBER_RE = re.compile(
    r"""^\s*[$€£¥]?\s*
        (?P<sign>[-+\u2212]?)\s*[$€£¥]?\s*
        (?P<number>(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,4})?)
        \s*(?:%|[A-Za-z°²³µ][A-Za-z°²³µ/. ]*)?\s*$""",
    re.VERBOSE,
)
_OLD_LETTER_LEAD_RE = re.compile(
    r"^(?i:(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:：]?\s*)?"
    r"(?P<open>[(\[]?)(?P<letter>[A-Za-z])(?P<close>[)\]]?)(?P<punct>[.:,)]?)(?P<rest>\s+.*)?$",
    re.DOTALL,
)
number_soup = st.lists(
    st.sampled_from(
        [" ", "\t", "$", "€", "-", "+", "\u2212", "1", "0", ",", ".", "e", "m", "%", "/", "x", "3"]
    ),
    max_size=12,
).map("".join)
letter_soup = st.lists(
    st.sampled_from(
        [" ", "\n", "the", "answer", "is", ":", "：", "(", ")", "B", "b", ".", ",", "or", "C", "1"]
    ),
    max_size=10,
).map("".join)


@settings(max_examples=800, deadline=None)
@given(text=number_soup)
def test_number_pattern_accepts_what_it_accepted_before(text: str) -> None:
    from videor1.rewards.parsing import _NUMBER_RE

    old, new = _OLD_NUMBER_RE.match(text), _NUMBER_RE.match(text)
    assert (old is None) == (new is None)
    if old is not None:
        assert old.group("number") == new.group("number")
        assert (old.group("sign") or "") == (new.group("sign") or "")


@settings(max_examples=800, deadline=None)
@given(text=letter_soup)
def test_letter_pattern_reads_what_it_read_before(text: str) -> None:
    from videor1.rewards.parsing import _LETTER_RE

    old, new = _OLD_LETTER_LEAD_RE.match(text.strip()), _LETTER_RE.match(text.strip())
    assert (old is None) == (new is None)
    if old is not None:
        assert old.groupdict() == new.groupdict()
