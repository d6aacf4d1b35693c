"""Order of appearance: 2-4 coloured squares are shown one at a time (multiple choice over orderings).

Each shape is visible alone for a contiguous run of frame pairs, at its own quadrant. The answer is
the colours sorted by the first frame in which each is visible. Options: the true ordering plus up
to three other permutations (2 options when there are 2 shapes), the true one at a balanced letter.
Order-dependent: a shuffled copy reorders the runs, so the recomputed ordering differs with
probability about 1 - 1/k! (expected sensitivity ~0.6 averaged over k = 2, 3, 4).
"""

from __future__ import annotations

import itertools

import numpy as np

from videor1.data.synth.base import (
    LETTERS,
    Family,
    Shape,
    TaskItem,
    distinct_colors,
    option_list,
    pair_blocks,
    pick,
    where,
)

COUNTS = (2, 3, 4)


def _ordering_text(colors) -> str:
    return ", ".join(colors)


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    count = COUNTS[slot % len(COUNTS)]
    colors = distinct_colors(rng, count)
    side = size * 0.4
    corners = [(size * 0.05, size * 0.05), (size * 0.55, size * 0.05), (size * 0.05, size * 0.55)]
    corners.append((size * 0.55, size * 0.55))
    spots = [corners[int(i)] for i in rng.permutation(4)[:count]]
    blocks = pair_blocks(frames // 2, count, rng)
    states = []
    for t in range(frames):
        pair = t // 2
        shown = [i for i, (b0, b1) in enumerate(blocks) if b0 <= pair < b1]
        states.append(tuple(Shape("square", colors[i], *spots[i], side, side) for i in shown))
    true_text = _ordering_text(colors)
    others = [_ordering_text(p) for p in itertools.permutations(colors) if list(p) != colors]
    num_options = min(4, len(others) + 1)
    distractors = [others[int(i)] for i in rng.permutation(len(others))[: num_options - 1]]
    position = (slot // len(COUNTS)) % num_options
    values = distractors[:position] + [true_text] + distractors[position:]
    return TaskItem(
        problem="In what order do the colours appear?",
        options=option_list(values),
        answer=LETTERS[position],
        states=states,
        params={"values": values, "colors": colors, "size": size},
    )


def order_of(states) -> list[str]:
    seen: list[str] = []
    for state in states:
        for shape in state:
            if shape.color not in seen:
                seen.append(shape.color)
    return seen


def answer(states, item: TaskItem) -> str:
    text = _ordering_text(order_of(states))
    values = item.params["values"]
    return LETTERS[values.index(text)] if text in values else "none"


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    evidence, last = [], None
    size = item.params["size"]
    for t, state in enumerate(item.states):
        for shape in state:
            if shape.color != last:
                spot = where(shape, size)
                evidence.append(
                    pick(
                        rng,
                        (
                            f"Frame {t + 1}: {shape.color} at the {spot}.",
                            f"In frame {t + 1} {shape.color} shows up.",
                        ),
                    )
                )
                last = shape.color
    order = _ordering_text(order_of(item.states))
    conclusion = pick(
        rng, (f"So the order is {order}, option {item.answer}.", f"Order: {order}. That is {item.answer}.")
    )
    return evidence, conclusion


FAMILY = Family(
    "appearance_order", "video", "multiple choice", build, answer, think, min_shuffle_sensitivity=0.6
)
