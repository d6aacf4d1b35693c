"""Built-in training text for the ``small`` byte-level BPE tokenizer.

The text covers what a tiny Video-R1 model reads and writes: the reference prompt wording
(Video-R1's training prompt, reproduced here so the tokenizer does not change when prompt code is refactored),
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
POSITIONS = [
    "top left",
    "top right",
    "bottom left",
    "bottom right",
    "centre",
    "center",
    "middle",
    "top",
    "bottom",
    "left side",
    "right side",
    "upper half",
    "lower half",
    "first quarter",
    "second quarter",
    "third quarter",
    "fourth quarter",
]
COMMON_WORDS = """
about above across action add after again against age ago ahead air all almost alone along already also
although always among amount angle animal another answer any anything appear area around arrive ask
at away back background ball base be beat because become been before begin behind being believe below
beside best better between big bird black blue board boat body book both bottom box boy bright bring
brown build building but by call came camera can car card care carry case cat catch cause centre certain
chair change check child choose circle city class clear clip close cloud colour color come common compare
complete consider contain continue correct could count country course cover cross cup cut dark day decide
deep describe detail did differ different direction distance do does dog done door down draw drive drop
during each early earth east easy eat edge effect eight either else end enough enter equal even event
ever every exact example eye face fact fall far fast feel few field figure fill final find fine finish
fire first fish five floor fly follow food foot for form forward found four frame free from front full
game gave general get girl give glass go goes good got great green grey ground group grow half hand happen
hard has have he head hear height held help her here high him his hold hole home horse hot hour house how
however human idea if image important in inch include increase indicate inside instead into is it its
itself join jump just keep kind know land large last late later lead learn least leave left length less
let letter level life light like line list little live long look lose loud low machine made main make man
many map mark match matter may me mean measure meet men middle might mind minute miss moment more morning
most mother move much must my name near need never new next night nine no north not note nothing notice
now number object observe of off often old on once one only open or order other our out outside over own
page paint pair paper part pass past path pattern people perhaps person pick picture piece place plan plant
play point position possible power present press probably problem produce pull push put question quick
quiet quite race rain reach read ready real reason record red region remain remember repeat rest result
return right rise river road rock roll room round row rule run same saw say scene sea second see seem
seen sentence separate set seven shape she short should show side sign similar simple since single size
sky slow small snow so some something sometimes song soon sound south space speed stand start state stay
step still stop story straight street strong study such sudden sun sure surface table take talk tall tell
ten than that the their them then there these they thing think third this those though thought three
through time to together told too top toward tree true turn two under until up upon us use usual very view
wait walk wall want was watch water way we weather went were west what wheel when where whether which
while white who whole why wide will wind window with without wood word work world would write year yes
yet you young your
""".split()
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
    for i, word in enumerate(COMMON_WORDS):
        position = POSITIONS[i % len(POSITIONS)]
        lines.append(f"{word.capitalize()} {word} {word}s {word}ed {word}ing at the {position}.")
    for role in ("system", "user", "assistant"):
        lines.append(f"<|im_start|>{role}\nHello there.<|im_end|>\n")
    for value in ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "3.5", "42", "3.14"):
        lines.append(f"<think>Hmm, counting carefully gives {value}.</think>\n<answer>{value}</answer>")
    return lines


def builtin_corpus() -> list[str]:
    """The built-in corpus as a list of documents (deterministic)."""
    return PROMPT_TEXT + ENGLISH_TEXT.split("\n") + _generated_sentences()
