"""Write a procedural temporal-reasoning dataset in the Video-R1 record schema.

Items are interleaved over the chosen families (item ``i`` of a split belongs to family
``i % len(families)``). Within each family and split, item ``j`` gets slot ``offset + perm[j]`` (a
seeded random offset and permutation), and each family derives its answer (and, for shuffled-option families, the correct
letter) from the slot, so answers are balanced to within one item. Every item has its own RNG seeded
by ``(seed, split, index)``, so the output does not depend on ``jobs``; items are rendered in a
process pool and written in index order.

Outputs under ``out_dir``: ``videos/*.mp4`` (2 fps, one frame pair = one second) and
``images/*.png``; ``train.json``, ``test.json``, ``train_cot.json`` (train records plus
``process`` = ``"<think>...</think>"``) and ``meta.json``. Records carry the Video-R1 record fields
plus ``family`` and ``order_dependent`` (and ``shortcut_cue`` for shortcut-control families: does
the item's static cue give its answer away). A shortcut-control family (``Family.cue_rate``)
generates each split with its own cue rate; ``meta.json`` reports the agreement measured per split.
``meta.json`` also holds each family's measured shuffle
sensitivity (``sensitivity.py``, 100 fresh items, single-frame shuffles) next to its required minimum.

Chance levels (``meta.json``, per family, for a model that ignores the media):
- multiple choice: mean of 1 / number of options, or the best constant letter's accuracy if higher,
- numerical and OCR: accuracy of the best constant answer = 1 / number of (balanced) answer values,
- regression: best constant answer's mean MRA (official VSI-Bench thresholds 0.50 .. 0.95, ``<=``),
- free-form: best constant answer's mean ROUGE (mean of ROUGE-1/2/L F, stemming; the Video-R1 reward),
  the constant chosen among the family's possible references (precomputed as the family's
  ``chance_rouge``; a unit test recomputes it from the references).
The last three assume answers uniform over ``answer_values`` (the generator balances them).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videor1.data.synth import render
from videor1.data.synth.base import SPLITS
from videor1.data.synth.cot import COT_DETAILS, build_think
from videor1.data.synth.families import FAMILIES, get_family
from videor1.data.synth.sensitivity import shuffle_sensitivity
from videor1.utils.logging import get_logger, make_progress
from videor1.utils.rundir import write_text_atomic

GENERATOR_VERSION = "1"
"""Bumped whenever the same seed would produce different items."""
SLOT_CYCLE = 24
"""Slot offsets are drawn from ``[0, SLOT_CYCLE)`` (a multiple of the families' answer cycles)."""
SENSITIVITY_ITEMS = 100
"""Items per family behind ``meta.json``'s measured ``shuffle_sensitivity`` (single-frame shuffles)."""

if TYPE_CHECKING:
    from videor1.config import SynthConfig

logger = get_logger(__name__)


def generate_dataset(
    out_dir: str | Path,
    *,
    train: int,
    test: int,
    seed: int,
    families: list[str] | None = None,
    size: int = 112,
    frames: int = 16,
    jobs: int | None = None,
    cot_detail: str = "short",
) -> Path:
    """Generate ``train`` + ``test`` items into ``out_dir`` and return it.

    ``frames`` must be a multiple of 8 (four quarters of whole frame pairs), ``size`` at least 56;
    ``jobs`` defaults to every core. ``cot_detail`` is ``"short"`` or ``"full"`` (see ``cot.py``).
    """
    out = Path(out_dir)
    names = list(FAMILIES) if not families else list(families)
    for name in names:
        get_family(name)
    if len(set(names)) != len(names):
        raise ValueError(f"families listed twice: {names}")
    if train < 0 or test < 0 or train + test == 0:
        raise ValueError(f"need train >= 0, test >= 0 and at least one item, got train={train} test={test}")
    if frames < 8 or frames % 8:
        raise ValueError(
            f"frames must be a positive multiple of 8 (quarters of whole frame pairs), got {frames}"
        )
    if size < 56:
        raise ValueError(f"size must be at least 56 pixels, got {size}")
    if cot_detail not in COT_DETAILS:
        raise ValueError(f"cot_detail must be one of {COT_DETAILS}, got {cot_detail!r}")
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))

    tasks = _plan(names, {"train": train, "test": test}, seed, size, frames, cot_detail)
    out.mkdir(parents=True, exist_ok=True)
    results = _run(tasks, out, jobs)

    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    cot_records = []
    for task, (record, process) in zip(tasks, results, strict=True):
        by_split[task["split"]].append(record)
        if task["split"] == "train":
            cot_records.append(_with_process(record, process))
    _write_json(out / "train.json", by_split["train"])
    _write_json(out / "test.json", by_split["test"])
    _write_json(out / "train_cot.json", cot_records)
    _write_json(out / "meta.json", _meta(names, by_split, seed, size, frames, cot_detail))
    logger.info("wrote %d train and %d test items (%d families) to %s", train, test, len(names), out)
    return out


