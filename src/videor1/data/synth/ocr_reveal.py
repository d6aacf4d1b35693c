"""OCR of a word revealed one letter at a time (OCR problem type).

One large white letter fills the frame at a time, each letter held for a run of frame pairs; the
word is the letters in the order shown. The vocabulary is small and built of anagram groups (CAT /
ACT, TOP / POT, STOP / SPOT / POTS / TOPS ...), so reading the letters without their order is not
enough. Answer: the shown letters with consecutive repeats collapsed. Order-dependent: a shuffled
copy spells a different string almost always (expected sensitivity ~0.9).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import Family, Shape, TaskItem, pair_blocks, pick

VOCABULARY = ("CAT", "ACT", "TOP", "POT", "NAP", "PAN", "TAB", "BAT", "STOP", "SPOT", "POTS", "TOPS")


def answer_values(frames: int) -> list[str]:
    return [w for w in VOCABULARY if len(w) <= frames // 2]


def build(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
    values = answer_values(frames)
    word = values[slot % len(values)]
    blocks = pair_blocks(frames // 2, len(word), rng)
    states = []
    for t in range(frames):
        index = next(i for i, (b0, b1) in enumerate(blocks) if b0 <= t // 2 < b1)
        states.append(
            (Shape("letter", "white", size * 0.1, size * 0.1, size * 0.8, size * 0.8, text=word[index]),)
        )
    return TaskItem(
        problem="Letters appear one at a time. What word do they spell?",
        options=[],
        answer=word,
        states=states,
    )


def answer(states, item: TaskItem) -> str:
    letters: list[str] = []
    for state in states:
        for shape in state:
            if not letters or letters[-1] != shape.text:
                letters.append(shape.text)
    return "".join(letters)


def think(item: TaskItem, rng: np.random.Generator) -> tuple[list[str], str]:
    evidence, last = [], ""
    for t, state in enumerate(item.states):
        letter = state[0].text
        if letter != last:
            evidence.append(pick(rng, (f"Frame {t + 1}: {letter}.", f"Frame {t + 1} shows {letter}.")))
            last = letter
    conclusion = pick(rng, (f"The letters spell {item.answer}.", f"So the word is {item.answer}."))
    return evidence, conclusion


FAMILY = Family(
    "ocr_reveal", "video", "OCR", build, answer, think, answer_values, min_shuffle_sensitivity=0.6
)
