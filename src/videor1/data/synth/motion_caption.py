"""Short motion description: a shape moves one way, then turns (free-form, scored by ROUGE).

The path is an L: the first half of the frames moves along one axis, the second half along the
other. Reference answer: ``"the red square moves right then down"`` (lower case, no punctuation,
one template, so ROUGE against it rewards the right colour, shape and directions in order).
Answer recomputed from states: the dominant direction of the first-half and second-half
displacements. Order-dependent: a shuffled copy gives other directions most of the time (~0.9).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import COLOR_NAMES, SHAPE_KINDS, Shape, TaskItem, center, where
from videor1.data.synth.cot import pick

FAMILY = "motion_caption"
DATA_TYPE = "video"
PROBLEM_TYPE = "free-form"
ORDER_DEPENDENT = True
MIN_SHUFFLE_SENSITIVITY = 0.6
"""Shuffle sensitivity the tests require."""
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
CHANCE_ROUGE = 0.5188
"""Best constant caption's mean ROUGE over all 64 references (``dataset.best_constant_rouge``)."""
_STEP = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}


def caption(color: str, kind: str, first: str, second: str) -> str:
    return f"the {color} {kind} moves {first} then {second}"


def answer_values(frames: int) -> list[str]:
    return [caption(c, k, a, b) for c in COLOR_NAMES for k in SHAPE_KINDS for a, b in TURNS]


def generate(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    first, second = TURNS[slot % len(TURNS)]
    color = COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))]
    kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
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
        family=FAMILY,
        data_type=DATA_TYPE,
        problem_type=PROBLEM_TYPE,
        problem="Describe how the object moves.",
        options=[],
        answer=caption(color, kind, first, second),
        states=states,
        order_dependent=ORDER_DEPENDENT,
        params={"size": size},
    )


def _direction(a, b) -> str:
    (x0, y0), (x1, y1) = center(a), center(b)
    dx, dy = x1 - x0, y1 - y0
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def answer(states, item: TaskItem) -> str:
    n, half = len(states), len(states) // 2
    shape = states[0][0]
    first = _direction(states[0][0], states[half - 1][0])
    second = _direction(states[half - 1][0], states[n - 1][0])
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