def generate_from_config(cfg: SynthConfig, out_dir: str | Path, *, jobs: int | None = None) -> Path:
    """:func:`generate_dataset` with the settings of a ``data.synth`` section (the one path from config)."""
    return generate_dataset(
        out_dir,
        train=cfg.train,
        test=cfg.test,
        seed=cfg.seed,
        families=cfg.families or None,
        size=cfg.size,
        frames=cfg.frames,
        jobs=jobs,
    )


def _plan(names, counts, seed, size, frames, cot_detail) -> list[dict[str, Any]]:
    """One task per item: split, index, problem_id, family, balanced slot and per-item seed."""
    tasks, problem_id = [], 0
    for split_id, split in enumerate(SPLITS):
        n = counts[split]
        rng = np.random.default_rng([seed, split_id])
        per_family = [len(range(f, n, len(names))) for f in range(len(names))]
        # a random run of consecutive slots, shuffled: balanced, and small splits do not all start at slot 0
        offsets = rng.integers(0, SLOT_CYCLE, size=len(names))
        slots = [[int(o + s) for s in rng.permutation(k)] for o, k in zip(offsets, per_family, strict=True)]
        for index in range(n):
            family_index, j = index % len(names), index // len(names)
            tasks.append(
                {
                    "split": split,
                    "index": index,
                    "problem_id": problem_id,
                    "family": names[family_index],
                    "slot": slots[family_index][j],
                    "seed": [seed, split_id, index],
                    "size": size,
                    "frames": frames,
                    "cot_detail": cot_detail,
                }
            )
            problem_id += 1
    return tasks


def _run(tasks: list[dict[str, Any]], out: Path, jobs: int) -> list[tuple[dict[str, Any], str]]:
    args = [(task, str(out)) for task in tasks]
    results = []
    with make_progress() as bar:
        progress_task = bar.add_task("synth items", total=len(args))
        if jobs == 1 or len(args) < 2 * jobs:
            for a in args:
                results.append(_make_item(a))
                bar.advance(progress_task)
        else:
            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                for result in pool.imap(_make_item, args, chunksize=8):
                    results.append(result)
                    bar.advance(progress_task)
    return results


def _make_item(arg: tuple[dict[str, Any], str]) -> tuple[dict[str, Any], str]:
    """Generate, render and write one item; return its record and its ``<think>`` text."""
    task, out = arg
    family = get_family(task["family"])
    rng = np.random.default_rng(task["seed"])
    item = family.generate(rng, task["slot"], size=task["size"], frames=task["frames"], split=task["split"])
    recomputed = family.answer(item.states, item)
    assert recomputed == item.answer, f"{family.name}: answer {item.answer!r} but states give {recomputed!r}"
    stem = f"{task['split']}_{task['index']:06d}"
    if family.data_type == "video":
        relative = f"videos/{stem}.mp4"
        render.write_video(render.draw_frames(item.states, task["size"]), Path(out) / relative)
    else:
        relative = f"images/{stem}.png"
        render.write_image(render.draw_frame(item.states[0], task["size"]), Path(out) / relative)
    evidence, conclusion = family.think(item, rng)
    process = build_think(evidence, conclusion, rng, task["cot_detail"])
    record = {
        "problem_id": task["problem_id"],
        "problem": item.problem,
        "data_type": family.data_type,
        "problem_type": family.problem_type,
        "options": item.options,
        "solution": f"<answer>{item.answer}</answer>",
        "path": f"./{relative}",
        "data_source": f"videor1-synth/{family.name}",
        "family": family.name,
        "order_dependent": family.order_dependent,
    }
    if family.cue_rate is not None:
        record["shortcut_cue"] = bool(item.params["cue"])
    return record, process


