"""The one ``<think>`` / ``<answer>`` splitter: every reward, scorer, validator and CLI reads tags here.

A *block* is an opening tag and the first closing tag after it: the first ``<answer>...</answer>``
of a text starts at the first ``"<answer>"`` that has a ``"</answer>"`` somewhere after it (if the
first opening tag has none, no later one has either), and ends at the first ``"</answer>"`` after it.
Its content is stripped of whitespace (``str.strip``, the same characters as the regex ``\\s``).
This is exactly what the Video-R1 reward's ``re.search(r"<answer>\\s*(.*?)\\s*</answer>", text,
re.DOTALL)`` returns (https://github.com/tulerfeng/Video-R1, ``src/r1-v/src/open_r1/grpo.py``),
and the tests check the two agree on generated tag soup.

Everything here is ``str.find`` and ``str.startswith`` plus one anchored ``\\s*`` match per closing
tag, so it runs in time linear in the text: a degenerate policy emitting 100 KB of ``<answer>`` or
``</think>`` costs milliseconds, where the backtracking regexes took seconds to minutes.

- :func:`answer_block` / :func:`think_block`: the first block's content (``None`` when there is none);
- :func:`split_output`: reasoning, answer and whether an ``<answer>`` block was found;
- :func:`sole_block`: a text that is exactly one block (a dataset ``solution``);
- :func:`wrapped_in`: a text that opens with ``<tag>`` and closes with ``</tag>`` (a ``process`` field);
- :func:`reference_format`: the Video-R1 format reward's full match of
  ``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL);
- :func:`strict_format`: that shape with exactly one of each tag and only whitespace around it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SPACE = re.compile(r"\s*")  # anchored with .match(text, pos): one linear pass over a whitespace run


_KNOWN = {"answer": ("<answer>", "</answer>"), "think": ("<think>", "</think>")}


def _tags(tag: str) -> tuple[str, str]:
    return _KNOWN.get(tag) or (f"<{tag}>", f"</{tag}>")


def find_block(text: str, tag: str) -> tuple[int, int, int, int] | None:
    """``(open, content_start, content_end, close_end)`` of the first ``<tag>...</tag>``, else None.

    >>> find_block("x<answer> B </answer>", "answer")
    (1, 9, 12, 21)
    """
    opening, closing = _tags(tag)
    start = text.find(opening)
    if start < 0:
        return None
    content = start + len(opening)
    end = text.find(closing, content)
    if end < 0:
        return None
    return start, content, end, end + len(closing)


def block(text: str, tag: str) -> str | None:
    """The stripped content of the first ``<tag>...</tag>`` block, or ``None`` when there is none."""
    opening, closing = _tags(tag)
    start = text.find(opening)
    if start < 0:
        return None
    end = text.find(closing, start + len(opening))
    return None if end < 0 else text[start + len(opening) : end].strip()


def answer_block(text: str) -> str | None:
    """The first ``<answer>`` block's stripped content, ``None`` without one.

    >>> answer_block("<think>hmm</think><answer> B </answer>"), answer_block("<answer>1</answer><answer>2</answer>")
    ('B', '1')
    >>> answer_block("<answer>no closing tag") is None
    True
    """
    return block(text, "answer")


def think_block(text: str) -> str | None:
    """The first ``<think>`` block's stripped content, ``None`` without one."""
    return block(text, "think")


class Split(NamedTuple):
    """A model output cut into its parts."""

    reasoning: str  # the <think> content; without one, the text before <answer>; else ""
    answer: str  # the <answer> content; without one, the whole output stripped
    has_answer_tag: bool


def split_output(text: str) -> Split:
    """Reasoning and answer of a generated text (the whole output is the answer when it has no block).

    >>> split_output("<think> look </think><answer>B</answer>")
    Split(reasoning='look', answer='B', has_answer_tag=True)
    >>> split_output("just B")
    Split(reasoning='', answer='just B', has_answer_tag=False)
    """
    found = find_block(text, "answer")
    reasoning = think_block(text)
    if reasoning is None:
        reasoning = text[: found[0]].strip() if found is not None else ""
    if found is None:
        return Split(reasoning, text.strip(), False)
    return Split(reasoning, text[found[1] : found[2]].strip(), True)


def sole_block(text: str, tag: str) -> str | None:
    """The stripped content when ``text`` (stripped) is exactly one ``<tag>...</tag>``, else None.

    >>> sole_block(" <answer> B </answer>\\n", "answer"), sole_block("<answer>A</answer><answer>B</answer>", "answer")
    ('B', None)
    """
    opening, closing = _tags(tag)
    stripped = text.strip()
    if not (stripped.startswith(opening) and stripped.endswith(closing)):
        return None
    if stripped.count(opening) != 1 or stripped.count(closing) != 1:
        return None
    return stripped[len(opening) : len(stripped) - len(closing)].strip()


def wrapped_in(text: str, tag: str) -> bool:
    """True when ``text`` (stripped) opens with ``<tag>`` and closes with ``</tag>`` (any content).

    >>> wrapped_in(" <think>a</think><think>b</think> ", "think"), wrapped_in("<think>a", "think")
    (True, False)
    """
    opening, closing = _tags(tag)
    stripped = text.strip()
    return stripped.startswith(opening) and stripped.endswith(closing)  # the two tags cannot overlap


def reference_format(text: str) -> bool:
    """The Video-R1 format check: ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, DOTALL)``.

    The text must open with ``<think>`` and end with ``</answer>``, and some ``</think>`` after the
    opening tag must be followed (across whitespace only) by an ``<answer>`` that ends before the
    final ``</answer>``. Lazy ``.*?`` stretches across tags, so several blocks pass.

    >>> reference_format("<think>a</think>\\n<answer>B</answer>"), reference_format("<think>a</think><answer>B</answer> ok")
    (True, False)
    >>> reference_format("<think>a</think>x</think> <answer>B</answer><answer>C</answer>")
    True
    """
    if not (text.startswith("<think>") and text.endswith("</answer>")):
        return False
    final = len(text) - len("</answer>")
    close = text.find("</think>", len("<think>"))
    while close >= 0:
        # The whitespace runs after different "</think>" never overlap, so this loop is linear overall.
        answer = _SPACE.match(text, close + len("</think>")).end()
        if answer + len("<answer>") > final:
            return False  # later "</think>" start even later
        if text.startswith("<answer>", answer):
            return True
        close = text.find("</think>", close + len("</think>"))
    return False


def strict_format(text: str) -> bool:
    """One ``<think>`` block, whitespace only, then one ``<answer>`` block; whitespace allowed around.

    >>> strict_format(" <think>a</think>\\n<answer>B</answer>\\n"), strict_format("<think>a</think><answer>B</answer><answer>C</answer>")
    (True, False)
    """
    stripped = text.strip()
    single = all(stripped.count(tag) == 1 for tag in ("<think>", "</think>", "<answer>", "</answer>"))
    return single and reference_format(stripped)
