"""Motion direction: one large shape crosses the frame left, right, up or down (multiple choice).

Answer: the dominant axis of the displacement from the first to the last frame, and its sign.
Order-dependent: a shuffled copy moves "from" a random frame "to" another, so the recomputed
direction is reversed about half of the time (expected sensitivity 0.5).
"""

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
    where,
)

DIRECTIONS = ["left", "right", "up", "down"]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    direction = DIRECTIONS[slot % len(DIRECTIONS)]
    color, kind = color_and_kind(rng)
    side = size * 0.3
    lo, hi = 0.0, size - side
    across = float(rng.uniform(size / 8, size - side - size / 8))
    start, end = (lo, hi) if direction in ("right", "down") else (hi, lo)
    states = []
    for t in range(frames):
        along = start + (end - start) * t / (frames - 1)
        x, y = (along, across) if direction in ("left", "right") else (across, along)
        states.append((Shape(kind, color, x, y, side, side),))
    return TaskItem(
        problem=f"Which way does the {color} {kind} move?",
        options=option_list(DIRECTIONS),
        answer=option_letter(DIRECTIONS, direction),
        states=states,
        params={"color": color, "kind": kind, "size": size},
    )


def direction_between(a: Shape, b: Shape) -> str:
    """The dominant axis and sign of the displacement from ``a``'s centre to ``b``'s."""
    (x0, y0), (x1, y1) = center(a), center(b)
    dx, dy = x1 - x0, y1 - y0
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def direction_of(states) -> str:
    return direction_between(states[0][0], states[-1][0])


def answer(states, item: TaskItem) -> str:
    return option_letter(DIRECTIONS, direction_of(states))


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    size, kind = item.params["size"], item.params["kind"]
    n = len(item.states)
    picks = [0, n // 2, n - 1]
    evidence = []
    for i in picks:
        spot = where(item.states[i][0], size)
        evidence.append(
            pick(rng, (f"In frame {i + 1} the {kind} is at the {spot}.", f"Frame {i + 1}: {spot}."))
        )
    moved = direction_of(item.states)
    conclusion = pick(rng, (f"So it moved {moved}.", f"It goes {moved}, answer {item.answer}."))
    return evidence, conclusion


FAMILY = Family("direction", "video", "multiple choice", build, answer, think, min_shuffle_sensitivity=0.35)
