"""Accuracy reward: one contract for the five Video-R1 problem types, in two modes.

``mode="video-r1"`` reproduces the reference training reward (the Video-R1 reward) exactly, quirks included:

- multiple choice: the extracted strings are equal (case-sensitive) → 1;
- numerical: 0 if exactly one of (gt, pred) contains "." or ","; otherwise ``float(s.replace(",", ""))``
  on both (Python's ``float``, so ``" inf"`` and ``"1_0"`` parse) and 1 if equal after ``round(x, 2)``;
- OCR: ``clip(1 - WER)``, WER = word Levenshtein over ``split()`` / ``max(1, len(ref))``, no normalisation;
- free-form: mean of ROUGE-1/2/L F-measures (``rouge_score``, stemming), clipped to [0, 1];
- regression: ``1 - clip((|pred - gt| + 1e-9) / (|gt| + 1e-9), 0, 1)``;
- any other type, unparsable input or exception → 0.

``mode="default"`` fixes the known defects:

- multiple choice: option letters parsed tolerantly (``parse_option_letter``: "b", "B.", "(B)",
  "B. cat", "Option B" are B; "AB" and hedges such as "B or C" are parse failures). A ground truth that is not a letter is compared to
  the prediction as ``normalize_text`` strings;
- numerical: both sides parsed by ``parse_number`` ("3.0" = "3", "1,000" = "1000", "-0" = "0",
  "12 m" = "12", "45%" = "45", "$3" = "3"), then equal after ``round(x, 2)`` as in the reference;
- regression: same parser; ``gt != 0``: ``1 - clip(|pred - gt| / |gt|, 0, 1)`` (the reference without
  its 1e-9); ``gt == 0``: ``1 - clip(|pred| / zero_scale, 0, 1)`` with ``zero_scale = 1`` (absolute
  error in the answer's own unit), so an exact 0 scores 1 instead of the reference's 0;
- OCR: WER after ``normalize_text`` on both sides (NFKC, case-fold, punctuation → space, whitespace
  collapsed);
- free-form: the reference ROUGE mean (``rouge_score``'s tokenizer already lower-cases and drops
  punctuation; note it also drops non-ASCII letters, so non-Latin answers score 0 in both modes).

Parse failures: a prediction that cannot be read for its problem type (no ``<answer>`` block or an
empty one, no option letter, no number) scores 0 and ``score_answer`` reports ``parse_ok=False``, so
callers count it (in video-r1 mode a missing ``<answer>`` block is counted too, while the value
stays the reference's). Neither function ever raises: in both modes an exception is turned into a 0 (as the
reference does), and ``score_answer`` reports it as a parse failure with its reason.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Literal, NamedTuple

from videor1.rewards.parsing import extract_answer, normalize_text, parse_number, parse_option_letter
from videor1.tags import find_block

RewardMode = Literal["default", "video-r1"]
REWARD_MODES: tuple[str, ...] = ("default", "video-r1")

REGRESSION_ZERO_SCALE = 1.0  # default mode: error scale when the ground truth is 0


class AnswerScore(NamedTuple):
    """One accuracy scoring: the reward and what was read from the completion."""

    value: float  # the accuracy reward in [0, 1]
    parsed: str  # the prediction as read (extracted answer, letter or number as text)
    parse_ok: bool  # False when the prediction could not be read for the problem type
    reason: str = ""  # why parse_ok is False (or why the ground truth was unusable)
    raised: bool = False  # the scorer itself failed (an exception, scored 0 as the reference does)


def accuracy_reward(completion: str, solution: str, problem_type: str, *, mode: str = "default") -> float:
    """Accuracy reward in [0, 1] of one completion against a ``<answer>...</answer>`` solution.

    Never raises; see the module docstring for every rule of both modes.

    >>> accuracy_reward("<think>...</think><answer>(b) cat</answer>", "<answer>B</answer>", "multiple choice")
    1.0
    >>> accuracy_reward("<answer>b</answer>", "<answer>B</answer>", "multiple choice", mode="video-r1")
    0.0
    >>> accuracy_reward("<answer>3.0</answer>", "<answer>3</answer>", "numerical")
    1.0
    >>> accuracy_reward("<answer>3.0</answer>", "<answer>3</answer>", "numerical", mode="video-r1")
    0.0
    >>> accuracy_reward("<answer>0</answer>", "<answer>0</answer>", "regression")
    1.0
    >>> accuracy_reward("<answer>0</answer>", "<answer>0</answer>", "regression", mode="video-r1")
    0.0
    """
    return score_answer(completion, solution, problem_type, mode=mode).value


def score_answer(completion: str, solution: str, problem_type: str, *, mode: str = "default") -> AnswerScore:
    """Like ``accuracy_reward`` but also says what was parsed and whether parsing failed.

    >>> score_answer("<answer>AB</answer>", "<answer>A</answer>", "multiple choice")
    AnswerScore(value=0.0, parsed='AB', parse_ok=False, reason='no option letter in prediction', raised=False)
    >>> score_answer("I think 12", "<answer>12</answer>", "numerical").reason
    'no <answer> block'
    """
    try:
        pred, gt = extract_answer(completion), _solution_answer(solution)
        if mode == "default":
            if not pred and problem_type in _DEFAULT_SCORERS:
                return AnswerScore(0.0, pred, False, _missing_answer_reason(completion))
            return _score_default(pred, gt, problem_type)
        if mode == "video-r1":
            score = _score_video_r1(pred, gt, problem_type)
            if not pred and score.parse_ok:  # scored by the reference rule, but still counted
                return AnswerScore(score.value, pred, False, _missing_answer_reason(completion))
            return score
        return AnswerScore(0.0, "", False, f"unknown reward mode {mode!r}; expected one of {REWARD_MODES}")
    except Exception as exc:  # the reference turns every exception into 0; we also flag it
        return AnswerScore(0.0, "", False, f"exception: {type(exc).__name__}: {exc}", raised=True)


def _missing_answer_reason(completion: str) -> str:
    return "empty <answer> block" if find_block(completion, "answer") else "no <answer> block"


@functools.lru_cache(maxsize=4096)
def _solution_answer(solution: str) -> str:
    # A group scores many completions against one solution; cache its extraction.
    return extract_answer(solution)


@functools.lru_cache(maxsize=4096)
def _solution_number(gt: str) -> float | None:
    return parse_number(gt)


# --------------------------------------------------------------------------- video-r1 mode


def _score_video_r1(pred: str, gt: str, problem_type: str) -> AnswerScore:
    if problem_type == "multiple choice":
        return AnswerScore(1.0 if pred.strip() == gt.strip() else 0.0, pred, True)
    if problem_type == "numerical":
        if (("." in gt) or ("," in gt)) != (("." in pred) or ("," in pred)):
            return AnswerScore(0.0, pred, True, "decimal separator in only one of gt/pred")
        gt_number, pred_number = _reference_float(gt), _reference_float(pred)
        if gt_number is None or pred_number is None:
            return _unparsable(pred, pred_number is None)
        return AnswerScore(1.0 if round(gt_number, 2) == round(pred_number, 2) else 0.0, pred, True)
    if problem_type == "OCR":
        return AnswerScore(max(0.0, min(1.0, 1.0 - word_error_rate(gt, pred))), pred, True)
    if problem_type == "free-form":
        return AnswerScore(max(0.0, min(1.0, rouge_mean_f(gt, pred))), pred, True)
    if problem_type == "regression":
        gt_number, pred_number = _reference_float(gt), _reference_float(pred)
        if gt_number is None or pred_number is None:
            return _unparsable(pred, pred_number is None)
        rel_diff = (abs(pred_number - gt_number) + 1e-9) / (abs(gt_number) + 1e-9)
        rel_diff = min(1.0, max(0.0, rel_diff))  # same order as the reference: max(0, nan) is 0
        return AnswerScore(1.0 - rel_diff, pred, True)
    return AnswerScore(0.0, pred, False, f"unknown problem_type {problem_type!r}")


def _reference_float(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _unparsable(pred: str, pred_bad: bool) -> AnswerScore:
    if pred_bad:
        return AnswerScore(0.0, pred, False, "no number in prediction")
    return AnswerScore(0.0, pred, True, "no number in ground truth")


# --------------------------------------------------------------------------- default mode


def _score_default(pred: str, gt: str, problem_type: str) -> AnswerScore:
    if problem_type not in _DEFAULT_SCORERS:
        return AnswerScore(0.0, pred, False, f"unknown problem_type {problem_type!r}")
    return _DEFAULT_SCORERS[problem_type](pred, gt)


def _default_multiple_choice(pred: str, gt: str) -> AnswerScore:
    gt_letter = _solution_letter(gt)
    if gt_letter is None:  # a ground truth that is the option's text, not a letter
        return AnswerScore(1.0 if normalize_text(pred) == normalize_text(gt) else 0.0, pred, True)
    pred_letter = parse_option_letter(pred)
    if pred_letter is None:
        return AnswerScore(0.0, pred, False, "no option letter in prediction")
    return AnswerScore(1.0 if pred_letter == gt_letter else 0.0, pred_letter, True)


@functools.lru_cache(maxsize=4096)
def _solution_letter(gt: str) -> str | None:
    return parse_option_letter(gt)


def _default_numerical(pred: str, gt: str) -> AnswerScore:
    pred_number = parse_number(pred)
    if pred_number is None:
        return AnswerScore(0.0, pred, False, "no number in prediction")
    gt_number = _solution_number(gt)
    if gt_number is None:
        return AnswerScore(0.0, repr(pred_number), True, "no number in ground truth")
    return AnswerScore(1.0 if round(pred_number, 2) == round(gt_number, 2) else 0.0, repr(pred_number), True)


def _default_regression(pred: str, gt: str) -> AnswerScore:
    pred_number = parse_number(pred)
    if pred_number is None:
        return AnswerScore(0.0, pred, False, "no number in prediction")
    gt_number = _solution_number(gt)
    if gt_number is None:
        return AnswerScore(0.0, repr(pred_number), True, "no number in ground truth")
    scale = abs(gt_number) if gt_number != 0 else REGRESSION_ZERO_SCALE
    rel_error = abs(pred_number - gt_number) / scale
    return AnswerScore(1.0 - min(1.0, rel_error), repr(pred_number), True)


def _default_ocr(pred: str, gt: str) -> AnswerScore:
    wer = word_error_rate(normalize_text(gt), normalize_text(pred))
    return AnswerScore(max(0.0, min(1.0, 1.0 - wer)), pred, True)


def _default_free_form(pred: str, gt: str) -> AnswerScore:
    return AnswerScore(max(0.0, min(1.0, rouge_mean_f(gt, pred))), pred, True)


_DEFAULT_SCORERS = {
    "multiple choice": _default_multiple_choice,
    "numerical": _default_numerical,
    "regression": _default_regression,
    "OCR": _default_ocr,
    "free-form": _default_free_form,
}


# --------------------------------------------------------------------------- text metrics


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over ``split()`` divided by ``max(1, len(reference words))``.

    >>> word_error_rate("the cat sat", "the cat sat down")  # one insertion / 3 words
    0.3333333333333333
    >>> word_error_rate("", "")
    0.0
    """
    ref, hyp = reference.split(), hypothesis.split()
    previous = list(range(len(hyp) + 1))  # distances from the empty reference prefix
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            substitution = previous[j - 1] + (ref_word != hyp_word)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        previous = current
    return previous[-1] / max(1, len(ref))


