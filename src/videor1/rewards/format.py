"""Format reward: does a completion have the ``<think>...</think><answer>...</answer>`` shape?

``mode="video-r1"`` (REFERENCE §3): 1 if the whole completion full-matches
``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL). The lazy ``.*?`` still stretches across
tags, so several ``<answer>`` blocks pass, but nothing may precede ``<think>`` or follow ``</answer>``.

``mode="default"`` additionally requires exactly one ``<think>``, ``</think>``, ``<answer>`` and
``</answer>`` each, and allows whitespace (only) before ``<think>`` and after ``</answer>``.
"""

from __future__ import annotations

import re

REFERENCE_FORMAT_PATTERN = r"<think>.*?</think>\s*<answer>.*?</answer>"
# For a *full* match, lazy and greedy quantifiers accept the same strings (the regex engine tries
# every split either way); the greedy form is about 10x faster on long completions.
# tests/unit/test_rewards_fuzz.py checks the two agree.
_FORMAT_RE = re.compile(r"<think>.*</think>\s*<answer>.*</answer>", re.DOTALL)


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
        return 1.0 if _FORMAT_RE.fullmatch(completion) else 0.0
    if mode != "default":
        return 0.0
    text = completion.strip()
    single = (
        text.count("<think>") == 1
        and text.count("</think>") == 1
        and text.count("<answer>") == 1
        and text.count("</answer>") == 1
    )
    return 1.0 if single and _FORMAT_RE.fullmatch(text) else 0.0
