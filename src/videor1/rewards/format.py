"""Format reward: does a completion have the ``<think>...</think><answer>...</answer>`` shape?

``mode="video-r1"`` (the Video-R1 reward, https://arxiv.org/abs/2503.21776): 1 if the whole
completion full-matches ``<think>.*?</think>\\s*<answer>.*?</answer>`` (DOTALL). The lazy ``.*?``
still stretches across tags, so several ``<answer>`` blocks pass, but nothing may precede ``<think>``
or follow ``</answer>``.

``mode="default"`` additionally requires exactly one ``<think>``, ``</think>``, ``<answer>`` and
``</answer>`` each, and allows whitespace (only) before ``<think>`` and after ``</answer>``.

Both checks are :mod:`videor1.tags`' linear-time scans (``reference_format``, ``strict_format``),
tested equal to the regex run with ``re``; the regex itself backtracks quadratically on long runs of
``</think><answer>`` without a final ``</answer>``.
"""

from __future__ import annotations

from videor1.tags import reference_format, strict_format


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
        return 1.0 if reference_format(completion) else 0.0
    if mode != "default":
        return 0.0
    return 1.0 if strict_format(completion) else 0.0
