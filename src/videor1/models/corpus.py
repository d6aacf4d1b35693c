"""Built-in training text for the ``small`` byte-level BPE tokenizer.

The text covers what a tiny Video-R1 model reads and writes: the reference prompt wording
(REFERENCE §1, reproduced here so the tokenizer does not change when prompt code is refactored),
multiple-choice option lines, numbers, ``<think>`` / ``<answer>`` blocks, and plain English about
objects moving over time (colours, shapes, directions, counts, order words). Sentences are produced
from fixed word lists in a fixed order, so the corpus, and therefore the tokenizer, is identical on
every machine. Callers with their own data pass their own corpus to ``build_small_tokenizer``.
"""

from __future__ import annotations

import itertools

PROMPT_TEXT = [
    "Please think about this question as if you were a human pondering deeply. Engage in an internal "
    "dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', "
    "etc, or other natural language thought expressions It's encouraged to include self-reflection or "
    "verification in the reasoning process. Provide your detailed reasoning between the <think> </think> "
    "tags, and then give your final answer between the <answer> </answer> tags.",
    "Provide your detailed reasoning between the <think> and </think> tags, and then give your final "
    "answer between the <answer> and </answer> tags.",
    " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags.",
    " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags.",
    " Please transcribe text from the image/video clearly and provide your text answer within the "
    "<answer> </answer> tags.",
    " Please provide your text answer within the <answer> </answer> tags.",
    "You are a helpful assistant.",
    "You are a helpful assistant",
]

ENGLISH_TEXT = """\
A video is a sequence of frames shown one after another. To understand what happens in a video, a
viewer has to remember what was seen before and compare it with what is seen now. An object that is
on the left in the first frame and on the right in the last frame has moved to the right. A light
that is off at the beginning and on at the end has been switched on at some point in between. When
the frames are shuffled, the order of events is lost, and questions about before and after can no
longer be answered by looking at the pictures one at a time.
The question asks which event happened first. Let me think about the order of the frames. At the
start, the red circle is near the top edge. Later it is lower, and at the end it touches the bottom.
So the circle is falling. Wait, I should check the other objects as well. The blue square does not
move at all. Hmm, the green triangle appears only in the second half of the clip. Oh, I see: the
triangle appears after the circle starts to fall, so the circle moved first.
Let's break it down step by step. First, count the objects in every frame. Second, note where each
object is. Third, compare neighbouring frames to find the direction of motion. Finally, choose the
option that matches the observed order, and verify it once more before answering.
The answer is a single letter. The number of objects is three. The speed increases over time. The
camera is still, and nothing leaves the scene. The ball bounces twice before it stops. The person
walks towards the door, opens it, and goes outside. The car turns left at the corner and then drives
straight ahead. The clock shows a later time in the final frame than in the first one.
Questions about space need careful reasoning too: how far is the chair from the table, which object
is closest to the camera, how many metres long is the room, what is the size of the largest object.
Answers to such questions are numbers, for example 2, 3.5, 10 or 0.75, and they are judged by how
close they are to the true value.
"""

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "grey", "pink", "brown"]
SHAPES = ["circle", "square", "triangle", "star", "ball", "box", "bar", "dot", "ring", "cross", "disk"]
MOTIONS = [
    "moves to the left",
    "moves to the right",
    "moves up",
    "moves down",
    "grows larger",
    "shrinks",
    "rotates clockwise",
    "rotates counterclockwise",
    "stays still",
    "appears",
    "disappears",
    "changes colour",
    "blinks",
    "bounces",
    "speeds up",
    "slows down",
]
ORDER_WORDS = ["first", "second", "third", "last", "before", "after", "earlier", "later", "then", "finally"]
NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def _generated_sentences() -> list[str]:
    lines = []
    for i, (colour, shape) in enumerate(itertools.product(COLOURS, SHAPES)):
        motion = MOTIONS[i % len(MOTIONS)]
        order = ORDER_WORDS[i % len(ORDER_WORDS)]
        count = NUMBER_WORDS[i % len(NUMBER_WORDS)]
        lines.append(
            f"The {colour} {shape} {motion} {order}, and there are {count} {shape}s in frame {i % 16}."
        )
        lines.append(f"Which object {motion}? The {colour} {shape}.")
    for i in range(0, 200):
        lines.append(f"{i} {i / 4:.2f} {i * 7 % 1000} {i}.{i % 10} {i * 13}")
    for n_options in (2, 3, 4, 5, 6):
        letters = "ABCDEF"[:n_options]
        options = "".join(
            f"{letter}. {COLOURS[j]} {SHAPES[(j * 3) % len(SHAPES)]}\n" for j, letter in enumerate(letters)
        )
        lines.append(f"What moves first?Options:\n{options}")
        for letter in letters:
            lines.append(
                f"<think>Let me think. The frames show the {COLOURS[n_options]} object first. "
                f"Wait, let me verify the order again. Yes.</think>\n<answer>{letter}</answer>"
            )
    for value in ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "3.5", "42", "3.14"):
        lines.append(f"<think>Hmm, counting carefully gives {value}.</think>\n<answer>{value}</answer>")
    return lines


def builtin_corpus() -> list[str]:
    """The built-in corpus as a list of documents (deterministic)."""
    return PROMPT_TEXT + ENGLISH_TEXT.split("\n") + _generated_sentences()
