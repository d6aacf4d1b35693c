"""Evaluation metrics: mean relative accuracy (two conventions), VSI-Bench aggregates, MC letters.

Mean relative accuracy (MRA, VSI-Bench) of a numeric prediction: the fraction of confidence levels
θ ∈ {0.50, 0.55, …, 0.95} at which the relative error ``|pred − gt| / |gt|`` is within ``1 − θ``.

- ``convention="official"`` (VSI-Bench): ``rel <= 1 − θ`` in float64, θ from
  ``np.linspace(0.5, 0.95, 10)``. Departures: we divide by ``|gt|`` where the official code divides by
  ``gt`` (the same for VSI-Bench's positive targets), and ``gt = 0`` gives 1 for an exact 0 and 0
  otherwise (the official code produces nan/inf there, which also scores 0, with a warning).
- ``convention="video-r1"`` (Video-R1's evaluation): ``rel < 1 − θ`` in float32 with
  ``rel = |pred − gt| / (|gt| + 1e-8)`` and θ from a float32 ``arange``; returns the float32 mean.

Overall VSI-Bench score: ``vsi_bench_overall`` (official: unweighted mean over task types, the three
relative-direction sub-tasks averaged into one type first) and ``video_r1_vsi_score`` (what the
reference reported: (mean MC accuracy + mean MRA) / 2).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from videor1.rewards.parsing import extract_answer, normalize_text, parse_option_letter

MRA_CONVENTIONS: tuple[str, ...] = ("official", "video-r1")

_OFFICIAL_THETAS = np.linspace(0.5, 0.95, 10)  # float64
# torch.arange(0.5, 0.95 + 0.025, 0.05, dtype=float32) computes 0.5 + 0.05 * i in double, then casts.
_VIDEO_R1_TOLERANCES = np.float32(1.0) - np.array([0.5 + 0.05 * i for i in range(10)], dtype=np.float32)

REL_DIRECTION_PREFIX = "object_rel_direction_"
REL_DIRECTION_TASK = "object_rel_direction"


def mean_relative_accuracy(pred: float, target: float, *, convention: str = "official") -> float:
    """MRA of one numeric prediction; see the module docstring for both conventions.

    >>> mean_relative_accuracy(15, 10), mean_relative_accuracy(15, 10, convention="video-r1")
    (0.1, 0.0)
    >>> mean_relative_accuracy(0, 0), mean_relative_accuracy(0.5, 0)
    (1.0, 0.0)
    """
    if convention == "official":
        if not (math.isfinite(pred) and math.isfinite(target)):
            return 0.0
        if target == 0:
            return 1.0 if pred == 0 else 0.0
        rel = abs(pred - target) / abs(target)
        return float(np.mean(rel <= 1.0 - _OFFICIAL_THETAS))
    if convention == "video-r1":
        with np.errstate(over="ignore", invalid="ignore"):
            pred32, target32 = np.float32(pred), np.float32(target)
            rel = np.abs(pred32 - target32) / (np.abs(target32) + np.float32(1e-8))
            hits = np.count_nonzero(rel < _VIDEO_R1_TOLERANCES)
        return float(np.float32(hits) / np.float32(len(_VIDEO_R1_TOLERANCES)))
    raise ValueError(
        f"mean_relative_accuracy: unknown convention {convention!r}; expected one of {MRA_CONVENTIONS}"
    )


def vsi_bench_overall(scores: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Official VSI-Bench aggregate from ``(question_type, score)`` pairs (accuracy or MRA per question).

    Returns the mean of every task type, with ``object_rel_direction_{easy,medium,hard}`` replaced by
    their unweighted mean ``object_rel_direction``, and ``"overall"``: the unweighted mean over types.

    >>> pairs = [("object_counting", 1.0), ("object_counting", 0.0), ("route_planning", 1.0),
    ...          ("object_rel_direction_easy", 1.0), ("object_rel_direction_hard", 0.0),
    ...          ("object_rel_direction_hard", 0.0)]
    >>> vsi_bench_overall(pairs)  # types: 0.5, 1.0, mean(1.0, 0.0) = 0.5 -> (0.5 + 1 + 0.5) / 3
    {'object_counting': 0.5, 'route_planning': 1.0, 'object_rel_direction': 0.5, 'overall': 0.6666666666666666}
    """
    by_type: dict[str, list[float]] = defaultdict(list)
    for question_type, score in scores:
        by_type[question_type].append(float(score))
    if not by_type:
        raise ValueError("vsi_bench_overall: no scores")
    means = {name: sum(values) / len(values) for name, values in by_type.items()}
    per_task = {name: value for name, value in means.items() if not name.startswith(REL_DIRECTION_PREFIX)}
    directions = [value for name, value in means.items() if name.startswith(REL_DIRECTION_PREFIX)]
    if directions:
        per_task[REL_DIRECTION_TASK] = sum(directions) / len(directions)
    per_task["overall"] = sum(per_task.values()) / len(per_task)
    return per_task


