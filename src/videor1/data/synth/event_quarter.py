"""Which quarter: a large shape flashes for one frame pair somewhere in the clip (multiple choice).

The clip is split into four equal quarters (``frames`` is a multiple of 8, so each quarter holds
whole frame pairs); the shape is visible during one pair inside the chosen quarter, the frame is
black otherwise. Answer: the quarter holding the first visible frame. Order-dependent: in a
shuffled copy the first visible frame lands in a random quarter (expected sensitivity ~0.75).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import COLOR_NAMES, SHAPE_KINDS, Shape, TaskItem, option_letter, option_list
from videor1.data.synth.cot import pick

FAMILY = "event_quarter"
DATA_TYPE = "video"
PROBLEM_TYPE = "multiple choice"
ORDER_DEPENDENT = True
MIN_SHUFFLE_SENSITIVITY = 0.6
"""Shuffle sensitivity the tests require."""
VALUES = ["first", "second", "third", "fourth"]


def flash_states(
    rng: np.random.Generator, *, size: int, frames: int, pair: int, color: str | None = None
) -> tuple[list, str, str]:
    """Black frames except a large shape visible in both frames of ``pair`` (random colour unless
    ``color`` is given, then a random kind)."""
    if color is None:
        color = COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))]
    kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
    side = size * 0.6
    shape = Shape(kind, color, (size - side) / 2, (size - side) / 2, side, side)
    states = [(shape,) if t // 2 == pair else () for t in range(frames)]
    return states, color, kind


def first_visible(states) -> int:
    return next(t for t, state in enumerate(states) if state)


def generate(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    quarter = slot % 4
    pairs_per_quarter = frames // 8
    pair = quarter * pairs_per_quarter + int(rng.integers(pairs_per_quarter))
    states, color, kind = flash_states(rng, size=size, frames=frames, pair=pair)
    return TaskItem(
        family=FAMILY,
        data_type=DATA_TYPE,
        problem_type=PROBLEM_TYPE,
        problem=f"In which quarter of the video does the {color} {kind} appear?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, VALUES[quarter]),
        states=states,
        order_dependent=ORDER_DEPENDENT,
        params={"kind": kind},
    )


def answer(states, item: TaskItem) -> str:
    return option_letter(VALUES, VALUES[first_visible(states) * 4 // len(states)])


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    n, t, kind = len(item.states), first_visible(item.states), item.params["kind"]
    evidence = [
        pick(
            rng,
            (f"There are {n} frames, {n // 4} per quarter.", f"{n} frames make four quarters of {n // 4}."),
        ),
        pick(rng, (f"The {kind} is visible in frame {t + 1}.", f"Frame {t + 1} shows the {kind}.")),
    ]
    quarter = VALUES[t * 4 // n]
    conclusion = pick(
        rng, (f"That is the {quarter} quarter, answer {item.answer}.", f"So it is in the {quarter} quarter.")
    )
    return evidence, conclusion
