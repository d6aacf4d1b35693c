"""Static image: in which quarter of the image is the shape? (multiple choice, four corners)."""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import (
    Family,
    Shape,
    TaskItem,
    center,
    color_and_kind,
    option_letter,
    option_list,
    pick,
)

VALUES = ["top left", "top right", "bottom left", "bottom right"]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    corner = VALUES[slot % len(VALUES)]
    color, kind = color_and_kind(rng)
    side = size * 0.35
    jitter = rng.uniform(0, size / 2 - side, size=2)
    x = float(jitter[0]) + (size / 2 if corner.endswith("right") else 0.0)
    y = float(jitter[1]) + (size / 2 if corner.startswith("bottom") else 0.0)
    return TaskItem(
        problem=f"Where is the {color} {kind}?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, corner),
        states=[(Shape(kind, color, x, y, side, side),)],
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


FAMILY = Family(
    "image_position", "image", "multiple choice", build, answer, think, min_shuffle_sensitivity=0.0
)
