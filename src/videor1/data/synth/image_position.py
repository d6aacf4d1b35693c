"""Static image: in which quarter of the image is the shape? (multiple choice, four corners)."""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import (
    COLOR_NAMES,
    SHAPE_KINDS,
    Shape,
    TaskItem,
    center,
    option_letter,
    option_list,
)
from videor1.data.synth.cot import pick

FAMILY = "image_position"
DATA_TYPE = "image"
PROBLEM_TYPE = "multiple choice"
ORDER_DEPENDENT = False
MIN_SHUFFLE_SENSITIVITY = 0.0
"""One frame: nothing to shuffle."""
VALUES = ["top left", "top right", "bottom left", "bottom right"]


def generate(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    corner = VALUES[slot % len(VALUES)]
    color = COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))]
    kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
    side = size * 0.35
    jitter = rng.uniform(0, size / 2 - side, size=2)
    x = float(jitter[0]) + (size / 2 if corner.endswith("right") else 0.0)
    y = float(jitter[1]) + (size / 2 if corner.startswith("bottom") else 0.0)
    return TaskItem(
        family=FAMILY,
        data_type=DATA_TYPE,
        problem_type=PROBLEM_TYPE,
        problem=f"Where is the {color} {kind}?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, corner),
        states=[(Shape(kind, color, x, y, side, side),)],
        order_dependent=ORDER_DEPENDENT,
        params={"size": size},
    )


def corner_of(shape: Shape, size: int) -> str:
    cx, cy = center(shape)
    return f"{'top' if cy < size / 2 else 'bottom'} {'left' if cx < size / 2 else 'right'}"


def answer(states, item: TaskItem) -> str:
    return option_letter(VALUES, corner_of(states[0][0], item.params["size"]))


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    shape, size = item.states[0][0], item.params["size"]
    cx, cy = center(shape)
    vertical = "upper" if cy < size / 2 else "lower"
    horizontal = "left" if cx < size / 2 else "right"
    evidence = [
        pick(
            rng,
            (
                f"The {shape.kind} is in the {vertical} half, on the {horizontal}.",
                f"It sits {vertical} {horizontal}.",
            ),
        )
    ]
    corner = corner_of(shape, size)
    return evidence, pick(rng, (f"So it is {corner}, answer {item.answer}.", f"That is the {corner}."))
