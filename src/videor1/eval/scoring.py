"""Per-item scoring of one model output, both ways: the reference's rules and the official ones.

Prediction (Video-R1's evaluation): the content of the first ``<answer>...</answer>``; when the output has no
such block the whole output (stripped) is the prediction, and the item is counted as
``missing_answer_tag``.

Reference ("video-r1") rules, as the Video-R1 evaluation script scores:

* multiple choice: 1 if ``prediction == ground-truth letter`` after strip (case-sensitive), else 0;
* regression: MRA over θ ∈ {0.50, …, 0.95} with the strict ``<`` and float32 arithmetic; the
  number is read with ``float(prediction.replace(",", ""))`` and an unparsable one scores 0;
* numerical / OCR / free-form (procedural data; the released evaluation files have none): the
  accuracy reward in its ``video-r1`` compatibility mode, applied to the prediction.

Official rules (VSI-Bench's released scorer, used for every benchmark here):

* the prediction is read by its first word: ``prediction.split(" ")[0].rstrip(".").strip()``;
* multiple choice: that word equals the ground-truth letter, case-insensitively (``"b"`` and
  ``"B. dog"`` count, ``"(B)"`` does not);
* regression: ``float`` of that word (``"12 m"`` is 12, ``"1,000"`` is unparsable), MRA with ``<=``;
* numerical / OCR / free-form: the accuracy reward in its ``default`` mode (the fixed rules).

Lenient multiple choice (``videor1.eval.metrics.multiple_choice_letter``: ``"b"``, ``"B."``,
``"(B)"``, ``"B. dog"``, ``"Option B"``, the option's text) is reported separately as ``lenient``
and never replaces either number.

A parse failure is data, not an exception: ``parse_ok`` is False when the prediction has no option
letter (multiple choice, lenient parsing), no number (regression: the official reading; numerical:
the reward's parser) or is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from videor1.data.records import answer_text, option_letters
from videor1.eval.metrics import mean_relative_accuracy, multiple_choice_letter
from videor1.rewards import accuracy_reward, score_answer
from videor1.tags import split_output
from videor1.types import Sample


@dataclass
class ItemScore:
    """Scores of one output; ``metric`` says whether the scores are accuracies or MRAs."""

    prediction: str
    has_answer_tag: bool
    parse_ok: bool
    metric: str  # "accuracy" | "mra"
    video_r1: float
    official: float
    lenient: float | None = None  # multiple choice only: lenient letter parsing


def extract_prediction(output: str) -> tuple[str, bool]:
    """``(prediction, has_answer_tag)``: the first ``<answer>`` content, else the whole output stripped."""
    _, prediction, has_tag = split_output(output)
    return prediction, has_tag


def ground_truth(sample: Sample) -> str:
    """The answer inside the record's ``solution`` (raises naming the record when it has none)."""
    gt = answer_text(sample.solution)
    if gt is None:
        raise ValueError(
            f"{sample.source} (problem_id={sample.problem_id!r}) field 'solution': "
            f"expected one <answer>...</answer>, got {sample.solution!r}"
        )
    return gt


def lenient_letter(prediction: str, options: list[str]) -> str | None:
    """The option letter a lenient reader finds in ``prediction`` (``metrics.multiple_choice_letter``:
    ``"b"``, ``"B."``, ``"(B)"``, ``"B. dog"``, ``"Option B"``, the option's text, or the first word),
    or None when it names none of ``options``.

    >>> lenient_letter("(b) dog", ["A. cat", "B. dog"])
    'B'
    >>> lenient_letter("dog.", ["A. cat", "B. dog"])
    'B'
    >>> lenient_letter("C", ["A. cat", "B. dog"]) is None
    True
    """
    letter = multiple_choice_letter(prediction, options)
    return letter if letter in option_letters(options) else None


def reference_float(text: str) -> float | None:
    """The reference evaluation's number parsing: ``float(text.replace(",", ""))``, else None."""
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def official_word(prediction: str) -> str:
    """VSI-Bench's reading of a prediction: its first space-separated word without trailing dots."""
    return prediction.split(" ")[0].rstrip(".").strip()


def official_float(prediction: str) -> float | None:
    """VSI-Bench's number: ``float`` of :func:`official_word`, else None."""
    try:
        value = float(official_word(prediction))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def score_item(sample: Sample, output: str) -> ItemScore:
    """Score one raw model output against the record's ground truth, both ways."""
    prediction, has_tag = extract_prediction(output)
    gt = ground_truth(sample)
    ptype = sample.problem_type
    if ptype == "multiple choice":
        letter = lenient_letter(prediction, sample.options)
        return ItemScore(
            prediction=prediction,
            has_answer_tag=has_tag,
            parse_ok=letter is not None,
            metric="accuracy",
            video_r1=1.0 if prediction.strip() == gt.strip() else 0.0,
            official=1.0 if official_word(prediction).lower() == gt.strip().lower() else 0.0,
            lenient=1.0 if letter == gt.strip() else 0.0,
        )
    if ptype == "regression":
        gt_value = reference_float(gt)
        if gt_value is None:
            raise ValueError(
                f"{sample.source} (problem_id={sample.problem_id!r}) field 'solution': "
                f"regression answer {gt!r} is not a number"
            )
        ref_value = reference_float(prediction)
        off_value = official_float(prediction)
        return ItemScore(
            prediction=prediction,
            has_answer_tag=has_tag,
            parse_ok=off_value is not None,
            metric="mra",
            video_r1=0.0
            if ref_value is None
            else float(mean_relative_accuracy(ref_value, gt_value, convention="video-r1")),
            official=0.0
            if off_value is None
            else float(mean_relative_accuracy(off_value, gt_value, convention="official")),
        )
    # numerical / OCR / free-form: the accuracy reward applied to the prediction (which may be the
    # whole output), so it is re-wrapped in answer tags for the reward's own extraction.
    wrapped = f"<answer>{prediction}</answer>"
    official = score_answer(wrapped, sample.solution, ptype, mode="default")
    return ItemScore(
        prediction=prediction,
        has_answer_tag=has_tag,
        parse_ok=official.parse_ok,
        metric="accuracy",
        video_r1=float(accuracy_reward(wrapped, sample.solution, ptype, mode="video-r1")),
        official=float(official.value),
    )
