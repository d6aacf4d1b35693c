"""Static image: what colour is the shape? (multiple choice over the four palette colours)."""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import (
    COLOR_NAMES,
    SHAPE_KINDS,
    Family,
    Shape,
    TaskItem,
    option_letter,
    option_list,
    pick,
)

VALUES = list(COLOR_NAMES)


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    color = VALUES[slot % len(VALUES)]
    kind = pick(rng, SHAPE_KINDS)
    side = size * float(rng.uniform(0.4, 0.6))
    x, y = (float(v) for v in rng.uniform(0, size - side, size=2))
    return TaskItem(
        problem=f"What colour is the {kind}?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, color),
        states=[(Shape(kind, color, x, y, side, side),)],
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


FAMILY = Family("image_color", "image", "multiple choice", build, answer, think, min_shuffle_sensitivity=0.0)
