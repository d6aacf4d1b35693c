"""Short motion description: a shape moves one way, then turns (free-form, scored by ROUGE).

The path is an L: the first half of the frames moves along one axis, the second half along the
other. Reference answer: ``"the red square moves right then down"`` (lower case, no punctuation,
one template, so ROUGE against it rewards the right colour, shape and directions in order).
Answer recomputed from states: the dominant direction of the first-half and second-half
displacements. Order-dependent: a shuffled copy gives other directions most of the time (~0.9).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import (
    COLOR_NAMES,
    SHAPE_KINDS,
    Family,
    Shape,
    TaskItem,
    color_and_kind,
    pick,
    where,
)
from videor1.data.synth.direction import direction_between

TURNS = (
    ("right", "down"),
    ("right", "up"),
    ("left", "down"),
    ("left", "up"),
    ("down", "right"),
    ("down", "left"),
    ("up", "right"),
    ("up", "left"),
)
_STEP = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}


def caption(color: str, kind: str, first: str, second: str) -> str:
    return f"the {color} {kind} moves {first} then {second}"


def answer_values(frames: int) -> list[str]:
    return [caption(c, k, a, b) for c in COLOR_NAMES for k in SHAPE_KINDS for a, b in TURNS]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    first, second = TURNS[slot % len(TURNS)]
    color, kind = color_and_kind(rng)
    side = size * 0.3
    travel = size - side
    # start at the corner opposite to where both legs lead, so the whole L stays inside the frame
    dx = _STEP[first][0] + _STEP[second][0]
    dy = _STEP[first][1] + _STEP[second][1]
    x0 = 0.0 if dx > 0 else travel
    y0 = 0.0 if dy > 0 else travel
    half = frames // 2
    states = []
    for t in range(frames):
        a = min(t, half - 1) / (half - 1)
        b = max(0, t - (half - 1)) / (frames - half)
        x = x0 + travel * (_STEP[first][0] * a + _STEP[second][0] * b)
        y = y0 + travel * (_STEP[first][1] * a + _STEP[second][1] * b)
        states.append((Shape(kind, color, x, y, side, side),))
    return TaskItem(
        problem="Describe how the object moves.",
        options=[],
        answer=caption(color, kind, first, second),
        states=states,
        params={"size": size},
    )


def answer(states, item: TaskItem) -> str:
    n, half = len(states), len(states) // 2
    shape = states[0][0]
    first = direction_between(states[0][0], states[half - 1][0])
    second = direction_between(states[half - 1][0], states[n - 1][0])
    return caption(shape.color, shape.kind, first, second)


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    size, n = item.params["size"], len(item.states)
    shape = item.states[0][0]
    evidence = [
        pick(
            rng,
            (
                f"Frame {i + 1}: the {shape.kind} is at the {where(item.states[i][0], size)}.",
                f"In frame {i + 1} it is at the {where(item.states[i][0], size)}.",
            ),
        )
        for i in (0, n // 2 - 1, n - 1)
    ]
    conclusion = pick(rng, (f"So {item.answer}.", f"Answer: {item.answer}."))
    return evidence, conclusion


FAMILY = Family(
    "motion_caption",
    "video",
    "free-form",
    build,
    answer,
    think,
    answer_values,
    min_shuffle_sensitivity=0.6,
    chance_rouge=0.5188,
)
