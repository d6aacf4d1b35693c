"""The demo's held-out evaluation: greedy, short answers, once with ordered and once with shuffled frames.

Accuracy is the mean accuracy reward (default mode) over the held-out items: exact for multiple
choice and numerical answers, MRA-like for regression, 1 - WER for OCR and ROUGE for free-form. The
shuffled view permutes the frames of every video with a per-item seed, so every stage sees the same
permutations.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from videor1.config import EvalConfig, MediaConfig, SamplingConfig
from videor1.demo.settings import DemoSettings
from videor1.demo.stages import SYSTEM_PROMPT, media_config


def _stage_accuracy(pred_file: Path) -> dict[str, Any]:
    """Mean default-mode accuracy over all items, and per family, from a predictions.jsonl."""
    per_family: dict[str, list[float]] = defaultdict(list)
    scores: list[float] = []
    errors = 0
    for line in pred_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        errors += rec["status"] != "ok"
        score = float(rec["score"]["official"]) if rec["status"] == "ok" else 0.0
        scores.append(score)
        per_family[rec.get("family") or "unknown"].append(score)
    return {
        "accuracy": sum(scores) / max(1, len(scores)),
        "per_family": {f: sum(v) / len(v) for f, v in per_family.items()},
        "counts": {f: len(v) for f, v in per_family.items()},
        "errors": errors,
    }


def evaluate_view(
    predictor: Any,
    data_dir: Path,
    run_dir: Path,
    media: MediaConfig,
    *,
    shuffled: bool,
    seed: int,
    max_new_tokens: int,
    batch: int,
    label: str,
    limit: int | None = None,
) -> dict[str, Any]:
    """Greedy evaluation of ``data_dir/test.json`` into ``run_dir`` (resumed if it holds the same
    run), frames in order or shuffled (``shuffle_unit: frame``, seeded per item); returns the mean
    accuracy over all items and per family (``_stage_accuracy``)."""
    from videor1.eval.runner import evaluate

    settings = EvalConfig(
        benches=[str(data_dir / "test.json")],
        bench_names=["videor1-synth"],
        output_dir=str(run_dir),
        greedy=True,
        sampling=SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=max_new_tokens),
        batch_size=batch,
        shuffle_frames=shuffled,
        shuffle_unit="frame",
        seed=seed,
        limit=limit,
    )
    evaluate(predictor, settings, media=media, media_root=data_dir, label=label, system_prompt=SYSTEM_PROMPT)
    return _stage_accuracy(run_dir / "predictions.jsonl")


def evaluate_checkpoint(
    model_dir: Path, s: DemoSettings, out: Path, run_name: str, *, shuffled: bool
) -> dict:
    """One view of one checkpoint, with the demo's evaluation settings, into ``out/eval/<run_name>``."""
    from videor1.infer import Predictor

    return evaluate_view(
        Predictor(str(model_dir), media=media_config(s)),
        out / "data",
        out / "eval" / run_name,
        media_config(s),
        shuffled=shuffled,
        seed=s.seed,
        max_new_tokens=s.eval.max_new_tokens,
        batch=s.eval.batch,
        label=run_name,
    )


def evaluate_stage(model_dir: Path, s: DemoSettings, out: Path, name: str) -> dict[str, Any]:
    """Evaluate one checkpoint with ordered and with shuffled frames."""
    views = {
        view: evaluate_checkpoint(model_dir, s, out, f"{name}-{view}", shuffled=view == "shuffled")
        for view in ("ordered", "shuffled")
    }
    families = sorted(set(views["ordered"]["per_family"]) | set(views["shuffled"]["per_family"]))
    return {
        "model": str(model_dir),
        "accuracy_ordered": views["ordered"]["accuracy"],
        "accuracy_shuffled": views["shuffled"]["accuracy"],
        "errors": views["ordered"]["errors"] + views["shuffled"]["errors"],
        "per_family": {
            f: {
                "ordered": views["ordered"]["per_family"].get(f, 0.0),
                "shuffled": views["shuffled"]["per_family"].get(f, 0.0),
                "n": views["ordered"]["counts"].get(f, 0),
            }
            for f in families
        },
    }


def ordered_point(stage: dict[str, Any]) -> dict[str, Any]:
    """A stage's ordered evaluation (``evaluate_stage``) in the shape of an SFT learning-curve point."""
    return {
        "accuracy": stage["accuracy_ordered"],
        "per_family": {f: v["ordered"] for f, v in stage["per_family"].items()},
        "counts": {f: v["n"] for f, v in stage["per_family"].items()},
        "errors": stage["errors"],
    }
