"""Static image: how many shapes? (numerical, 1-4 shapes in distinct cells of a 3x3 grid)."""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import COLOR_NAMES, SHAPE_KINDS, Family, Shape, TaskItem, pick

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def answer_values(frames: int) -> list[str]:
    return [str(c) for c in NUMBER_WORDS]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    count = int(answer_values(frames)[slot % len(NUMBER_WORDS)])
    kind = pick(rng, SHAPE_KINDS)
    cell = size / 3
    side = cell * 0.8
    shapes = []
    for index in rng.permutation(9)[:count]:
        row, col = divmod(int(index), 3)
        color = pick(rng, COLOR_NAMES)
        shapes.append(Shape(kind, color, col * cell + cell * 0.1, row * cell + cell * 0.1, side, side))
    return TaskItem(
        problem=f"How many {kind}s are in the image?",
        options=[],
        answer=str(count),
        states=[tuple(shapes)],
        params={"kind": kind},
    )


def answer(states, item: TaskItem) -> str:
    return str(len(states[0]))


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    shapes = item.states[0]
    colors = ", ".join(s.color for s in shapes)
    evidence = [pick(rng, (f"I see shapes coloured {colors}.", f"Counting them: {colors}."))]
    words = NUMBER_WORDS[len(shapes)]
    return evidence, pick(rng, (f"That makes {words}, so {item.answer}.", f"So there are {item.answer}."))


FAMILY = Family(
    "image_count", "image", "numerical", build, answer, think, answer_values, min_shuffle_sensitivity=0.0
)
