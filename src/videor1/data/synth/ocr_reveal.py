"""OCR of a word revealed one letter at a time (OCR problem type).

One large white letter fills the frame at a time, each letter held for a run of frame pairs; the
word is the letters in the order shown. The vocabulary is small and built of anagram groups (CAT /
ACT, TOP / POT, STOP / SPOT / POTS / TOPS ...), so reading the letters without their order is not
enough. Answer: the shown letters with consecutive repeats collapsed. Order-dependent: a shuffled
copy spells a different string almost always (expected sensitivity ~0.9).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.base import Shape, TaskItem, pair_blocks
from videor1.data.synth.cot import pick

FAMILY = "ocr_reveal"
DATA_TYPE = "video"
PROBLEM_TYPE = "OCR"
ORDER_DEPENDENT = True
MIN_SHUFFLE_SENSITIVITY = 0.6
"""Shuffle sensitivity the tests require."""
VOCABULARY = ("CAT", "ACT", "TOP", "POT", "NAP", "PAN", "TAB", "BAT", "STOP", "SPOT", "POTS", "TOPS")


def answer_values(frames: int) -> list[str]:
    return [w for w in VOCABULARY if len(w) <= frames // 2]


def generate(rng: np.random.Generator, slot: int, *, size: int, frames: int) -> TaskItem:
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
        family=FAMILY,
        data_type=DATA_TYPE,
        problem_type=PROBLEM_TYPE,
        problem="Letters appear one at a time. What word do they spell?",
        options=[],
        answer=word,
        states=states,
        order_dependent=ORDER_DEPENDENT,
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
