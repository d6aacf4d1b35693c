"""At what second: a large shape flashes for one second; when does it appear? (regression)

Videos are written at 2 fps (``render.VIDEO_FPS``), so a clip of ``frames`` frames lasts
``frames / 2`` seconds and each frame pair is exactly one second; the reference's 2 fps sampling
keeps every frame. The shape is visible during one pair starting at second 1 .. duration - 1
(never 0, whose relative error is undefined). Answer: the start second of the first visible frame
(``index / fps``), as an integer string. Order-dependent: a shuffled copy moves the first visible
frame almost anywhere (expected sensitivity ~0.8).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import Family, TaskItem, color_and_kind, pick
from videor1.data.synth.event_quarter import first_visible, flash_states
from videor1.data.synth.render import VIDEO_FPS


def answer_values(frames: int) -> list[str]:
    return [str(s) for s in range(1, frames // VIDEO_FPS)]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    values = answer_values(frames)
    second = int(values[slot % len(values)])
    color, kind = color_and_kind(rng)
    states = flash_states(color, kind, size=size, frames=frames, pair=second * VIDEO_FPS // 2)
    return TaskItem(
        problem=f"At what second does the {color} {kind} appear?",
        options=[],
        answer=str(second),
        states=states,
        params={"kind": kind},
    )


def answer(states, item: TaskItem) -> str:
    return str(first_visible(states) // VIDEO_FPS)


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    t, kind = first_visible(item.states), item.params["kind"]
    evidence = [
        pick(
            rng, (f"The video runs at {VIDEO_FPS} frames per second.", f"{VIDEO_FPS} frames make one second.")
        ),
        pick(
            rng, (f"The {kind} first shows in frame {t + 1}.", f"Frame {t + 1} is the first with the {kind}.")
        ),
    ]
    conclusion = pick(
        rng,
        (
            f"Frame {t + 1} starts at ({t + 1} - 1) / {VIDEO_FPS} = {item.answer} s.",
            f"So it appears at second {item.answer}.",
        ),
    )
    return evidence, conclusion


FAMILY = Family(
    "event_time", "video", "regression", build, answer, think, answer_values, min_shuffle_sensitivity=0.6
)
