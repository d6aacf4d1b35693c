"""mode="default": every defect of REFERENCE §3 fixed, with hand-derived expected values."""

from __future__ import annotations

import pytest

from videor1.rewards import accuracy_reward, format_reward, parse_number, parse_option_letter, score_answer


def ans(text: str) -> str:
    return f"<think>reasoning</think><answer>{text}</answer>"


def reward(pred: str, gt: str, problem_type: str) -> float:
    return accuracy_reward(ans(pred), f"<answer>{gt}</answer>", problem_type)


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        ("B", 1.0),
        ("b", 1.0),
        ("B.", 1.0),
        ("(B)", 1.0),
        ("[b]", 1.0),
        ("B. cat", 1.0),
        ("B cat", 1.0),
        ("b) cat", 1.0),
        ("Option B", 1.0),
        ("Answer: B", 1.0),
        ("The answer is (B).", 1.0),
        ("C", 0.0),
        ("c. dog", 0.0),
    ],
)
def test_multiple_choice_letters(pred: str, expected: float) -> None:
    assert reward(pred, "B", "multiple choice") == expected


@pytest.mark.parametrize("pred", ["AB", "a cat", "the cat", "42", "B and C", "B or (C)", "B, C", "B & C"])
def test_multiple_choice_unparsable_is_counted(pred: str) -> None:
    score = score_answer(ans(pred), "<answer>B</answer>", "multiple choice")
    assert (score.value, score.parse_ok, score.reason) == (0.0, False, "no option letter in prediction")


def test_multiple_choice_ground_truth_forms() -> None:
    assert reward("B", "(B)", "multiple choice") == 1.0
    assert reward("b. cat", "B. cat", "multiple choice") == 1.0
    # A ground truth that is not a letter is compared as normalised text.
    assert reward("Red ball.", "red ball", "multiple choice") == 1.0
    assert reward("blue ball", "red ball", "multiple choice") == 0.0


def test_option_letter_parser() -> None:
    assert parse_option_letter("  (d)  ") == "D"
    assert parse_option_letter("Option:C") == "C"
    assert parse_option_letter("AB") is None
    assert parse_option_letter("a dog") is None  # lower-case article, not option A
    assert parse_option_letter("A dog") == "A"  # an upper-case letter followed by text is an option
    assert parse_option_letter("B. A man and a dog") == "B"  # option text starting with "A" is no hedge
    assert parse_option_letter("B. Cat and Dog") == "B"
    assert parse_option_letter("B. A man and a dog") == "B"  # option text starting with "A" is no hedge
    assert parse_option_letter("B. Cat and Dog") == "B"
    assert parse_option_letter("\u212a") is None  # KELVIN SIGN is not the ASCII letter K


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("3.0", "3", 1.0),
        ("3", "3.00", 1.0),
        ("1,000", "1000", 1.0),
        ("1,000,000.5", "1000000.5", 1.0),
        ("-0", "0", 1.0),
        ("\u22123", "-3", 1.0),  # unicode minus
        ("12 m", "12", 1.0),
        ("3.5 meters", "3.5", 1.0),
        ("45%", "45", 1.0),
        ("$3", "3", 1.0),
        ("3.", "3", 1.0),
        ("2.675", "2.67", 1.0),  # same 2-decimal rounding as the reference
        ("3.146", "3.14", 0.0),  # round -> 3.15
        ("4", "3", 0.0),
    ],
)
def test_numerical(pred: str, gt: str, expected: float) -> None:
    assert reward(pred, gt, "numerical") == expected


@pytest.mark.parametrize("pred", ["three", "1,5", "3 or 4", "inf", "nan", "1e999"])
def test_numerical_unparsable_is_counted(pred: str) -> None:
    score = score_answer(ans(pred), "<answer>3</answer>", "numerical")
    assert (score.value, score.parse_ok) == (0.0, False)