def prepare_scorers(problem_types: Iterable[str]) -> None:
    """Import and build now what scoring ``problem_types`` needs, so no reward call pays for it later.

    Only free-form answers need more than the standard library: ``rouge_score`` and NLTK's stemmer
    take seconds to import, which would otherwise land inside the first training step or batch that
    scores a free-form answer. Call it at setup with the problem types of the data.

    >>> prepare_scorers(["multiple choice", "numerical"])  # nothing to prepare
    """
    if "free-form" in set(problem_types):
        rouge_mean_f("warm up", "warm up")  # the first scoring also fills rouge_score's own lazy state


@functools.cache
def _rouge_scorer():  # building the scorer (stemmer, tokenizer) costs more than one scoring
    from nltk.stem import porter
    from rouge_score import rouge_scorer, tokenize, tokenizers

    class _CachedStemmer:
        """The Porter stemmer rouge_score uses, memoised: a long rambling completion repeats its words."""

        stem = staticmethod(functools.lru_cache(maxsize=1 << 16)(porter.PorterStemmer().stem))

    class _Tokenizer(tokenizers.Tokenizer):  # rouge_score's DefaultTokenizer(use_stemmer=True), cached stems
        def tokenize(self, text: str) -> list[str]:
            return tokenize.tokenize(text, _CachedStemmer)

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_Tokenizer())


def rouge_mean_f(reference: str, hypothesis: str) -> float:
    """Mean of the ROUGE-1, ROUGE-2 and ROUGE-L F-measures (``rouge_score``, Porter stemming).

    >>> round(rouge_mean_f("the cats sat on a mat", "a cat sat on the mat"), 4)  # (1 + 2/5 + 4/6) / 3
    0.6889
    """
    scores = _rouge_scorer().score(reference, hypothesis)
    return (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + scores["rougeL"].fmeasure) / 3
