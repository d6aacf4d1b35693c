"""What a rerun into a demo's output may change: the settings each stage was built with, recorded there.

A rerun resumes every stage whose outputs exist (``videor1.demo.pipeline``), so it must compute what
the first run would have. Before a stage writes anything, the settings it depends on
(:data:`STAGE_KEYS`) are recorded in ``<out>/demo_settings.json``; a rerun compares the recorded
settings of every stage it would reuse with its own and refuses every difference
(:func:`check_stage_settings`), naming the key and the stages it affects. The escape is a new
``--out`` or ``--fresh`` (delete this demo output and start over); restoring the old values resumes.

Which RL runs exist (``rl.variants``, ``rl.seeds``) is no difference: every variant and seed is a stage
of its own, so adding one (``--seeds 3``) reuses the runs already made and trains the new ones, and
removing one leaves its outputs unused. Settings that cannot change a result
(:data:`NOT_A_DIFFERENCE`) are never compared.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from videor1.config import ConfigError
from videor1.config_loader import flatten
from videor1.demo.settings import DemoSettings
from videor1.utils.rundir import write_text_atomic

SETTINGS_FILE = "demo_settings.json"
"""Per stage, the settings it was built with: ``{"stages": {stage: {dotted key: value}}}``."""

_DATA = (
    "seed",
    "data.train_items",
    "data.test_items",
    "data.frames",
    "data.size",
    "data.families",
    "data.cot_detail",
)
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "data": _DATA,
    "model": ("seed", "model"),
    "sft": ("seed", "data", "model", "sft"),
    "rl": ("seed", "data", "model", "sft", "rl"),
    "eval": ("eval",),
}
"""The settings (dotted keys or sections) each stage's outputs depend on, its upstream stages' included.
``rl`` stands for every RL run (``rl/<variant>-seed<n>``); ``eval`` for the cached evaluations (SFT
learning curve and every stage's predictions), whose checkpoints the other stages cover."""

NOT_A_DIFFERENCE = frozenset(
    {
        "threads",  # torch CPU threads: speed only
        "eval.batch",  # generation batch: the eval runner resumes across it too
        "model.seed",  # the top-level seed seeds the model (validated to agree)
        "rl.variants",  # which RL runs exist: each is a stage of its own
        "rl.seeds",  # likewise
    }
)
"""Keys that cannot change any stage's results: a rerun may change them without a word."""


def stage_inputs(s: DemoSettings, stage: str) -> dict[str, Any]:
    """``{dotted key: value}`` of the settings ``stage`` (``data``, ``model``, ``sft``, ``eval`` or
    ``rl/<variant>-seed<n>``) depends on, JSON-normalised (as recorded)."""
    wanted = STAGE_KEYS["rl" if stage.startswith("rl/") else stage]
    flat = json.loads(json.dumps(flatten(dataclasses.asdict(s))))
    return {
        k: v
        for k, v in flat.items()
        if k not in NOT_A_DIFFERENCE and any(k == w or k.startswith(w + ".") for w in wanted)
    }


def _read(out: Path) -> dict[str, dict[str, Any]]:
    path = out / SETTINGS_FILE
    try:
        stages = json.loads(path.read_text(encoding="utf-8"))["stages"]
        if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
            raise TypeError("stages is not an object of objects")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"{path}: not the demo's record of its stages' settings ({e}); "
            "rerun with --fresh (deletes this demo output) or choose another --out"
        ) from None
    return stages


def check_stage_settings(out: Path, s: DemoSettings, stages: list[str], *, has_outputs: bool) -> None:
    """Refuse to rerun into ``out`` when a stage of ``stages`` (the ones this run would resume) was
    built with settings other than ``s``'s: one ``ConfigError`` listing every changed key with the old
    and new value and the stages it affects. ``has_outputs``: ``out`` holds a demo's files (beyond its
    marker); without a record of their settings they cannot be checked, which is refused too."""
    if not (out / SETTINGS_FILE).exists():
        if has_outputs:
            raise ConfigError(
                f"{out} holds a demo's output without {SETTINGS_FILE} (written by an older version): "
                "the settings its stages were built with cannot be compared with these; "
                "rerun with --fresh (deletes this demo output) or choose another --out"
            )
        return
    recorded = _read(out)
    changed: dict[str, tuple[Any, Any, list[str]]] = {}
    for stage in stages:
        if stage not in recorded:
            continue
        old, new = recorded[stage], stage_inputs(s, stage)
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                changed.setdefault(key, (old.get(key), new.get(key), []))[2].append(stage)
    if changed:
        lines = "".join(
            f"\n  {key}: {old!r} -> {new!r} (stages: {', '.join(affected)})"
            for key, (old, new, affected) in changed.items()
        )
        raise ConfigError(
            f"{out} holds stages built with other settings; resuming would reuse them under these:"
            + lines
            + "\nrestore them to resume, choose another --out, or rerun with --fresh "
            "(deletes this demo output and starts over)"
        )


def record_stage(out: Path, s: DemoSettings, stage: str) -> None:
    """Record the settings ``stage`` is built with, before it writes anything (kept if already there:
    :func:`check_stage_settings` has found them equal)."""
    path = out / SETTINGS_FILE
    recorded = _read(out) if path.exists() else {}
    if stage in recorded:
        return
    recorded[stage] = stage_inputs(s, stage)
    write_text_atomic(path, json.dumps({"stages": recorded}, indent=1) + "\n")