def test_number_parser() -> None:
    assert parse_number("1,234") == 1234.0
    assert parse_number("12,34") is None  # not a thousands grouping
    assert parse_number(" -2.5e2 ") == -250.0
    assert parse_number(".5") == 0.5
    assert parse_number("20 m/s") == 20.0
    assert parse_number("12 m 3") is None


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("0", "0", 1.0),  # fixed: exact 0 scores 1 (reference: 0)
        ("0.25", "0", 0.75),  # gt 0: 1 - |0.25| / 1
        ("-2", "0", 0.0),  # |-2| / 1 clipped to 1
        ("10", "10", 1.0),  # fixed: exact scores exactly 1 (reference: 1 - 1e-10)
        ("12", "10", 0.8),  # 1 - 2 / 10
        ("5", "10", 0.5),
        ("30", "10", 0.0),
        ("1000 m", "1,000", 1.0),
        ("-12", "-10", 0.8),  # |gt| in the denominator
    ],
)
def test_regression(pred: str, gt: str, expected: float) -> None:
    assert reward(pred, gt, "regression") == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("The quick, brown FOX!", "the quick brown fox", 1.0),  # case, punctuation
        ("ＨＥＬＬＯ   world", "hello world", 1.0),  # NFKC folds full-width letters, whitespace collapsed
        ("Straße", "STRASSE", 1.0),  # case-fold
        ("end.start", "end start", 1.0),  # punctuation becomes a word break
        ("the quick fox", "the quick brown fox", 0.75),  # one deletion / 4 words
    ],
)
def test_ocr(pred: str, gt: str, expected: float) -> None:
    assert reward(pred, gt, "OCR") == pytest.approx(expected)


def test_free_form() -> None:
    assert reward("a cat sat on the mat", "the cats sat on a mat", "free-form") == pytest.approx(
        (1 + 0.4 + 4 / 6) / 3
    )


@pytest.mark.parametrize("problem_type", ["multiple choice", "numerical", "regression", "OCR", "free-form"])
def test_missing_or_empty_answer_is_a_parse_failure(problem_type: str) -> None:
    missing = score_answer("<think>x</think> B", "<answer>B</answer>", problem_type)
    empty = score_answer("<think>x</think><answer> </answer>", "<answer>B</answer>", problem_type)
    assert (missing.value, missing.parse_ok, missing.reason) == (0.0, False, "no <answer> block")
    assert (empty.value, empty.parse_ok, empty.reason) == (0.0, False, "empty <answer> block")


def test_unknown_problem_type_and_mode_score_zero() -> None:
    assert reward("B", "B", "video caption") == 0.0
    score = score_answer(ans("B"), "<answer>B</answer>", "multiple choice", mode="strict")
    assert (score.value, score.parse_ok) == (0.0, False)
    assert "unknown reward mode" in score.reason


def test_bad_ground_truth_is_not_a_prediction_failure() -> None:
    score = score_answer(ans("3"), "<answer>three</answer>", "numerical")
    assert (score.value, score.parse_ok, score.reason) == (0.0, True, "no number in ground truth")


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>a</think><answer>B</answer>", 1.0),
        ("<think>a\nb</think>\n\n<answer>B</answer>", 1.0),
        ("  <think>a</think><answer>B</answer>\n", 1.0),  # whitespace around is fine
        ("<think>a</think><answer>B</answer><answer>C</answer>", 0.0),  # fixed: two answers
        ("<think>a</think><think>b</think><answer>B</answer>", 0.0),  # fixed: two thinks
        ("<think><answer>x</answer></think><answer>B</answer>", 0.0),  # answer nested in think
        ("<think>a</think><answer>B</answer> extra", 0.0),
        ("Sure. <think>a</think><answer>B</answer>", 0.0),
        ("<answer>B</answer><think>a</think>", 0.0),
        ("<think>a</think> and <answer>B</answer>", 0.0),
        ("<answer>B</answer>", 0.0),
        ("", 0.0),
    ],
)
def test_format(completion: str, expected: float) -> None:
    assert format_reward(completion) == expected


def test_format_unknown_mode_and_non_text() -> None:
    assert format_reward("<think>a</think><answer>B</answer>", mode="strict") == 0.0
    assert format_reward(None) == 0.0  # type: ignore[arg-type]


def test_accuracy_non_text_scores_zero() -> None:
    score = score_answer(None, "<answer>B</answer>", "multiple choice")  # type: ignore[arg-type]
    assert (score.value, score.parse_ok) == (0.0, False)
    assert score.reason.startswith("exception: ")
