"""Which quarter: a large shape flashes for one frame pair somewhere in the clip (multiple choice).

The clip is split into four equal quarters (``frames`` is a multiple of 8, so each quarter holds
whole frame pairs); the shape is visible during one pair inside the chosen quarter, the frame is
black otherwise. Answer: the quarter holding the first visible frame. Order-dependent: in a
shuffled copy the first visible frame lands in a random quarter (expected sensitivity ~0.75).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import (
    Family,
    FrameState,
    Shape,
    TaskItem,
    color_and_kind,
    option_letter,
    option_list,
    pick,
)

VALUES = ["first", "second", "third", "fourth"]


def flash_states(color: str, kind: str, *, size: int, frames: int, pair: int) -> list[FrameState]:
    """Black frames except a large centred shape visible in both frames of ``pair``."""
    side = size * 0.6
    shape = Shape(kind, color, (size - side) / 2, (size - side) / 2, side, side)
    return [(shape,) if t // 2 == pair else () for t in range(frames)]


def flash_pair(rng: np.random.Generator, slot: int, frames: int) -> tuple[int, int]:
    """The slot's quarter (0-3) and a random frame pair inside it."""
    quarter = slot % 4
    pairs_per_quarter = frames // 8
    return quarter, quarter * pairs_per_quarter + int(rng.integers(pairs_per_quarter))


def first_visible(states) -> int:
    return next(t for t, state in enumerate(states) if state)


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    quarter, pair = flash_pair(rng, slot, frames)
    color, kind = color_and_kind(rng)
    states = flash_states(color, kind, size=size, frames=frames, pair=pair)
    return TaskItem(
        problem=f"In which quarter of the video does the {color} {kind} appear?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, VALUES[quarter]),
        states=states,
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


FAMILY = Family(
    "event_quarter", "video", "multiple choice", build, answer, think, min_shuffle_sensitivity=0.6
)
