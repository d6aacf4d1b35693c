"""Forward or reversed playback of an irreversible process: a bar that only ever fills up (MC).

Forward clips show the bar growing from empty to full (left to right, or bottom to top); reversed
clips are the same frames backwards, so the bar drains. Answer: forward when the bar is longer in
the last frame than in the first. Order-dependent: a shuffled copy compares two random frames, so
the answer flips about half of the time (expected ~0.5).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import COLOR_NAMES, Family, Shape, TaskItem, option_letter, option_list, pick

VALUES = ["forward", "reversed"]


def _fill(shape: Shape, horizontal: bool) -> float:
    """Length of the bar along its filling axis."""
    return shape.w if horizontal else shape.h


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    playback = VALUES[slot % 2]
    color = pick(rng, COLOR_NAMES)
    horizontal = bool(rng.integers(2))
    thick, full = size * 0.35, size * 0.9
    margin = size * 0.05
    states = []
    for t in range(frames):
        length = full * (t + 1) / frames
        if horizontal:
            states.append((Shape("bar", color, margin, (size - thick) / 2, length, thick),))
        else:
            states.append((Shape("bar", color, (size - thick) / 2, size - margin - length, thick, length),))
    if playback == "reversed":
        states.reverse()
    return TaskItem(
        problem="A bar can only fill up. Is the video played forward or reversed?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, playback),
        states=states,
        params={"color": color, "size": size, "horizontal": horizontal},
    )


def playback_of(states, horizontal: bool) -> str:
    return "forward" if _fill(states[-1][0], horizontal) > _fill(states[0][0], horizontal) else "reversed"


def answer(states, item: TaskItem) -> str:
    return option_letter(VALUES, playback_of(states, item.params["horizontal"]))


def _amount(shape: Shape, size: int, horizontal: bool) -> str:
    fraction = _fill(shape, horizontal) / (size * 0.9)
    return "almost empty" if fraction < 0.34 else ("half full" if fraction < 0.67 else "almost full")


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    size, n, horizontal = item.params["size"], len(item.states), item.params["horizontal"]
    evidence = [
        pick(
            rng,
            (
                f"In frame {i + 1} the bar is {_amount(item.states[i][0], size, horizontal)}.",
                f"Frame {i + 1}: {_amount(item.states[i][0], size, horizontal)}.",
            ),
        )
        for i in (0, n // 2, n - 1)
    ]
    playback = playback_of(item.states, horizontal)
    verb = "fills up" if playback == "forward" else "empties"
    conclusion = pick(
        rng, (f"The bar {verb}, so it is {playback}.", f"It {verb}: {playback}, answer {item.answer}.")
    )
    return evidence, conclusion


FAMILY = Family("reversal", "video", "multiple choice", build, answer, think, min_shuffle_sensitivity=0.35)
