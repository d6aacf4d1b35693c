"""MRA in both conventions, VSI-Bench aggregates and the lenient MC scorer, hand-derived."""

from __future__ import annotations

import math

import numpy as np
import pytest

from videor1.eval.metrics import (
    _VIDEO_R1_TOLERANCES,
    mean_relative_accuracy,
    multiple_choice_letter,
    multiple_choice_score,
    video_r1_vsi_score,
    vsi_bench_overall,
)

# Tolerances 1 - θ, θ = 0.50 … 0.95. Exactly: 0.50, 0.45, …, 0.10, 0.05.
# official (float64 linspace): θ_8 = 0.8999999999999999 -> 1 - θ_8 = 0.10000000000000009,
#                              θ_9 = 0.95 -> 1 - θ_9 = 0.050000000000000044.
# video-r1 (float32 arange):   1 - θ_8 = 0.10000002384185791, 1 - θ_9 = 0.050000011920928955,
#                              1 - θ_0 = 0.5 exactly.
F32_NINE_TENTHS = float(np.float32(9) / np.float32(10))  # 0.8999999761581421


@pytest.mark.parametrize(
    ("pred", "target", "official", "video_r1"),
    [
        # rel = 0.1. official: 0.1 <= 0.10000000000000009 at θ = 0.90, fails at 0.95 -> 9/10.
        # video-r1: rel = float32(1/10) = 0.10000000149 < 0.10000002384 (float32 1 - 0.9) -> also 9/10,
        # returned as float32 0.9. In exact arithmetic strict < would give 8/10: float32 rounding saves it.
        (11, 10, 0.9, F32_NINE_TENTHS),
        (9, 10, 0.9, F32_NINE_TENTHS),
        # rel = 0.05. official: 0.05 <= 0.050000000000000044 -> 10/10. video-r1: float32 0.0500000007
        # < 0.0500000119 -> 10/10 (exact arithmetic with < would give 9/10).
        (10.5, 10, 1.0, 1.0),
        # rel = 0.5 exactly in both. official: 0.5 <= 0.5 at θ = 0.5 only -> 1/10;
        # video-r1: 0.5 < 0.5 is false -> 0/10.
        (15, 10, 0.1, 0.0),
        (5, 10, 0.1, 0.0),
        # rel = 0.3. official: 0.3 <= 0.30000000000000004 at θ = 0.70, fails at 0.75 -> 5/10.
        # video-r1: float32(3/10) = 0.30000001192092896 is exactly float32 1 - 0.7, and strict <
        # fails there -> 4/10 = float32 0.4 = 0.4000000059604645.
        (13, 10, 0.5, float(np.float32(4) / np.float32(10))),
        (10, 10, 1.0, 1.0),
        # gt = 0. official: exact 0 -> 1, anything else -> 0. video-r1: rel = 0 / 1e-8 = 0 -> 10/10;
        # 1 / 1e-8 = 1e8 -> 0/10.
        (0, 0, 1.0, 1.0),
        (1, 0, 0.0, 0.0),
        # |gt| in the official denominator: rel = 2 / 10 = 0.2 > 0.19999999999999996 (1 - θ at 0.80)
        # -> θ in {0.50, …, 0.75} -> 6/10. video-r1: float32 0.2 = 0.20000000298 > 0.19999998808 -> 6/10,
        # float32 0.6 = 0.6000000238418579. (Exact arithmetic would give 7/10 under <=.)
        (-12, -10, 0.6, float(np.float32(6) / np.float32(10))),
        (12, 10, 0.6, float(np.float32(6) / np.float32(10))),
    ],
)
def test_mean_relative_accuracy(pred: float, target: float, official: float, video_r1: float) -> None:
    assert mean_relative_accuracy(pred, target) == pytest.approx(official, abs=1e-12)
    assert mean_relative_accuracy(pred, target, convention="video-r1") == video_r1


def test_non_finite_predictions_score_zero() -> None:
    assert mean_relative_accuracy(math.nan, 10) == 0.0
    assert mean_relative_accuracy(math.inf, 10) == 0.0
    assert mean_relative_accuracy(math.nan, 10, convention="video-r1") == 0.0
    assert mean_relative_accuracy(1e300, 10, convention="video-r1") == 0.0  # inf in float32


def test_video_r1_convention_matches_the_reference_torch_formula() -> None:
    torch = pytest.importorskip("torch")
    thresholds = torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32)
    assert np.array_equal((1 - thresholds).numpy(), _VIDEO_R1_TOLERANCES)
    rng = np.random.default_rng(0)
    for pred, target in zip(rng.uniform(0, 20, 50), rng.uniform(0.5, 20, 50)):
        p, t = torch.tensor(pred, dtype=torch.float32), torch.tensor(target, dtype=torch.float32)
        rel = torch.abs(p - t) / (torch.abs(t) + 1e-8)
        expected = (rel < (1 - thresholds)).float().mean().item()
        assert mean_relative_accuracy(pred, target, convention="video-r1") == expected


def test_unknown_convention() -> None:
    with pytest.raises(ValueError, match="unknown convention 'vsi'"):
        mean_relative_accuracy(1, 1, convention="vsi")


def test_vsi_bench_overall_macro_mean() -> None:
    pairs = [
        ("object_counting", 1.0),
        ("object_counting", 0.5),  # type mean 0.75
        ("route_planning", 0.0),  # 0.0
        ("object_rel_direction_easy", 1.0),  # easy 1.0
        ("object_rel_direction_medium", 1.0),
        ("object_rel_direction_medium", 0.0),  # medium 0.5
        ("object_rel_direction_hard", 0.0),  # hard 0.0 -> direction (1 + 0.5 + 0) / 3 = 0.5
    ]
    out = vsi_bench_overall(pairs)
    assert out["object_counting"] == 0.75
    assert out["object_rel_direction"] == 0.5
    assert "object_rel_direction_easy" not in out
    # Overall over 3 types: (0.75 + 0 + 0.5) / 3 = 0.41667. A micro mean would be 3.5 / 7 = 0.5.
    assert out["overall"] == pytest.approx(1.25 / 3)
    with pytest.raises(ValueError, match="no scores"):
        vsi_bench_overall([])


def test_video_r1_vsi_score() -> None:
    # (mean MC 2/3 + mean MRA 0.4) / 2 = 0.5333
    assert video_r1_vsi_score([1, 1, 0], [0.5, 0.3]) == pytest.approx((2 / 3 + 0.4) / 2)
    assert video_r1_vsi_score([], [0.5, 0.3]) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no multiple-choice accuracies and no MRA scores"):
        video_r1_vsi_score([], [])


@pytest.mark.parametrize(
    ("output", "options", "expected"),
    [
        ("<think>hm</think><answer>(b)</answer>", None, "B"),
        ("B. the red one", None, "B"),
        ("Option c", None, "C"),
        ("the cat", ["A. dog", "B. The cat."], "B"),
        ("the cat", ["dog", "the cat"], "B"),  # options without letters count from A
        ("B because it moves left", None, "B"),
        ("I cannot tell", None, "I"),  # official first-token rule: a lone letter word counts
        ("unsure", ["A. dog"], None),
        ("", None, None),
    ],
)
def test_multiple_choice_letter(output: str, options: list[str] | None, expected: str | None) -> None:
    assert multiple_choice_letter(output, options) == expected


def test_multiple_choice_score() -> None:
    assert multiple_choice_score("<answer>b.</answer>", "<answer>B</answer>") == 1.0
    assert multiple_choice_score("<answer>C</answer>", "B") == 0.0
    with pytest.raises(ValueError, match="not an option letter"):
        multiple_choice_score("B", "red ball")
