"""Prompt text: the one place where every string the model reads is written down.

The released Video-R1 checkpoints were trained with exactly this text (the Video-R1 data format), so it is
interoperability data and is reproduced character for character:

* question text: for multiple choice ``problem + "Options:\\n" + one line per option`` (no separator
  before ``"Options:"``, a newline after every option), otherwise ``problem``;
* prompt: ``QUESTION_TEMPLATE.format(Question=question) + TYPE_SUFFIX[problem_type]``;
* chat messages: one user message whose content is the media part first, then the text; no system
  message for RL (the chat template's default), ``"You are a helpful assistant"`` for SFT;
* SFT target: ``process + "\\n" + solution``.

Two template variants exist. ``"train"`` is the RL training prompt ("between the <think> </think>
tags ... between the <answer> </answer> tags"). ``"eval"`` is the one the reference used at
evaluation, inference and CoT-annotation time. Video-R1 names it only as the "<think> and
</think>" variant; the reference repository's inference and evaluation scripts show it differs in
two places: "between the <think> and </think> tags" and "between the <answer> and </answer> tags".
The per-type suffixes are the same for both variants.
"""

from __future__ import annotations

from typing import Any, Literal

from videor1.types import Sample

Variant = Literal["train", "eval"]

_THOUGHT_INSTRUCTIONS = (
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', "
    "'oh, I see', 'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. "
)

QUESTION_TEMPLATES: dict[str, str] = {
    "train": (
        "{Question}\n"
        + _THOUGHT_INSTRUCTIONS
        + "Provide your detailed reasoning between the <think> </think> tags, "
        "and then give your final answer between the <answer> </answer> tags."
    ),
    "eval": (
        "{Question}\n"
        + _THOUGHT_INSTRUCTIONS
        + "Provide your detailed reasoning between the <think> and </think> tags, "
        "and then give your final answer between the <answer> and </answer> tags."
    ),
}

TYPE_SUFFIX: dict[str, str] = {
    "multiple choice": (
        " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags."
    ),
    "numerical": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    "OCR": (
        " Please transcribe text from the image/video clearly and provide your text answer "
        "within the <answer> </answer> tags."
    ),
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
}

SFT_SYSTEM_PROMPT = "You are a helpful assistant"
"""System message of the reference SFT stage (RL used none)."""


def _where(sample: Sample) -> str:
    return f"{sample.source or 'sample'} (problem_id={sample.problem_id!r})"


def question_text(sample: Sample) -> str:
    """The question as the model sees it: options appended for multiple choice."""
    if sample.problem_type == "multiple choice":
        if not sample.options:
            raise ValueError(f"{_where(sample)} field 'options': multiple choice question has no options")
        return sample.problem + "Options:\n" + "".join(opt + "\n" for opt in sample.options)
    return sample.problem


def build_prompt(sample: Sample, variant: Variant = "train") -> str:
    """Question text + reasoning instructions + the answer-format suffix of the problem type."""
    if variant not in QUESTION_TEMPLATES:
        raise ValueError(f"unknown prompt variant {variant!r}; expected one of {sorted(QUESTION_TEMPLATES)}")
    if sample.problem_type not in TYPE_SUFFIX:
        raise ValueError(
            f"{_where(sample)} field 'problem_type': no prompt for {sample.problem_type!r}; "
            f"expected one of {list(TYPE_SUFFIX)}"
        )
    return (
        QUESTION_TEMPLATES[variant].format(Question=question_text(sample)) + TYPE_SUFFIX[sample.problem_type]
    )


def build_messages(
    sample: Sample, *, variant: Variant = "train", system_prompt: str | None = None
) -> list[dict[str, Any]]:
    """Chat messages in the Hugging Face multimodal format, media part first then the text.

    The media part is a bare ``{"type": "video"}`` / ``{"type": "image"}`` placeholder: the decoded
    frames are passed to the processor separately (see ``videor1.data.collate``).
    """
    if sample.data_type not in ("image", "video"):
        raise ValueError(
            f"{_where(sample)} field 'data_type': expected 'image' or 'video', got {sample.data_type!r}"
        )
    messages: list[dict[str, Any]] = []
    if system_prompt is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": sample.data_type},
                {"type": "text", "text": build_prompt(sample, variant)},
            ],
        }
    )
    return messages


def sft_target(sample: Sample) -> str:
    """The SFT assistant turn: ``process + "\\n" + solution`` (CoT records only)."""
    if sample.process is None:
        raise ValueError(
            f"{_where(sample)} field 'process': missing; SFT needs CoT records (e.g. train_cot.json)"
        )
    return sample.process + "\n" + sample.solution
