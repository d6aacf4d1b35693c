"""Statistics of the T-GRPO power experiment (videor1.demo.stats) against hand-derived numbers,
and the experiment script's command line."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from videor1.demo.stats import (
    mean_ci,
    mean_std,
    min_detectable_difference,
    min_sign_flip_p,
    paired_differences,
    sign_flip_p,
)

ROOT = Path(__file__).resolve().parents[2]


def test_mean_ci_uses_student_t():
    # mean 2, sample std 1, n = 3: half width t_{0.975,2} / sqrt(3) = 4.303 / 1.7321 = 2.4843
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert low == pytest.approx(2.0 - 2.4843, abs=1e-4)
    assert high == pytest.approx(2.0 + 2.4843, abs=1e-4)
    # n = 5, values 90, 92, 94, 96, 98: mean 94, std sqrt(40 / 4) = 3.1623,
    # half width 2.776 * 3.1623 / sqrt(5) = 3.9259
    mean, low, high = mean_ci([90.0, 92.0, 94.0, 96.0, 98.0])
    assert (mean, low, high) == pytest.approx((94.0, 90.0741, 97.9259), abs=1e-3)
    assert mean_ci([7.0]) == (7.0, 7.0, 7.0)


def test_mean_std_sample_deviation():
    assert mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == pytest.approx((5.0, math.sqrt(32 / 7)))
    with pytest.raises(ValueError):
        mean_std([])


def test_sign_flip_p_exact_enumeration():
    # [1, 2, 3]: the 8 signed sums have |sum| 6, 0, 2, 4, 4, 2, 0, 6; two reach the observed 6.
    assert sign_flip_p([1.0, 2.0, 3.0]) == 2 / 8
    # [3, 1, 1, -1]: observed 4; 3a + b + c + d reaches |.| >= 4 for a = +1 with at most one of
    # b, c, d negative (1 + 3 ways) and the mirror images: 8 of 16.
    assert sign_flip_p([3.0, 1.0, 1.0, -1.0]) == 8 / 16
    # [3, 1, 1, 1]: only all-plus and all-minus reach 6.
    assert sign_flip_p([3.0, 1.0, 1.0, 1.0]) == 2 / 16
    # a zero mean difference is never evidence
    assert sign_flip_p([1.0, -1.0]) == 1.0
    # five seeds all one way: the smallest p five seeds can give
    assert sign_flip_p([4.2] * 5) == min_sign_flip_p(5) == 0.0625
    assert min_sign_flip_p(6) == 0.03125


def test_paired_differences_need_pairs():
    assert paired_differences([3.0, 5.0], [1.0, 6.0]) == [2.0, -1.0]
    with pytest.raises(ValueError, match="paired"):
        paired_differences([1.0], [1.0, 2.0])


def test_min_detectable_difference():
    # std 2, n 5: (t_{0.975,4} + t_{0.80,4}) * 2 / sqrt(5) = (2.776 + 0.941) * 0.89443 = 3.3246
    assert min_detectable_difference(2.0, 5) == pytest.approx(3.3246, abs=1e-4)
    # n 10: (2.262 + 0.883) * 2 / sqrt(10) = 1.9891
    assert min_detectable_difference(2.0, 10) == pytest.approx(1.9891, abs=1e-4)
    with pytest.raises(ValueError):
        min_detectable_difference(1.0, 1)


def test_experiment_help():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "tgrpo_power.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert "--quick" in result.stdout and "--seeds" in result.stdout and "--table" in result.stdout


def _load_experiment():
    import importlib.util

    if str(ROOT / "experiments") not in sys.path:  # as when the script runs: its tables module beside it
        sys.path.insert(0, str(ROOT / "experiments"))
    spec = importlib.util.spec_from_file_location("tgrpo_power", ROOT / "experiments" / "tgrpo_power.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tgrpo_power", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def _stage(qs_ordered: float, qs_shuffled: float) -> dict:
    split = {"agree": {"accuracy": 1.0, "n": 2}, "conflict": {"accuracy": qs_ordered, "n": 6}}
    return {
        "accuracy_ordered": (qs_ordered + 1.0) / 2,
        "accuracy_shuffled": (qs_shuffled + 1.0) / 2,
        "per_family": {
            "image_color": {"ordered": 1.0, "shuffled": 1.0, "n": 8},
            "quarter_shortcut": {"ordered": qs_ordered, "shuffled": qs_shuffled, "n": 8},
        },
        "cue_split": {"ordered": split, "shuffled": split},
    }


def test_experiment_tables_pair_seeds(tmp_path):
    """The generated table pairs seed k of a T-GRPO variant with seed k of GRPO and the control."""
    import json

    exp = _load_experiment()
    sft = {
        **_stage(0.25, 0.25),
        "sft_items": {"image_color": 10, "quarter_shortcut": 9},
        "cue_agreement": {"train": 0.86, "test": 0.25},
        "seconds": {"data": 1.0, "sft": 2.0, "eval": 3.0},
        "cpu_seconds": 6.0,
    }
    (tmp_path / "sft.json").write_text(json.dumps(sft))
    (tmp_path / "results").mkdir()
    # quarter_shortcut ordered, per seed: GRPO 0.5, 0.625; T-GRPO reference 0.75, 0.75; control 0.5, 0.75
    for variant, values in {
        "grpo": (0.5, 0.625, 1.0),  # seed 2 finished for GRPO only: unpaired, left out of every table
        "tgrpo-reference": (0.75, 0.75),
        "tgrpo-no-bonus": (0.5, 0.75),
        "tgrpo-margin": (0.5, 0.5),
    }.items():
        for seed, qs in enumerate(values):
            fire = None if variant == "grpo" else 0.5
            result = {
                **_stage(qs, 0.25),
                "variant": variant,
                "seed": seed,
                "steps": 4,
                "heldout_curve": [{"step": 0, "ordered": 0.25}, {"step": 4, "ordered": qs}],
                "rl_curve": [
                    {"step": k, "accuracy": 0.8, "fire_rate": fire, "advantage_shift": fire}
                    for k in (1, 2, 3, 4)
                ],
                "seconds": {"total": 10.0},
                "cpu_seconds": 9.0,
                "threads": 1,
                "date": "2026-12-05",
                "machine": "test",
            }
            (tmp_path / "results" / f"{variant}-seed{seed}.json").write_text(json.dumps(result))
    text = exp.tables(tmp_path, exp.Design(seeds=2, steps=4, sft_steps=5))
    rows = {
        line.split(" | ")[0] + " | " + line.split(" | ")[1]: line
        for line in text.splitlines()
        if line.startswith("| T-GRPO") and " − " in line
    }
    # reference − GRPO: +25.0, +12.5 (mean 18.75); both positive: p = 2/4
    row = rows["| T-GRPO `reference` − GRPO | `quarter_shortcut` ordered"]
    assert "+25.0, +12.5" in row and "| 0.500 |" in row
    # reference − control: +25.0, +0.0: |sum| 25 reached by (+,+), (+,-), (-,+), (-,-) all -> p = 1
    row = rows["| T-GRPO `reference` − control: T-GRPO α = 0 | `quarter_shortcut` ordered"]
    assert "+25.0, +0.0" in row and "| 1.000 |" in row
    assert "| GRPO | 2 | 56.2 [" in text  # mean of 50 and 62.5
    assert "Ran: 9 RL runs in all; in the tables, seeds [0, 1]" in text
    assert "Left out (their seed is not finished for every variant): grpo seed 2." in text
    grpo_row = next(line for line in text.splitlines() if line.startswith("| GRPO |"))
    assert grpo_row.endswith("| 50.0, 62.5 |")


def test_shard_argument():
    """``--shard K/N``: 0 <= K < N; the shards of a design are disjoint and cover every run."""
    import argparse

    exp = _load_experiment()
    assert exp._shard("1/2") == (1, 2)
    for bad in ("2/2", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(argparse.ArgumentTypeError):
            exp._shard(bad)
    design = exp.Design(seeds=2)
    whole = exp.planned_runs(design)
    assert whole[:2] == [(0, "grpo"), (0, "tgrpo-reference")] and len(whole) == 2 * len(exp.VARIANTS)
    shards = [exp.planned_runs(design, (k, 3)) for k in range(3)]
    assert sorted(r for s in shards for r in s) == sorted(whole)
    assert sum(len(s) for s in shards) == len(whole)
