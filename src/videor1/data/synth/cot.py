"""Templated chains of thought: ``<think>`` text that states the evidence frame by frame.

Each family turns an item into an ordered list of evidence sentences ("In frame 1 the square is at
the left.") and one conclusion that restates the answer; :func:`build_think` wraps them with an
opener and a closer drawn from small template lists by the item's seeded RNG, so wording varies
while the reasoning always matches the answer. ``detail`` sets the length: ``"none"`` writes an
empty ``<think></think>`` (answer-only targets), ``"short"`` (default, about 30-80 tokens of the
small tokenizer) keeps at most three evidence sentences (first, middle, last), ``"full"`` keeps them
all.
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import pick

COT_DETAILS: tuple[str, ...] = ("none", "short", "full")

OPENERS: tuple[str, ...] = (
    "Let me look at the frames.",
    "Let me think.",
    "Hmm, let's break it down.",
    "Let me check each frame.",
    "",
)
CLOSERS: tuple[str, ...] = ("", "Oh, I see.", "That fits.", "Yes.")


def select_evidence(evidence: list[str], detail: str) -> list[str]:
    """All sentences for ``"full"``; first, middle and last for ``"short"``; none for ``"none"``."""
    if detail not in COT_DETAILS:
        raise ValueError(f"cot_detail must be one of {COT_DETAILS}, got {detail!r}")
    if detail == "none":
        return []
    if detail == "full" or len(evidence) <= 3:
        return list(evidence)
    return [evidence[0], evidence[len(evidence) // 2], evidence[-1]]


def build_think(evidence: list[str], conclusion: str, rng: np.random.Generator, detail: str) -> str:
    """``"<think>opener evidence... closer conclusion</think>"`` (``"<think></think>"`` for ``"none"``)."""
    if detail == "none":
        return "<think></think>"
    parts = [pick(rng, OPENERS), *select_evidence(evidence, detail), pick(rng, CLOSERS), conclusion]
    return "<think>" + " ".join(p for p in parts if p) + "</think>"
