"""Colour transitions: a large square switches between two colours; how many times? (numerical)

The colour is constant within each frame pair and changes at ``count`` randomly chosen pair
boundaries. The answer counts changes between consecutive frames, not frames of one colour, so it
is a property of the order: a shuffled copy of a clip with few changes has many (measured
sensitivity ~0.9). Counts cycle through 1 .. min(4, pairs - 1).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import Family, Shape, TaskItem, distinct_colors, pick


def answer_values(frames: int) -> list[str]:
    return [str(c) for c in range(1, min(4, frames // 2 - 1) + 1)]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    values = answer_values(frames)
    count = int(values[slot % len(values)])
    first, second = distinct_colors(rng, 2)
    boundaries = set(int(b) for b in rng.permutation(np.arange(1, frames // 2))[:count])
    side = size / 2
    states, color = [], first
    for t in range(frames):
        if t % 2 == 0 and t // 2 in boundaries:
            color = second if color == first else first
        states.append((Shape("square", color, size / 4, size / 4, side, side),))
    return TaskItem(
        problem="How many times does the square change colour?", options=[], answer=str(count), states=states
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


FAMILY = Family(
    "transitions", "video", "numerical", build, answer, think, answer_values, min_shuffle_sensitivity=0.6
)
