"""The prompt strings are interoperability data: pinned character by character (REFERENCE §1)."""

from __future__ import annotations

import pytest

from videor1.data.prompts import (
    SFT_SYSTEM_PROMPT,
    build_messages,
    build_prompt,
    question_text,
    sft_target,
)
from videor1.types import Sample

# Copied from REFERENCE §1 (one line there); the question is "{Question}".
TRAIN_TEMPLATE = (
    "{Question}\nPlease think about this question as if you were a human pondering deeply. Engage in an "
    "internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break "
    "it down', etc, or other natural language thought expressions It's encouraged to include "
    "self-reflection or verification in the reasoning process. Provide your detailed reasoning between "
    "the <think> </think> tags, and then give your final answer between the <answer> </answer> tags."
)
# The eval/inference variant: "<think> and </think>" and "<answer> and </answer>".
EVAL_TEMPLATE = (
    "{Question}\nPlease think about this question as if you were a human pondering deeply. Engage in an "
    "internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break "
    "it down', etc, or other natural language thought expressions It's encouraged to include "
    "self-reflection or verification in the reasoning process. Provide your detailed reasoning between "
    "the <think> and </think> tags, and then give your final answer between the <answer> and </answer> tags."
)
SUFFIXES = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.",
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "regression": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": " Please transcribe text from the image/video clearly and provide your text answer within the <answer> </answer> tags.",
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
}


def make(problem_type: str = "multiple choice", **kw) -> Sample:
    options = ["A. cat", "B. dog"] if problem_type == "multiple choice" else []
    base = dict(
        problem_id=7,
        problem="Which animal runs first?",
        data_type="video",
        problem_type=problem_type,
        options=options,
        solution="<answer>B</answer>",
        path="./v.mp4",
        source="train.json[3]",
    )
    base.update(kw)
    return Sample(**base)


def test_question_text_multiple_choice_has_no_separator_and_trailing_newline():
    assert question_text(make()) == "Which animal runs first?Options:\nA. cat\nB. dog\n"


def test_question_text_other_types_is_the_problem():
    assert question_text(make("numerical", problem="How many?")) == "How many?"


@pytest.mark.parametrize("problem_type", list(SUFFIXES))
@pytest.mark.parametrize("variant,template", [("train", TRAIN_TEMPLATE), ("eval", EVAL_TEMPLATE)])
def test_prompt_is_exact_reference_text(problem_type, variant, template):
    sample = make(problem_type)
    expected = template.replace("{Question}", question_text(sample)) + SUFFIXES[problem_type]
    assert build_prompt(sample, variant) == expected


def test_full_multiple_choice_training_prompt_literal():
    expected = (
        "Which animal runs first?Options:\nA. cat\nB. dog\n\nPlease think about this question as if you "
        "were a human pondering deeply. Engage in an internal dialogue using expressions such as 'let me "
        "think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other natural language thought "
        "expressions It's encouraged to include self-reflection or verification in the reasoning process. "
        "Provide your detailed reasoning between the <think> </think> tags, and then give your final answer "
        "between the <answer> </answer> tags. Please provide only the single option letter (e.g., A, B, C, "
        "D, etc.) within the <answer> </answer> tags."
    )
    assert build_prompt(make()) == expected


def test_braces_in_question_are_not_format_fields():
    sample = make("free-form", problem="What does {x} mean?")
    assert build_prompt(sample).startswith("What does {x} mean?\nPlease think")


def test_messages_media_first_then_text_and_optional_system():
    sample = make(data_type="image")
    msgs = build_messages(sample)
    assert msgs == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": build_prompt(sample)}]}
    ]
    msgs = build_messages(make(), variant="eval", system_prompt=SFT_SYSTEM_PROMPT)
    assert msgs[0] == {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant"}]}
    assert msgs[1]["content"][0] == {"type": "video"}
    assert msgs[1]["content"][1]["text"] == build_prompt(make(), "eval")


def test_sft_target_and_missing_process_error_names_record():
    sample = make(process="<think>dog is faster</think>")
    assert sft_target(sample) == "<think>dog is faster</think>\n<answer>B</answer>"
    with pytest.raises(ValueError, match=r"train\.json\[3\].*problem_id=7.*'process'"):
        sft_target(make())


def test_unknown_variant_and_problem_type_raise():
    with pytest.raises(ValueError, match="variant"):
        build_prompt(make(), "chat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"train\.json\[3\].*problem_type.*essay"):
        build_prompt(make("essay"))
    with pytest.raises(ValueError, match="no options"):
        question_text(make(options=[]))
