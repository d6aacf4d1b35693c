"""Per-item scoring (reference vs official), benchmark recognition and summaries, with hand-derived numbers."""

from __future__ import annotations

import pytest

from videor1.eval.benchmarks import BENCHMARKS, detect_benchmark, task_of
from videor1.eval.scoring import (
    extract_prediction,
    lenient_letter,
    official_float,
    reference_float,
    score_item,
)
from videor1.eval.summary import summarize
from videor1.types import Sample


def _sample(problem_type: str, answer: str, options: list[str] | None = None, **extra) -> Sample:
    return Sample(
        problem_id=1,
        problem="Q?",
        data_type="video",
        problem_type=problem_type,
        options=options or [],
        solution=f"<answer>{answer}</answer>",
        path="./v.mp4",
        extra=extra,
        source="t.json[0]",
    )


MC = ["A. cat", "B. dog", "C. bird"]


def test_prediction_is_answer_content_else_whole_output():
    assert extract_prediction("<think>hm</think><answer> B </answer>") == ("B", True)
    assert extract_prediction("  B because  ") == ("B because", False)
    assert extract_prediction("<answer>1</answer><answer>2</answer>") == ("1", True)


@pytest.mark.parametrize(
    ("output", "strict", "official", "lenient"),
    [
        ("<answer>B</answer>", 1.0, 1.0, 1.0),
        ("<answer>b</answer>", 0.0, 1.0, 1.0),  # case: exact match fails, first-word rule ignores case
        ("<answer>(B)</answer>", 0.0, 0.0, 1.0),  # first word "(B)" is not "B"; lenient reads B
        ("<answer>B. dog</answer>", 0.0, 1.0, 1.0),  # first word "B." -> "B"
        ("<answer>dog</answer>", 0.0, 0.0, 1.0),  # option text: lenient only
        ("B", 1.0, 1.0, 1.0),  # no tag: the whole output is the prediction
        ("<answer>A</answer>", 0.0, 0.0, 0.0),
    ],
)
def test_multiple_choice_three_readings(output, strict, official, lenient):
    score = score_item(_sample("multiple choice", "B", MC), output)
    assert score.metric == "accuracy"
    assert (score.video_r1, score.official, score.lenient) == (strict, official, lenient)


def test_lenient_letter_only_names_existing_options():
    assert lenient_letter("D", MC) is None
    assert lenient_letter("The answer is C", MC) == "C"
    assert lenient_letter("no idea", MC) is None


def test_regression_strict_lt_vs_official_le():
    # gt 10, pred 15: rel = 0.5. Tolerances 1 - θ = 0.50, 0.45, ..., 0.05.
    # reference: 0.5 < 0.5 is false everywhere -> 0/10; official: 0.5 <= 0.5 holds once -> 1/10.
    score = score_item(_sample("regression", "10"), "<answer>15</answer>")
    assert score.metric == "mra"
    assert score.video_r1 == 0.0
    assert score.official == pytest.approx(0.1)
    # gt 10, pred 11: rel = 0.1, below the tolerances 0.50 .. 0.15 (8 of them) under both rules.
    # The 0.1 tolerance: float32 gives rel = 0.10000000149 and 1 - 0.9f = 0.10000002384, so the
    # reference's strict < holds (9/10); the official θ from np.linspace is 0.8999999999999999, so
    # 1 - θ = 0.10000000000000009 and <= holds too (9/10).
    score = score_item(_sample("regression", "10"), "<answer>11</answer>")
    assert score.video_r1 == pytest.approx(0.9)
    assert score.official == pytest.approx(0.9)


def test_regression_number_parsing_differs():
    # "12 m": the reference's float() fails (0); the official first word "12" -> exact -> 1.0
    score = score_item(_sample("regression", "12"), "<answer>12 m</answer>")
    assert (score.video_r1, score.official, score.parse_ok) == (0.0, 1.0, True)
    # "1,000": the reference deletes commas (exact, 1.0); the official float("1,000") fails (0)
    score = score_item(_sample("regression", "1000"), "<answer>1,000</answer>")
    assert (score.video_r1, score.official, score.parse_ok) == (1.0, 0.0, False)
    score = score_item(_sample("regression", "12"), "<answer>twelve</answer>")
    assert (score.video_r1, score.official, score.parse_ok) == (0.0, 0.0, False)
    assert reference_float("1,000") == 1000.0 and reference_float("inf") is None
    assert official_float("3.5 meters.") == 3.5 and official_float("about 3") is None


