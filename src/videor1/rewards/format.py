"""Format reward: does a completion have the ``<think>...</think><answer>...</answer>`` shape?

``mode="video-r1"`` (REFERENCE §3): 1 if the whole completion full-matches
``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL). The lazy ``.*?`` still stretches across
tags, so several ``<answer>`` blocks pass, but nothing may precede ``<think>`` or follow ``</answer>``.

``mode="default"`` additionally requires exactly one ``<think>``, ``</think>``, ``<answer>`` and
``</answer>`` each, and allows whitespace (only) before ``<think>`` and after ``</answer>``.
"""

from __future__ import annotations

import re

_REFERENCE_FORMAT_RE = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_SINGLE_BLOCKS_RE = re.compile(r"<think>.*</think>\s*<answer>.*</answer>", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def format_reward(completion: str, *, mode: str = "default") -> float:
    """1.0 when ``completion`` has the required think/answer shape, else 0.0. Never raises.

    >>> format_reward("<think>look</think>\\n<answer>B</answer>")
    1.0
    >>> two = "<think>a</think><answer>B</answer><answer>C</answer>"
    >>> format_reward(two), format_reward(two, mode="video-r1")
    (0.0, 1.0)
    >>> format_reward("<think>a</think><answer>B</answer>\\n"), format_reward("<think>a</think><answer>B</answer> ok")
    (1.0, 0.0)
    """
    if not isinstance(completion, str):
        return 0.0
    if mode == "video-r1":
        return 1.0 if _REFERENCE_FORMAT_RE.fullmatch(completion) else 0.0
    if mode != "default":
        return 0.0
    text = completion.strip()
    if any(text.count(tag) != 1 for tag in _TAGS):
        return 0.0
    return 1.0 if _SINGLE_BLOCKS_RE.fullmatch(text) else 0.0
