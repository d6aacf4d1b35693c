"""mode="video-r1": every row and quirk of the Video-R1 reward, hand-derived and against the reference's regexes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videor1.rewards import accuracy as accuracy_module
from videor1.rewards import accuracy_reward, format_reward, score_answer
from videor1.types import PROBLEM_TYPES

MODE = "video-r1"


def ans(text: str) -> str:
    return f"<think>reasoning</think><answer>{text}</answer>"


def reward(pred: str, gt: str, problem_type: str) -> float:
    return accuracy_reward(ans(pred), f"<answer>{gt}</answer>", problem_type, mode=MODE)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("B", "B", 1.0),
        (" B \n", "B", 1.0),  # extraction strips
        ("b", "B", 0.0),  # quirk: case-sensitive
        ("B.", "B", 0.0),  # quirk: punctuation
        ("(B)", "B", 0.0),
        ("B. cat", "B", 0.0),
        ("C", "B", 0.0),
    ],
)
def test_multiple_choice(pred: str, gt: str, expected: float) -> None:
    assert reward(pred, gt, "multiple choice") == expected


def test_missing_answer_blocks_match_each_other() -> None:
    # Quirk: no <answer> in either string extracts "" on both sides, and "" == "".
    assert accuracy_reward("B", "B", "multiple choice", mode=MODE) == 1.0
    score = score_answer("B", "B", "multiple choice", mode=MODE)
    assert (score.value, score.parse_ok, score.reason) == (1.0, False, "no <answer> block")
    assert accuracy_reward("B", "<answer>B</answer>", "multiple choice", mode=MODE) == 0.0


def test_ground_truth_goes_through_extraction() -> None:
    assert accuracy_reward(ans("B"), "<answer>  B  </answer>", "multiple choice", mode=MODE) == 1.0
    assert accuracy_reward(ans("B"), "junk <answer>B</answer> junk", "multiple choice", mode=MODE) == 1.0


def test_first_answer_block_is_used() -> None:
    assert (
        accuracy_reward(
            "<answer>A</answer><answer>B</answer>", "<answer>B</answer>", "multiple choice", mode=MODE
        )
        == 0.0
    )


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("3", "3", 1.0),
        ("3.0", "3", 0.0),  # quirk: "." in only one side
        ("3", "3.0", 0.0),
        ("1,000", "1000", 0.0),  # quirk: "," counts as a decimal mark for the asymmetry test
        ("1,000", "1,000", 1.0),
        ("1,000", "1.000", 0.0),  # both "decimal": 1000.0 vs 1.0
        ("1,5", "1.5", 0.0),  # both "decimal": "," deleted, 15.0 vs 1.5
        ("3.14159", "3.14", 1.0),  # round(3.14159, 2) = 3.14
        ("3.146", "3.14", 0.0),  # round(3.146, 2) = 3.15
        ("2.675", "2.67", 1.0),  # 2.675 is 2.67499999... in binary, rounds to 2.67
        ("-0", "0", 1.0),  # -0.0 == 0.0
        ("12 m", "12", 0.0),  # float("12 m") fails
        ("three", "3", 0.0),
        ("nan", "nan", 0.0),  # round(nan) != round(nan)
        ("inf", "inf", 1.0),  # Python's float() accepts "inf"
    ],
)
def test_numerical(pred: str, gt: str, expected: float) -> None:
    assert reward(pred, gt, "numerical") == expected


def test_numerical_parse_failure_is_counted() -> None:
    score = score_answer(ans("three"), "<answer>3</answer>", "numerical", mode=MODE)
    assert (score.value, score.parse_ok) == (0.0, False)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("the quick brown fox", "the quick brown fox", 1.0),
        ("The quick brown fox", "the quick brown fox", 0.75),  # no normalisation: 1 substitution / 4
        ("the quick fox", "the quick brown fox", 0.75),  # 1 deletion / 4
        ("the quick brown fox jumps", "the quick brown fox", 0.75),  # 1 insertion / 4
        ("the quick brown fox,", "the quick brown fox", 0.75),  # "fox," != "fox"
        ("a b c d e f g h", "x", 0.0),  # WER 8 / 1, clipped
        ("", "", 1.0),  # 0 / max(1, 0)
        ("word", "", 0.0),  # 1 insertion / max(1, 0) = 1
    ],
)
def test_ocr(pred: str, gt: str, expected: float) -> None:
    assert reward(pred, gt, "OCR") == pytest.approx(expected, abs=1e-12)


def test_free_form_rouge_mean() -> None:
    # ROUGE-1 F = 1 (same stemmed unigrams: cats -> cat), ROUGE-2 F = 2/5 (cat-sat, sat-on shared),
    # ROUGE-L F = 4/6 (LCS "cat sat on mat"): mean (1 + 0.4 + 0.6667) / 3 = 0.68889.
    assert reward("a cat sat on the mat", "the cats sat on a mat", "free-form") == pytest.approx(
        (1 + 0.4 + 4 / 6) / 3
    )
    assert reward("identical words here", "identical words here", "free-form") == pytest.approx(1.0)
    assert reward("nothing shared", "completely different", "free-form") == 0.0


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ("12", "10", 1 - (2 + 1e-9) / (10 + 1e-9)),  # ~0.8
        ("10", "10", 1 - 1e-9 / (10 + 1e-9)),  # quirk: exact answer scores 1 - 1e-10, not 1
        ("0", "0", 0.0),  # quirk: (0 + 1e-9) / (0 + 1e-9) = 1 -> reward 0
        ("30", "10", 0.0),  # rel 2 clipped to 1
        ("900", "1,000", 1 - (100 + 1e-9) / (1000 + 1e-9)),  # "," deleted, no asymmetry rule here
        ("3.5", "3", 1 - (0.5 + 1e-9) / (3 + 1e-9)),
        ("about 3", "3", 0.0),
    ],
)
def test_regression(pred: str, gt: str, expected: float) -> None:
    assert reward(pred, gt, "regression") == expected


def test_regression_exact_is_not_one() -> None:
    assert reward("10", "10", "regression") < 1.0


def test_other_problem_type_scores_zero() -> None:
    assert reward("B", "B", "video caption") == 0.0
    assert not score_answer(ans("B"), "<answer>B</answer>", "video caption", mode=MODE).parse_ok


def test_exception_becomes_zero_and_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(reference: str, hypothesis: str) -> float:
        raise RuntimeError("scorer broke")

    monkeypatch.setattr(accuracy_module, "rouge_mean_f", broken)
    assert reward("a", "a", "free-form") == 0.0
    score = score_answer(ans("a"), "<answer>a</answer>", "free-form", mode=MODE)
    assert (score.value, score.parse_ok) == (0.0, False)
    assert score.reason == "exception: RuntimeError: scorer broke"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>a</think><answer>B</answer>", 1.0),
        ("<think>a\nb</think>\n\n<answer>B</answer>", 1.0),
        ("<think>a</think><answer>B</answer><answer>C</answer>", 1.0),  # quirk: two answers pass
        ("<think>a</think><think>b</think><answer>B</answer>", 1.0),  # quirk: two thinks pass
        ("<think>a</think><answer>B</answer>\n", 0.0),  # full match: nothing after </answer>
        (" <think>a</think><answer>B</answer>", 0.0),  # nor before <think>
        ("<think>a</think><answer>B</answer> extra", 0.0),
        ("<answer>B</answer>", 0.0),
        ("<think>a</think>", 0.0),
        ("", 0.0),
    ],
)
def test_format(completion: str, expected: float) -> None:
    assert format_reward(completion, mode=MODE) == expected


# --------------------------------------------------------------------------- the reference as an oracle
# The Video-R1 reward's rules written out with its own regexes and Python's ``re`` (the paper's repo,
# src/r1-v/src/open_r1/grpo.py), used on normal-size inputs: our video-r1 mode must agree on every case.


def _reference_extract(text: str) -> str:
    match = re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.DOTALL)
    return match.group(1).strip() if match else ""


def _reference_float(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _reference_wer(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.split(), hypothesis.split()
    d = [[i + j if i * j == 0 else 0 for j in range(len(hyp) + 1)] for i in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            same = ref[i - 1] == hyp[j - 1]
            d[i][j] = d[i - 1][j - 1] if same else 1 + min(d[i - 1][j], d[i][j - 1], d[i - 1][j - 1])
    return d[-1][-1] / max(1, len(ref))


def reference_accuracy(completion: str, solution: str, problem_type: str) -> float:
    try:
        pred, gt = _reference_extract(completion), _reference_extract(solution)
        if problem_type == "multiple choice":
            return 1.0 if pred.strip() == gt.strip() else 0.0
        if problem_type == "numerical":
            if (("." in gt) or ("," in gt)) != (("." in pred) or ("," in pred)):
                return 0.0
            g, p = _reference_float(gt), _reference_float(pred)
            return 0.0 if g is None or p is None else (1.0 if round(g, 2) == round(p, 2) else 0.0)
        if problem_type == "OCR":
            return max(0.0, min(1.0, 1 - _reference_wer(gt, pred)))
        if problem_type == "free-form":
            from rouge_score import rouge_scorer

            scores = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(
                gt, pred
            )
            return max(0.0, min(1.0, sum(scores[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")) / 3))
        if problem_type == "regression":
            g, p = _reference_float(gt), _reference_float(pred)
            rel = (abs(p - g) + 1e-9) / (abs(g) + 1e-9)  # TypeError on None -> 0, as upstream
            return 1 - min(1.0, max(0.0, rel))
        return 0.0
    except Exception:
        return 0.0


def reference_format(completion: str) -> float:
    return 1.0 if re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", completion, re.DOTALL) else 0.0


TABLE_CASES = [
    (ans(pred), f"<answer>{gt}</answer>", problem_type)
    for problem_type, marks in (
        ("multiple choice", test_multiple_choice),
        ("numerical", test_numerical),
        ("OCR", test_ocr),
        ("regression", test_regression),
    )
    for mark in marks.pytestmark
    if mark.name == "parametrize"
    for pred, gt, _ in mark.args[1]
] + [
    ("B", "B", "multiple choice"),
    ("<answer>A</answer><answer>B</answer>", "<answer>B</answer>", "multiple choice"),
    ("junk <answer>B</answer> junk", "<answer>  B  </answer>", "multiple choice"),
    (ans("a cat sat on the mat"), "<answer>the cats sat on a mat</answer>", "free-form"),
    (ans("B"), "<answer>B</answer>", "video caption"),
]


@pytest.mark.parametrize(("completion", "solution", "problem_type"), TABLE_CASES)
def test_every_table_case_matches_the_reference(completion: str, solution: str, problem_type: str) -> None:
    expected = reference_accuracy(completion, solution, problem_type)
    assert accuracy_reward(completion, solution, problem_type, mode=MODE) == expected


pieces = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        " ",
        "\n",
        "3",
        "3.0",
        "1,000",
        "-",
        "B",
        "b",
        "cat",
        "x",
    ]
)
soup = st.lists(pieces, max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(
    completion=st.one_of(soup, st.text(max_size=30)),
    solution=st.one_of(soup, st.builds(lambda a: f"<answer>{a}</answer>", soup)),
    problem_type=st.sampled_from([*PROBLEM_TYPES, "other"]),
)
def test_generated_cases_match_the_reference(completion: str, solution: str, problem_type: str) -> None:
    expected = reference_accuracy(completion, solution, problem_type)
    assert accuracy_reward(completion, solution, problem_type, mode=MODE) == pytest.approx(expected, abs=0)
    assert format_reward(completion, mode=MODE) == reference_format(completion)
