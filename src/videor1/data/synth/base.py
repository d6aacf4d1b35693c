"""What every task family produces: a :class:`TaskItem` made of per-frame drawable states.

A family module (``direction.py``, ``ocr_reveal.py``, ...) exposes

- ``FAMILY`` (stable name), ``DATA_TYPE`` (``"video"`` / ``"image"``), ``PROBLEM_TYPE`` (the Video-R1 data format),
  ``ORDER_DEPENDENT`` (does shuffling the frames change the answer?) and ``MIN_SHUFFLE_SENSITIVITY``
  (the fraction of shuffled copies whose answer must change, checked by the tests),
- ``generate(rng, slot, *, size, frames) -> TaskItem``: ``slot`` is the item's position in a seeded
  balanced permutation of its family's items, so ``answer_values[slot % len(answer_values)]`` cycles
  through every answer equally often,
- ``answer(states, item) -> str``: the answer recomputed from a sequence of frame states (used both to
  label the item and, on a shuffled copy, by :func:`videor1.data.synth.sensitivity.shuffle_sensitivity`),
- ``think(item, rng, detail) -> str``: evidence sentences for the templated chain of thought,
- ``answer_values(frames) -> list[str]`` (for numerical / OCR / regression / free-form chance levels).

A shortcut-control family also defines ``CUE_RATE`` (split -> how often a static cue gives the answer
away; None = never more than chance) and its ``generate`` takes ``split=`` (default ``"test"``, the
uninformative one); see ``quarter_shortcut.py``.

States are plain tuples of :class:`Shape`, so they can be shuffled, compared and rendered without
knowing the family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (235, 40, 40),
    "green": (40, 205, 60),
    "blue": (50, 100, 245),
    "yellow": (245, 225, 40),
}
"""High-contrast palette on a black background; names are the words used in questions and answers."""

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
SHAPE_KINDS: tuple[str, ...] = ("square", "circle")
LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class Shape:
    """One drawable object in one frame, in pixel coordinates of a ``size`` x ``size`` canvas."""

    kind: str  # "square" | "circle" | "bar" | "letter"
    color: str  # key of COLORS, or "white"
    x: float  # left edge
    y: float  # top edge
    w: float
    h: float
    text: str = ""  # the glyph for kind == "letter"


FrameState = tuple[Shape, ...]


@dataclass
class TaskItem:
    """One generated question: its text, answer and the frame states the media are drawn from."""

    family: str
    data_type: str  # "video" | "image"
    problem_type: str
    problem: str
    options: list[str]  # ["A. left", ...] for multiple choice, else []
    answer: str  # the letter for multiple choice, else the value
    states: list[FrameState]  # one per frame (exactly one for images)
    order_dependent: bool
    params: dict[str, Any] = field(default_factory=dict)  # what ``answer`` needs besides the states


def option_list(values: list[str]) -> list[str]:
    """``["A. x", "B. y", ...]`` in the given order."""
    return [f"{LETTERS[i]}. {v}" for i, v in enumerate(values)]


def option_letter(values: list[str], value: str) -> str:
    return LETTERS[values.index(value)]


def pair_blocks(num_pairs: int, num_blocks: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Split ``num_pairs`` frame pairs into ``num_blocks`` contiguous non-empty runs, as even as possible.

    Returns ``(first_pair, end_pair)`` per block. Events are aligned to frame pairs because the
    Qwen ViT encodes two frames per temporal patch (Video-R1's media rules): an event that starts mid-pair is
    blurred into its neighbour. The larger blocks are placed at random positions.
    """
    if not 1 <= num_blocks <= num_pairs:
        raise ValueError(f"cannot split {num_pairs} frame pairs into {num_blocks} blocks")
    base, extra = divmod(num_pairs, num_blocks)
    lengths = [base + 1] * extra + [base] * (num_blocks - extra)
    lengths = [int(v) for v in rng.permutation(lengths)]
    blocks, start = [], 0
    for length in lengths:
        blocks.append((start, start + length))
        start += length
    return blocks


def visible_frames(states: list[FrameState], predicate) -> list[int]:
    """Indices of frames holding at least one shape for which ``predicate(shape)`` is true."""
    return [i for i, state in enumerate(states) if any(predicate(s) for s in state)]


def center(shape: Shape) -> tuple[float, float]:
    return shape.x + shape.w / 2, shape.y + shape.h / 2


def horizontal_word(x: float, size: int) -> str:
    third = size / 3
    return "left" if x < third else ("right" if x >= 2 * third else "centre")


def vertical_word(y: float, size: int) -> str:
    third = size / 3
    return "top" if y < third else ("bottom" if y >= 2 * third else "middle")


def where(shape: Shape, size: int) -> str:
    """Coarse position words for chain-of-thought evidence, e.g. ``"top left"``."""
    cx, cy = center(shape)
    h, v = horizontal_word(cx, size), vertical_word(cy, size)
    if h == "centre" and v == "middle":
        return "centre"
    if v == "middle":
        return h
    if h == "centre":
        return v
    return f"{v} {h}"
