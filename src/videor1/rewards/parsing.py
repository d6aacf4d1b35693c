"""Answer extraction and tolerant parsing of option letters, numbers and free text.

Everything here is a pure ``str -> value | None`` function; ``None`` means "could not be parsed" and
the caller counts it as a parse failure. Regexes are compiled once at import (the reward functions
sit on the RL hot path), and every run of whitespace is consumed by exactly one quantifier, so no
input makes them backtrack more than linearly (a degenerate policy's ``"$" + 100 KB of spaces + "x"``
took minutes with the earlier ``\\s*[$]?\\s*[-+]?\\s*``; ``tests/unit/test_rewards_linear.py``).

Extraction (both modes, as the Video-R1 reward): the first ``<answer>\\s*(.*?)\\s*</answer>``
(DOTALL), stripped; no block gives ``""`` (:mod:`videor1.tags`, the one splitter). The ground truth
goes through the same extraction.
"""

from __future__ import annotations

import math
import re
import unicodedata

from videor1.tags import answer_block

# Optional lead-in ("Option", "The answer is", "Answer:"), case-insensitive; then the letter,
# optionally bracketed; then end of text, punctuation or whitespace followed by anything (the
# option's text). Only the lead-in ignores case, so the letter class stays ASCII.
_LETTER_RE = re.compile(
    r"""^(?i:(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option|choice)(?:\s+is)?\s*(?:[:：]\s*)?)?
        (?P<open>[(\[]?)(?P<letter>[A-Za-z])(?P<close>[)\]]?)
        (?P<punct>[.:,)]?)
        (?P<rest>\s+.*)?$""",
    re.DOTALL | re.VERBOSE,
)

# Hedging between options after the letter: "B or C", "B and (C)", "B & C"; and "B, C".
_CONJUNCTION_HEDGE_RE = re.compile(r"^\s+(?:(?i:or|and)\s+|&\s*)[(\[]?[A-Z](?:[)\].,:]|\s|$)")
_LETTER_AFTER_COMMA_RE = re.compile(r"^\s+[(\[]?[A-Z](?:[)\].,:]|\s|$)")

# A plain decimal number, optional sign (ASCII or U+2212), currency sign, thousands commas
# ("1,000,000" but not "1,5"), exponent, and a unit made of letters (and ° ² ³ µ / . and inner
# spaces) or "%". Each optional token carries its own trailing whitespace and the unit ends on a
# non-space, so whitespace is never split between two quantifiers (linear time).
_NUMBER_RE = re.compile(
    r"""^\s*(?:[$€£¥]\s*)?
        (?:(?P<sign>[-+\u2212])\s*)?(?:[$€£¥]\s*)?
        (?P<number>(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,4})?)
        \s*(?:%|[A-Za-z°²³µ](?:[A-Za-z°²³µ/. ]*[A-Za-z°²³µ/.])?)?\s*$""",
    re.VERBOSE,
)

_PLAIN_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # fast path for the common case

_WHITESPACE_RE = re.compile(r"\s+")


def extract_answer(text: str) -> str:
    """The content of the first ``<answer>...</answer>`` block, stripped; ``""`` when there is none.

    >>> extract_answer("<think>hmm</think><answer> B </answer>")
    'B'
    >>> extract_answer("<answer>1</answer><answer>2</answer>")
    '1'
    >>> extract_answer("no tags at all")
    ''
    """
    return answer_block(text) or ""


def parse_option_letter(text: str) -> str | None:
    """The option letter a prediction names, upper-cased, or ``None``.

    Accepted: a single letter in any case, optionally bracketed (``(B)``, ``[B]``) and/or followed by
    ``.``, ``:``, ``,`` or ``)``, optionally followed by whitespace and the option's text
    (``B. cat``), optionally preceded by "Option", "Answer:", "The answer is". Rejected: two letters
    run together (``AB``), hedges (``B or C``, ``B and (C)``, ``B & C``, ``B, C``) and a bare
    lower-case letter followed by a word (``a cat`` reads as English, not as option A).

    >>> [parse_option_letter(s) for s in ["b", "B.", "(B)", "B. cat", "Option B", "The answer is (c)"]]
    ['B', 'B', 'B', 'B', 'B', 'C']
    >>> [parse_option_letter(s) for s in ["AB", "B or C", "B, C", "a cat", "", "42"]]
    [None, None, None, None, None, None]
    """
    match = _LETTER_RE.match(text.strip())
    if match is None:
        return None
    letter = match.group("letter")
    marked = match.group("open") or match.group("close") or match.group("punct")
    rest = match.group("rest")
    if rest and letter.islower() and not marked:
        return None
    if rest and (
        _CONJUNCTION_HEDGE_RE.match(rest)
        or (match.group("punct") == "," and _LETTER_AFTER_COMMA_RE.match(rest))
    ):
        return None
    return letter.upper()


def parse_number(text: str) -> float | None:
    """The number a prediction states, or ``None`` (also for inf/nan and overflow).

    Thousands commas are removed only in proper groups of three; a leading currency sign, a trailing
    ``%`` and a trailing unit word are dropped (``45%`` is 45, not 0.45); ``-0`` is 0.

    >>> [parse_number(s) for s in ["3", "3.0", "1,000", "-0", "12 m", "3.5 meters", "45%", "$3", "1e3"]]
    [3.0, 3.0, 1000.0, -0.0, 12.0, 3.5, 45.0, 3.0, 1000.0]
    >>> [parse_number(s) for s in ["1,5", "three", "3 or 4", "", "inf"]]
    [None, None, None, None, None]
    """
    if _PLAIN_NUMBER_RE.fullmatch(text):
        return float(text)
    match = _NUMBER_RE.match(text)
    if match is None:
        return None
    sign, number = match.group("sign", "number")
    value = float(number.replace(",", ""))
    if not math.isfinite(value):
        return None
    return -value if sign and sign != "+" else value


def normalize_text(text: str) -> str:
    """Text normalised for OCR comparison: NFKC, case-folded, punctuation removed, whitespace collapsed.

    Punctuation is every character of a Unicode ``P*`` category; it is replaced by a space so
    ``"end.Start"`` still has two words.

    >>> normalize_text("  Hello,   WORLD!  ")
    'hello world'
    >>> normalize_text("ﬁne\\tStraße")
    'fine strasse'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _WHITESPACE_RE.sub(" ", text).strip()
