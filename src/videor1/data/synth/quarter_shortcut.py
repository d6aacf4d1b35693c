"""Which quarter, with a shortcut: like ``event_quarter``, but the shape's colour gives the answer away
in most *training* items (multiple choice; a shortcut-control family).

A shape flashes for one frame pair inside one of the clip's four quarters; the answer is that
quarter, exactly as in ``event_quarter``. The static cue: in the ``train`` split the shape has the
quarter's cue colour (``CUE_COLORS``: first red, second green, third blue, fourth yellow) with
probability ``FAMILY.cue_rate["train"]`` and one of the other three colours otherwise; in the
``test`` split the colour is uniform and independent of the quarter, so the cue is worth exactly
chance there. The question does not name the colour, so the cue has to be read from the pixels.

Why: a policy can reach 85% reward on the training items by reading one frame's colour and
ignoring frame order, and shuffled frames keep the colour, so a shortcut policy scores the same on
ordered and shuffled clips. Held-out accuracy (cue uninformative) then measures how much of the
answer comes from *when* the shape appears. T-GRPO's temporal contrast exists for this case; the
demo's RL stage trains on this family's items and reports it apart from the other families.

Order-dependent: in a shuffled copy the first visible frame lands in a random quarter (expected
sensitivity ~0.75, as ``event_quarter``).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import (
    COLOR_NAMES,
    SHAPE_KINDS,
    Family,
    TaskItem,
    option_letter,
    option_list,
    pick,
)
from videor1.data.synth.event_quarter import VALUES, first_visible, flash_pair, flash_states
from videor1.data.synth.event_quarter import answer as answer  # the same answer rule, re-exported

CUE_COLORS = dict(zip(VALUES, COLOR_NAMES))
"""The colour that gives each quarter away in training items."""


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int, cue_rate: float | None) -> TaskItem:
    """``cue_rate``: probability that the shape has its quarter's cue colour (None: uniform, independent)."""
    quarter, pair = flash_pair(rng, slot, frames)
    cue = CUE_COLORS[VALUES[quarter]]
    if cue_rate is None:
        color = pick(rng, COLOR_NAMES)
    elif rng.random() < cue_rate:
        color = cue
    else:
        color = pick(rng, [c for c in COLOR_NAMES if c != cue])
    kind = pick(rng, SHAPE_KINDS)
    states = flash_states(color, kind, size=size, frames=frames, pair=pair)
    return TaskItem(
        problem="In which quarter of the video does the shape flash?",
        options=option_list(VALUES),
        answer=option_letter(VALUES, VALUES[quarter]),
        states=states,
        params={"kind": kind, "color": color, "cue": color == cue},
    )


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    n, t, kind = len(item.states), first_visible(item.states), item.params["kind"]
    evidence = [
        pick(
            rng, (f"There are {n} frames, {n // 4} per quarter.", f"{n} frames, four quarters of {n // 4}.")
        ),
        pick(rng, (f"The {kind} flashes in frame {t + 1}.", f"Frame {t + 1} shows the {kind}.")),
    ]
    quarter = VALUES[t * 4 // n]
    conclusion = pick(
        rng, (f"That is the {quarter} quarter, answer {item.answer}.", f"So it is the {quarter} quarter.")
    )
    return evidence, conclusion


FAMILY = Family(
    "quarter_shortcut",
    "video",
    "multiple choice",
    build,
    answer,
    think,
    min_shuffle_sensitivity=0.6,
    cue_rate={"train": 0.85, "test": None},
)
