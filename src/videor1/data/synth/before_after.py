"""Before or after: two coloured shapes each flash once; did the first-named one come before? (MC)

Each shape is visible alone for one run of frame pairs, at its own side of the frame, the runs
separated by blank pairs when there is room. The question names one colour and asks whether it
flashed before or after the other. Order-dependent: a shuffled copy interleaves the two runs and
the first visible frame decides, so the answer flips about half of the time (expected ~0.5).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import (
    Family,
    Shape,
    TaskItem,
    distinct_colors,
    option_letter,
    option_list,
    pick,
    visible_frames,
)

VALUES = ["before", "after"]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    relation = VALUES[slot % 2]
    asked, other = distinct_colors(rng, 2)
    pairs = frames // 2
    length = max(1, pairs // 4)
    gap = 1 if pairs >= 2 * length + 1 else 0
    first_start = int(rng.integers(0, pairs - 2 * length - gap + 1))
    second_start = int(rng.integers(first_start + length + gap, pairs - length + 1))
    asked_start, other_start = (
        (first_start, second_start) if relation == "before" else (second_start, first_start)
    )
    side = size * 0.4
    left_is_asked = bool(rng.integers(2))
    xs = (size * 0.05, size * 0.55) if left_is_asked else (size * 0.55, size * 0.05)
    shapes = {
        asked: (Shape("circle", asked, xs[0], size * 0.3, side, side), asked_start),
        other: (Shape("circle", other, xs[1], size * 0.3, side, side), other_start),
    }
    states = []
    for t in range(frames):
        pair = t // 2
        states.append(tuple(shape for shape, start in shapes.values() if start <= pair < start + length))
    return TaskItem(
        problem=f"Does the {asked} circle appear before or after the {other} circle?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, relation),
        states=states,
        params={"asked": asked, "other": other},
    )


def relation_of(states, asked: str, other: str) -> str:
    first_asked = visible_frames(states, lambda s: s.color == asked)[0]
    first_other = visible_frames(states, lambda s: s.color == other)[0]
    return "before" if first_asked < first_other else "after"


def answer(states, item: TaskItem) -> str:
    return option_letter(VALUES, relation_of(states, item.params["asked"], item.params["other"]))


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    asked, other = item.params["asked"], item.params["other"]
    events = sorted((visible_frames(item.states, lambda s, c=c: s.color == c)[0], c) for c in (asked, other))
    evidence = [
        pick(rng, (f"The {c} circle appears in frame {t + 1}.", f"Frame {t + 1}: {c}.")) for t, c in events
    ]
    relation = relation_of(item.states, asked, other)
    conclusion = pick(
        rng, (f"So {asked} comes {relation}, answer {item.answer}.", f"{asked.capitalize()} is {relation}.")
    )
    return evidence, conclusion


FAMILY = Family(
    "before_after", "video", "multiple choice", build, answer, think, min_shuffle_sensitivity=0.35
)
