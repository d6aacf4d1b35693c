"""Static image: what colour is the shape? (multiple choice over the four palette colours)."""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import COLOR_NAMES, SHAPE_KINDS, Shape, TaskItem, option_letter, option_list
from videor1.data.synth.cot import pick

FAMILY = "image_color"
DATA_TYPE = "image"
PROBLEM_TYPE = "multiple choice"
ORDER_DEPENDENT = False
MIN_SHUFFLE_SENSITIVITY = 0.0
"""One frame: nothing to shuffle."""
VALUES = list(COLOR_NAMES)


def generate(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    color = VALUES[slot % len(VALUES)]
    kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
    side = size * float(rng.uniform(0.4, 0.6))
    x, y = (float(v) for v in rng.uniform(0, size - side, size=2))
    return TaskItem(
        family=FAMILY,
        data_type=DATA_TYPE,
        problem_type=PROBLEM_TYPE,
        problem=f"What colour is the {kind}?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, color),
        states=[(Shape(kind, color, x, y, side, side),)],
        order_dependent=ORDER_DEPENDENT,
    )


def answer(states, item: TaskItem) -> str:
    return option_letter(VALUES, states[0][0].color)


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    shape = item.states[0][0]
    evidence = [
        pick(
            rng,
            (f"There is one {shape.kind} and it is {shape.color}.", f"The {shape.kind} looks {shape.color}."),
        )
    ]
    return evidence, pick(
        rng, (f"So the answer is {item.answer}.", f"{shape.color.capitalize()} is option {item.answer}.")
    )
