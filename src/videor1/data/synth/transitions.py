"""Colour transitions: a large square switches between two colours; how many times? (numerical)

The colour is constant within each frame pair and changes at ``count`` randomly chosen pair
boundaries. The answer counts changes between consecutive frames, not frames of one colour, so it
is a property of the order: a shuffled copy of a clip with few changes has many (measured
sensitivity ~0.9). Counts cycle through 1 .. min(4, pairs - 1).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import COLOR_NAMES, Shape, TaskItem
from videor1.data.synth.cot import pick

FAMILY = "transitions"
DATA_TYPE = "video"
PROBLEM_TYPE = "numerical"
ORDER_DEPENDENT = True
MIN_SHUFFLE_SENSITIVITY = 0.6
"""Shuffle sensitivity the tests require."""


def answer_values(frames: int) -> list[str]:
    return [str(c) for c in range(1, min(4, frames // 2 - 1) + 1)]


def generate(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    values = answer_values(frames)
    count = int(values[slot % len(values)])
    first, second = (COLOR_NAMES[int(i)] for i in rng.permutation(len(COLOR_NAMES))[:2])
    boundaries = set(int(b) for b in rng.permutation(np.arange(1, frames // 2))[:count])
    side = size / 2
    states, color = [], first
    for t in range(frames):
        if t % 2 == 0 and t // 2 in boundaries:
            color = second if color == first else first
        states.append((Shape("square", color, size / 4, size / 4, side, side),))
    return TaskItem(
        family=FAMILY,
        data_type=DATA_TYPE,
        problem_type=PROBLEM_TYPE,
        problem="How many times does the square change colour?",
        options=[],
        answer=str(count),
        states=states,
        order_dependent=ORDER_DEPENDENT,
    )


def changes(states) -> list[int]:
    """Frame indices whose colour differs from the previous frame."""
    return [t for t in range(1, len(states)) if states[t][0].color != states[t - 1][0].color]


def answer(states, item: TaskItem) -> str:
    return str(len(changes(states)))


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    states = item.states
    evidence = [pick(rng, (f"Frame 1 is {states[0][0].color}.", f"It starts {states[0][0].color}."))]
    for t in changes(states):
        evidence.append(
            pick(
                rng,
                (f"Frame {t + 1}: {states[t][0].color}.", f"At frame {t + 1} it turns {states[t][0].color}."),
            )
        )
    times = "1 time" if item.answer == "1" else f"{item.answer} times"
    conclusion = pick(rng, (f"It changes colour {times}.", f"So the colour changes {times}."))
    return evidence, conclusion
