"""What a task family is (:class:`Family`) and what it draws: items made of per-frame drawable states.

States are plain tuples of :class:`Shape`, so they can be shuffled, compared and rendered without
knowing the family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from videor1.types import DATA_TYPES, PROBLEM_TYPES

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
SPLITS: tuple[str, ...] = ("train", "test")


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

    problem: str
    options: list[str]  # ["A. left", ...] for multiple choice, else []
    answer: str  # the letter for multiple choice, else the value
    states: list[FrameState]  # one per frame (exactly one for images)
    params: dict[str, Any] = field(default_factory=dict)  # what ``answer`` and ``think`` need besides states


@dataclass(frozen=True)
class Family:
    """A procedural task family: what it asks, how it draws an item, answers it and explains the answer.

    ``build(rng, slot, *, size, frames) -> TaskItem`` draws one item; ``slot`` is the item's position
    in a seeded balanced permutation of its family's items, so a family that picks its answer as
    ``values[slot % len(values)]`` cycles through every answer equally often. A shortcut family's
    ``build`` also takes ``cue_rate``, its rate for the item's split. ``answer(states, item) -> str``
    recomputes the answer from a sequence of frame states (it labels the item and, on a shuffled copy,
    measures shuffle sensitivity). ``think(item, rng) -> (evidence, conclusion)`` writes the sentences of
    the templated chain of thought (``cot.build_think``).
    """

    name: str
    data_type: str  # one of DATA_TYPES
    problem_type: str  # one of PROBLEM_TYPES (the Video-R1 data format)
    build: Callable[..., TaskItem]
    answer: Callable[[list[FrameState], TaskItem], str]
    think: Callable[[TaskItem, np.random.Generator], tuple[list[str], str]]
    answer_values: Callable[[int], list[str]] | None = None  # frames -> every answer; all but multiple choice
    min_shuffle_sensitivity: float = field(kw_only=True)
    """The fraction of shuffled copies whose answer must change (tests, ``meta.json``); 0 for a family whose
    answer does not depend on frame order. A two-way answer's ceiling is about 0.5."""
    chance_rouge: float | None = None  # free-form: best constant answer's mean ROUGE over answer_values
    cue_rate: Mapping[str, float | None] | None = None
    """Shortcut-control families only: per split, the probability that a static cue gives the answer away
    (None: the cue is independent of the answer)."""

    def __post_init__(self) -> None:
        assert self.data_type in DATA_TYPES and self.problem_type in PROBLEM_TYPES, self
        assert (self.answer_values is None) == (self.problem_type == "multiple choice"), self
        assert (self.chance_rouge is None) != (self.problem_type == "free-form"), self
        assert self.cue_rate is None or tuple(self.cue_rate) == SPLITS, self

    @property
    def order_dependent(self) -> bool:
        """Does shuffling the frames change the answer?"""
        return self.min_shuffle_sensitivity > 0

    def generate(
        self, rng: np.random.Generator, slot: int, *, size: int, frames: int, split: str = "test"
    ) -> TaskItem:
        """Draw the item of ``slot`` (only a shortcut family's items depend on ``split``)."""
        if split not in SPLITS:
            raise ValueError(f"{self.name}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        cue = {} if self.cue_rate is None else {"cue_rate": self.cue_rate[split]}
        return self.build(rng, slot, size=size, frames=frames, **cue)


def pick(rng: np.random.Generator, choices: Sequence[str]) -> str:
    """One element chosen by the seeded RNG (one ``rng.integers`` draw)."""
    return choices[int(rng.integers(len(choices)))]


def color_and_kind(rng: np.random.Generator) -> tuple[str, str]:
    """A random palette colour, then a random shape kind."""
    return pick(rng, COLOR_NAMES), pick(rng, SHAPE_KINDS)


def distinct_colors(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` different palette colours in random order."""
    return [COLOR_NAMES[int(i)] for i in rng.permutation(len(COLOR_NAMES))[:count]]


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


def where(shape: Shape, size: int) -> str:
    """Coarse position words for chain-of-thought evidence, e.g. ``"top left"``."""
    (cx, cy), third = center(shape), size / 3
    h = "left" if cx < third else ("right" if cx >= 2 * third else "centre")
    v = "top" if cy < third else ("bottom" if cy >= 2 * third else "middle")
    if h == "centre" and v == "middle":
        return "centre"
    if v == "middle":
        return h
    if h == "centre":
        return v
    return f"{v} {h}"
