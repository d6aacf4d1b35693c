"""Reward scorings per second on one core (target: >= 50,000 for multiple choice and numerical).

Scores a fixed, varied set of realistic completions (correct, wrong, unparsable, long reasoning)
repeatedly with ``accuracy_reward`` and ``format_reward`` in both modes, pinned to one core; each
case reports the best of several timed rounds. Then the adversarial part: the worst time of one
``score_answer`` over every problem type and mode, and of ``format_reward`` in both modes, on each
100 KB degenerate completion of ``tests/unit/test_rewards_linear.py`` (runs of spaces after ``$``, ``-``
or "answer"; thousands of unclosed tags). Backtracking regexes took minutes on some of them (``<answer>$``
+ 3,000 spaces + ``x</answer>`` in numerical/default mode: 177 s); linear code takes milliseconds. The
last line printed is one JSON object: ``{"<case>": scorings_per_second, ..., "adversarial/<shape>": worst
seconds, ...}``.

    OMP_NUM_THREADS=1 python bench/rewards.py --seconds 2
    python bench/rewards.py --toy      # the test suite's run: every case once, briefly; numbers mean nothing
"""

from __future__ import annotations

import argparse
import json
import os
import time

from videor1.rewards import accuracy_reward, format_reward, score_answer
from videor1.types import PROBLEM_TYPES

SPACES = " " * 100_000
ADVERSARIAL = {
    "answer-dollar-spaces-x": "<answer>$" + SPACES + "x</answer>",
    "answer-answer-spaces-1": "<answer>answer" + SPACES + "1</answer>",
    "answer-minus-spaces-x": "<answer>-" + SPACES + "x</answer>",
    "answer-unit-spaces-1": "<answer>3 m" + SPACES + "1</answer>",
    "unclosed-answers": "<answer>" * 12_500,
    "think-then-unclosed-answers": "<think>" + "</think><answer>" * 6_250,
    "closed-thinks-no-answer": "<think>" + "</think>" * 12_500 + "x",
}

THINK = "<think>" + "Let me look at the frames one by one. " * 12 + "</think>\n"

CASES = {
    "multiple choice": (
        "<answer>B</answer>",
        [
            THINK + "<answer>B</answer>",
            THINK + "<answer>(b) the red ball</answer>",
            THINK + "<answer>C</answer>",
            THINK + "<answer>Option D</answer>",
            "no answer at all",
            THINK + "<answer>AB</answer>",
        ],
    ),
    "numerical": (
        "<answer>1,250</answer>",
        [
            THINK + "<answer>1250</answer>",
            THINK + "<answer>1,250.0</answer>",
            THINK + "<answer>12 m</answer>",
            THINK + "<answer>three</answer>",
            THINK + "<answer>-0</answer>",
            "<answer>1250</answer>",
        ],
    ),
}


def _rate(fn, inputs: list, seconds: float, rounds: int) -> float:
    """Best scorings/s over ``rounds`` timed rounds (other processes on a shared machine only slow it)."""
    best = 0.0
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / rounds:
            for args in inputs:
                fn(*args)
            count += len(inputs)
        best = max(best, count / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per case; the best is reported")
    parser.add_argument(
        "--toy", action="store_true", help="one 0.05 s round per case (replaces --seconds and --rounds)"
    )
    args = parser.parse_args()
    if args.toy:
        args.seconds, args.rounds = 0.05, 1
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    results: dict[str, float] = {}
    for mode in ("default", "video-r1"):
        for problem_type, (solution, completions) in CASES.items():
            inputs = [(text, solution, problem_type) for text in completions]
            rate = _rate(
                lambda c, s, t, m=mode: accuracy_reward(c, s, t, mode=m), inputs, args.seconds, args.rounds
            )
            results[f"accuracy/{problem_type}/{mode}"] = round(rate)
            print(f"accuracy  {problem_type:16s} {mode:9s} {rate:12,.0f} scorings/s")
        texts = [(text,) for _, completions in CASES.values() for text in completions]
        rate = _rate(lambda c, m=mode: format_reward(c, mode=m), texts, args.seconds, args.rounds)
        results[f"format/{mode}"] = round(rate)
        print(f"format    {'':16s} {mode:9s} {rate:12,.0f} scorings/s")
    score_answer("<answer>a b</answer>", "<answer>a</answer>", "free-form")  # build the ROUGE scorer first
    for shape, text in ADVERSARIAL.items():
        worst = 0.0
        for mode in ("default", "video-r1"):
            for problem_type in PROBLEM_TYPES:
                start = time.perf_counter()
                score_answer(text, "<answer>1</answer>", problem_type, mode=mode)
                worst = max(worst, time.perf_counter() - start)
            start = time.perf_counter()
            format_reward(text, mode=mode)
            worst = max(worst, time.perf_counter() - start)
        results[f"adversarial/{shape}"] = round(worst, 4)
        print(f"adversarial {shape:28s} {len(text):8,d} chars  worst {1000 * worst:8.1f} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