def test_other_types_use_both_reward_modes():
    # numerical "3.0" vs "3": the reference's rule scores 0 (one side has "."), the fixed rule 1
    score = score_item(_sample("numerical", "3"), "<answer>3.0</answer>")
    assert (score.video_r1, score.official) == (0.0, 1.0)
    # OCR: case differs -> reference WER 1 word of 1 -> 0; default normalises case -> 1
    score = score_item(_sample("OCR", "CAT"), "<answer>cat</answer>")
    assert (score.video_r1, score.official) == (0.0, 1.0)
    score = score_item(_sample("free-form", "the red square moves left"), "the red square moves left")
    assert score.video_r1 == pytest.approx(1.0) and not score.has_answer_tag


@pytest.mark.parametrize(
    ("file_name", "name"),
    [
        ("eval_vsibench.json", "vsibench"),
        ("eval_videommmu.json", "videommmu"),
        ("eval_mmvu.json", "mmvu"),
        ("eval_mvbench.json", "mvbench"),
        ("eval_tempcompass.json", "tempcompass"),
        ("eval_videomme.json", "videomme"),
        ("Video-Holmes.json", "videoholmes"),
        ("test.json", "test"),
    ],
)
def test_benchmark_recognised_from_file_name(file_name, name):
    assert detect_benchmark(f"/data/{file_name}").name == name


def test_benchmark_name_flag_wins():
    assert detect_benchmark("x.json", "VSI-Bench") is BENCHMARKS["vsibench"]
    assert detect_benchmark("eval_mvbench.json", "my-set").name == "my-set"
    assert task_of(_sample("regression", "1", question_type="object_counting")) == "object_counting"
    assert task_of(_sample("regression", "1", kind="x"), "kind") == "x"
    assert task_of(_sample("regression", "1")) is None


def _line(index, task, metric, ref, off, lenient=None, status="ok"):
    return {
        "key": f"vsibench[{index}]",
        "bench": "vsibench",
        "index": index,
        "problem_id": index,
        "problem_type": "multiple choice" if metric == "accuracy" else "regression",
        "task": task,
        "family": None,
        "status": status,
        "error": None if status == "ok" else "media: broken.mp4: cannot decode",
        "metric": metric,
        "has_answer_tag": True,
        "parse_ok": True,
        "score": {"video-r1": ref, "official": off, "lenient": lenient},
    }


def test_vsibench_summary_both_ways():
    lines = [
        _line(0, "object_rel_direction_easy", "accuracy", 1.0, 1.0, 1.0),
        _line(1, "object_rel_direction_hard", "accuracy", 0.0, 0.0, 1.0),
        _line(2, "route_planning", "accuracy", 1.0, 1.0, 1.0),
        _line(3, "object_counting", "mra", 0.0, 0.1),
        _line(4, "object_counting", "mra", 0.0, 0.0, status="error"),
    ]
    s = summarize(BENCHMARKS["vsibench"], lines, total=6)
    assert (s["n"], s["done"], s["complete"], s["scored"], s["errors"]) == (6, 5, False, 4, 1)
    assert s["error_kinds"] == {"media": 1}
    # reference: acc = (1 + 0 + 1) / 3, MRA = 0 -> overall = (2/3 + 0) / 2
    assert s["video-r1"]["accuracy"] == pytest.approx(2 / 3)
    assert s["video-r1"]["overall"] == pytest.approx(1 / 3)
    # official: categories rel_direction = mean(1, 0) = 0.5, route_planning = 1, counting = 0.1
    assert s["official"]["by_category"] == pytest.approx(
        {"object_counting": 0.1, "object_rel_direction": 0.5, "route_planning": 1.0}
    )
    assert s["official"]["overall"] == pytest.approx((0.5 + 1.0 + 0.1) / 3)
    assert s["official"]["accuracy_lenient"] == pytest.approx(1.0)
    assert s["official"]["overall_rule"].startswith("VSI-Bench macro mean")


def test_vsibench_without_task_field_falls_back_visibly():
    lines = [_line(0, None, "accuracy", 1.0, 1.0, 1.0), _line(1, None, "mra", 0.0, 0.1)]
    s = summarize(BENCHMARKS["vsibench"], lines, total=2)
    assert s["official"]["overall"] == pytest.approx((1.0 + 0.1) / 2)
    assert "macro mean not computed" in s["official"]["overall_rule"]