def _with_process(record: dict[str, Any], process: str) -> dict[str, Any]:
    """The record with ``process`` placed before ``solution``, as in Video-R1-COT-165k."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "solution":
            out["process"] = process
        out[key] = value
    return out


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` whole or not at all: a killed or failed write leaves the old file (or none)."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _meta(names, by_split, seed, size, frames, cot_detail) -> dict[str, Any]:
    families: dict[str, Any] = {}
    for name in names:
        family = get_family(name)
        chance, kind = chance_level(name, size=size, frames=frames)
        families[name] = {
            "data_type": family.data_type,
            "problem_type": family.problem_type,
            "order_dependent": family.order_dependent,
            "chance": chance,
            "chance_kind": kind,
            "shuffle_sensitivity": shuffle_sensitivity(
                name, SENSITIVITY_ITEMS, seed, size=size, frames=frames
            ),
            "min_shuffle_sensitivity": family.min_shuffle_sensitivity,
            "counts": {s: sum(r["family"] == name for r in by_split[s]) for s in SPLITS},
            "shortcut": family.cue_rate is not None,
        }
        if family.cue_rate is not None:
            cues = {s: [r["shortcut_cue"] for r in by_split[s] if r["family"] == name] for s in SPLITS}
            families[name]["cue_rate"] = dict(family.cue_rate)
            families[name]["cue_agreement"] = {s: sum(c) / len(c) if c else None for s, c in cues.items()}
    return {
        "generator": "videor1-synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "frames": frames,
        "fps": render.VIDEO_FPS,
        "cot_detail": cot_detail,
        "counts": {s: len(by_split[s]) for s in SPLITS},
        "families": families,
    }


def _mra(pred: float, target: float) -> float:
    """Official VSI-Bench mean relative accuracy (thresholds 0.50 .. 0.95, ``<=``)."""
    rel = abs(pred - target) / abs(target)
    thresholds = np.linspace(0.5, 0.95, 10)
    return float(np.mean(rel <= 1 - thresholds + 1e-12))


@lru_cache(maxsize=64)
def chance_level(family: str, *, size: int = 112, frames: int = 16) -> tuple[float, str]:
    """``(chance, how it is defined)`` for a model that ignores the media (see the module docstring)."""
    task_family = get_family(family)
    if task_family.problem_type == "multiple choice":
        items = [
            task_family.generate(np.random.default_rng([0, s]), s, size=size, frames=frames)
            for s in range(SLOT_CYCLE)
        ]
        uniform = float(np.mean([1 / len(item.options) for item in items]))
        best_letter = max(Counter(item.answer for item in items).values()) / len(items)
        return round(max(uniform, best_letter), 4), "max(mean 1/num_options, best constant letter)"
    values = task_family.answer_values(frames)
    if task_family.problem_type in ("numerical", "OCR"):
        return round(1 / len(values), 4), "best constant answer, exact match"
    if task_family.problem_type == "regression":
        nums = [float(v) for v in values]
        best = max(np.mean([_mra(g, t) for t in nums]) for g in nums)
        return round(float(best), 4), "best constant answer, mean MRA"
    if task_family.problem_type == "free-form":
        # precomputed: importing rouge_score (nltk) takes seconds; tests/unit/test_synth.py recomputes it
        return task_family.chance_rouge, "best constant answer, mean ROUGE-1/2/L F"
    raise ValueError(f"{family}: no chance level defined for problem type {task_family.problem_type!r}")