def video_r1_vsi_score(mc_accuracies: Sequence[float], mras: Sequence[float]) -> float:
    """The reference's VSI-Bench number: (mean multiple-choice accuracy + mean MRA) / 2.

    A kind with no questions is left out (mean of the other); both empty raises ``ValueError``.

    >>> video_r1_vsi_score([1.0, 0.0, 1.0, 1.0], [0.5])  # (0.75 + 0.5) / 2
    0.625
    """
    parts = [sum(values) / len(values) for values in (mc_accuracies, mras) if len(values)]
    if not parts:
        raise ValueError("video_r1_vsi_score: no multiple-choice accuracies and no MRA scores")
    return sum(parts) / len(parts)


_OPTION_PREFIX_RE = re.compile(r"^\s*\(?([A-Za-z])[.):]\s*")


def multiple_choice_letter(output: str, options: Sequence[str] | None = None) -> str | None:
    """The option letter a model output chooses, read leniently (official-benchmark style), or None.

    The ``<answer>`` content is used when present, else the whole output (Video-R1's evaluation). Then, in
    order: ``parse_option_letter`` ("b", "(B)", "B. cat", "Option B"); the option whose text equals
    the prediction after ``normalize_text`` (``options`` like ``"A. cat"``); the first whitespace token
    with trailing "." removed when it is a single letter (the VSI-Bench ``fuzzy_matching`` rule).

    >>> multiple_choice_letter("<think>...</think><answer>(c)</answer>")
    'C'
    >>> multiple_choice_letter("the cat", options=["A. dog", "B. The cat."])
    'B'
    >>> multiple_choice_letter("B because the ball moves left")
    'B'
    """
    prediction = extract_answer(output) or output.strip()
    letter = parse_option_letter(prediction)
    if letter is not None:
        return letter
    if options:
        wanted = normalize_text(prediction)
        for index, option in enumerate(options):
            match = _OPTION_PREFIX_RE.match(option)
            option_letter = match.group(1).upper() if match else chr(ord("A") + index)
            text = option[match.end() :] if match else option
            if wanted and normalize_text(text) == wanted:
                return option_letter
    tokens = prediction.split()
    first = tokens[0].rstrip(".") if tokens else ""
    return first.upper() if len(first) == 1 and first.isascii() and first.isalpha() else None


def multiple_choice_score(output: str, answer: str, options: Sequence[str] | None = None) -> float:
    """1.0 when ``multiple_choice_letter(output, options)`` is the answer's letter, else 0.0.

    >>> multiple_choice_score("<answer>b.</answer>", "B"), multiple_choice_score("<answer>A</answer>", "B")
    (1.0, 0.0)
    """
    gold = parse_option_letter(extract_answer(answer) or answer)
    if gold is None:
        raise ValueError(f"multiple_choice_score: answer {answer!r} is not an option letter")
    return 1.0 if multiple_choice_letter(output, options) == gold else 0.0
