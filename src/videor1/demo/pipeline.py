"""The end-to-end demo: procedural data → tiny model → SFT → GRPO and T-GRPO → evaluation → report.

Every stage is the real one (``videor1.data.synth``, ``videor1.models.tiny``, ``videor1.train.sft``,
``videor1.train.rl``, ``videor1.eval.runner``); the demo only chooses sizes that fit a 2-core CPU and
wires the stages together:

1. generate a procedural temporal dataset (train with CoT traces, held-out test);
2. build a random-init tiny Qwen2.5-VL-architecture model with the small BPE tokenizer;
3. SFT on the templated CoT traces, in two phases: the image records alone, then every record;
4. RL twice from the same SFT checkpoint with the same budget and seed: GRPO (no temporal contrast)
   and T-GRPO (shuffled-frame rollouts + temporal bonus);
5. evaluate base, SFT, GRPO and T-GRPO on the held-out items, once with ordered frames and once
   with the frames of every video shuffled;
6. write ``report.json``, ``report.md`` and plots.

Departures from the reference, all deliberate for a model trained from scratch in minutes: every
stage uses the evaluation prompt wording and the same system message (so the tiny model sees one
prompt distribution), frames are small (112 px, 16 visual tokens per frame pair) and evaluation is
greedy with a short token budget. Accuracy is the mean accuracy reward (default mode) over the
held-out items: exact for multiple choice and numerical answers, MRA-like for regression,
1 − WER for OCR and ROUGE for free-form.

SFT runs in two phases (a curriculum): first on the image records only, then on all records from
that checkpoint. Measured on this data (4 families, batch 8): trained on everything from the start,
the from-scratch model fitted the CoT wording but answered every family at chance after 600 steps
(lr 1e-3 or 3e-3, with or without a frozen ViT), its visual tokens growing from the text-embedding
scale (0.02 RMS) to 31 while their spread across images fell from 55% to 23% of that; on images
alone it learns to look in 75-200 steps, and keeps the skill (colour 75% held-out) when the videos
join.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videor1.config import (
    Config,
    DataConfig,
    EvalConfig,
    MediaConfig,
    ModelConfig,
    RLConfig,
    SamplingConfig,
    SFTConfig,
    SynthConfig,
    TinyModelConfig,
    TrainConfig,
    to_dict,
)
from videor1.utils.logging import get_logger

log = get_logger(__name__)

SYSTEM_PROMPT = "You are a helpful assistant"
STAGE_NAMES = ("base", "sft", "grpo", "tgrpo")


@dataclass
class DemoSettings:
    """Sizes of one demo run. ``full()`` is ``make demo``; ``quick()`` is the test suite's toy size."""

    train_items: int
    test_items: int
    frames: int
    size: int
    tiny: TinyModelConfig
    sft_image_steps: int
    sft_steps: int
    sft_batch: int
    sft_lr: float
    rl_steps: int
    rl_batch: int
    rl_lr: float
    num_generations: int
    rl_max_new_tokens: int
    eval_max_new_tokens: int
    eval_batch: int
    seed: int = 0
    families: list[str] = field(default_factory=list)

    @classmethod
    def full(cls) -> DemoSettings:
        return cls(
            train_items=1500,
            test_items=120,
            frames=16,
            size=112,
            tiny=TinyModelConfig(
                family="qwen2.5-vl",
                tokenizer="small",
                hidden_size=192,
                num_layers=3,
                num_heads=4,
                num_kv_heads=2,
                intermediate_size=512,
                vision_hidden_size=96,
                vision_depth=2,
                vision_heads=4,
            ),
            sft_image_steps=300,
            sft_steps=400,
            sft_batch=8,
            sft_lr=1e-3,
            rl_steps=20,
            rl_batch=4,
            rl_lr=2e-5,
            num_generations=8,
            rl_max_new_tokens=80,
            eval_max_new_tokens=80,
            eval_batch=16,
            # Four families with four options each, two image and two order-dependent video ones. Runs
            # over all twelve families (400 SFT steps), six (600 steps) and these four (600 steps at
            # lr 1e-3 or 3e-3, with or without a frozen ViT) left every family at chance; images alone
            # are learned in 75-200 steps, and the skill survives when the videos join (see module doc).
            families=["image_color", "image_position", "event_quarter", "direction"],
        )

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(
            train_items=24,
            test_items=12,
            frames=8,
            size=56,
            tiny=TinyModelConfig(family="qwen2.5-vl", tokenizer="small"),
            sft_image_steps=2,
            sft_steps=3,
            sft_batch=4,
            sft_lr=1e-3,
            rl_steps=2,
            rl_batch=2,
            rl_lr=1e-5,
            num_generations=4,
            rl_max_new_tokens=16,
            eval_max_new_tokens=16,
            eval_batch=12,
        )


def _media(s: DemoSettings) -> MediaConfig:
    pixels = s.size * s.size
    return MediaConfig(
        fps=2.0,
        min_frames=4,
        max_frames=s.frames,
        video_min_pixels=pixels,
        video_max_pixels=pixels,
        image_min_pixels=pixels,
        image_max_pixels=pixels,
    )


def _data(s: DemoSettings, data_dir: Path, train_file: str) -> DataConfig:
    return DataConfig(
        train_file=str(data_dir / train_file),
        eval_file=str(data_dir / "test.json"),
        media_root=str(data_dir),
        media=_media(s),
        prompt_variant="eval",
        system_prompt=SYSTEM_PROMPT,
    )


def _train(
    s: DemoSettings, output_dir: Path, *, batch: int, steps: int, lr: float, warmup: int
) -> TrainConfig:
    return TrainConfig(
        output_dir=str(output_dir),
        seed=s.seed,
        per_device_batch_size=batch,
        max_steps=steps,
        lr=lr,
        weight_decay=0.01,
        max_grad_norm=1.0,
        scheduler="constant",
        warmup_steps=warmup,
        max_seq_len=4096,
        keep_last=1,
    )


IMAGE_TRAIN_FILE = "train_cot_images.json"
"""The image records of ``train_cot.json``: what the first SFT phase trains on."""


def sft_config(s: DemoSettings, out: Path, base_model: Path, *, phase: str = "all") -> Config:
    """SFT config of one phase: ``"images"`` (image records only, from the base model) or ``"all"``
    (every record, from the images phase's checkpoint)."""
    if phase not in ("images", "all"):
        raise ValueError(f"phase must be 'images' or 'all', got {phase!r}")
    images = phase == "images"
    steps = s.sft_image_steps if images else s.sft_steps
    return Config(
        model=ModelConfig(path=str(base_model)),
        data=_data(s, out / "data", IMAGE_TRAIN_FILE if images else "train_cot.json"),
        train=_train(
            s,
            out / ("sft-images" if images else "sft"),
            batch=s.sft_batch,
            steps=steps,
            lr=s.sft_lr,
            warmup=min(20, steps // 10),
        ),
        sft=SFTConfig(system_prompt=SYSTEM_PROMPT),
    )


def write_image_train_file(data_dir: Path) -> int:
    """Write ``IMAGE_TRAIN_FILE`` (the image records of ``train_cot.json``); returns their count."""
    records = json.loads((data_dir / "train_cot.json").read_text(encoding="utf-8"))
    images = [r for r in records if r.get("data_type") == "image"]
    if not images:
        raise ValueError(f"{data_dir / 'train_cot.json'}: no image records for the images SFT phase")
    tmp = data_dir / (IMAGE_TRAIN_FILE + ".tmp")
    tmp.write_text(json.dumps(images, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(data_dir / IMAGE_TRAIN_FILE)
    return len(images)


def rl_config(s: DemoSettings, out: Path, sft_model: Path, *, temporal: bool) -> Config:
    name = "tgrpo" if temporal else "grpo"
    return Config(
        model=ModelConfig(path=str(sft_model)),
        data=_data(s, out / "data", "train.json"),
        train=_train(s, out / name, batch=s.rl_batch, steps=s.rl_steps, lr=s.rl_lr, warmup=0),
        rl=RLConfig(
            num_generations=s.num_generations,
            temporal=temporal,
            shuffle_unit="temporal_patch",
            temporal_form="advantage",
            length_reward=False,
            beta=0.04,
            max_prompt_length=4096,
            sampling=SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=s.rl_max_new_tokens),
        ),
    )


def _stage_accuracy(pred_file: Path) -> dict[str, Any]:
    """Mean default-mode accuracy over all items, and per family, from a predictions.jsonl."""
    per_family: dict[str, list[float]] = defaultdict(list)
    scores: list[float] = []
    errors = 0
    for line in pred_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec["status"] != "ok":
            errors += 1
            score = 0.0
        else:
            score = float(rec["score"]["official"])
        scores.append(score)
        per_family[rec.get("family") or "unknown"].append(score)
    return {
        "accuracy": sum(scores) / max(1, len(scores)),
        "per_family": {f: sum(v) / len(v) for f, v in per_family.items()},
        "counts": {f: len(v) for f, v in per_family.items()},
        "errors": errors,
    }


def evaluate_stage(model_dir: Path, s: DemoSettings, out: Path, name: str) -> dict[str, Any]:
    """Evaluate one checkpoint with ordered and with shuffled frames."""
    from videor1.eval.runner import evaluate
    from videor1.infer import Predictor

    data_dir = out / "data"
    predictor = Predictor(str(model_dir), media=_media(s))
    result: dict[str, Any] = {"model": str(model_dir)}
    views = {}
    for view, shuffled in (("ordered", False), ("shuffled", True)):
        run_dir = out / "eval" / f"{name}-{view}"
        ev = EvalConfig(
            benches=[str(data_dir / "test.json")],
            bench_names=["videor1-synth"],
            output_dir=str(run_dir),
            greedy=True,
            sampling=SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=s.eval_max_new_tokens),
            batch_size=s.eval_batch,
            shuffle_frames=shuffled,
            shuffle_unit="frame",
            seed=s.seed,
        )
        evaluate(
            predictor,
            ev,
            media=_media(s),
            media_root=data_dir,
            label=f"{name} ({view})",
            system_prompt=SYSTEM_PROMPT,
        )
        views[view] = _stage_accuracy(run_dir / "predictions.jsonl")
    families = sorted(set(views["ordered"]["per_family"]) | set(views["shuffled"]["per_family"]))
    result["accuracy_ordered"] = views["ordered"]["accuracy"]
    result["accuracy_shuffled"] = views["shuffled"]["accuracy"]
    result["errors"] = views["ordered"]["errors"] + views["shuffled"]["errors"]
    result["per_family"] = {
        f: {
            "ordered": views["ordered"]["per_family"].get(f, 0.0),
            "shuffled": views["shuffled"]["per_family"].get(f, 0.0),
            "n": views["ordered"]["counts"].get(f, 0),
        }
        for f in families
    }
    return result


def _reward_curve(run_dir: Path) -> list[dict[str, float]]:
    from videor1.utils.rundir import read_metrics

    points = []
    for rec in read_metrics(run_dir / "metrics.jsonl"):
        acc = rec.get("reward/accuracy", rec.get("accuracy_ordered"))
        total = rec.get("reward/total")
        if acc is None:
            continue
        points.append({"step": rec["step"], "accuracy": acc, "reward": total if total is not None else acc})
    return points


def run_demo(out_dir: str | Path, *, quick: bool = False, fresh: bool = False) -> dict[str, Any]:
    """Run every stage into ``out_dir`` and return the results written to ``report.json``."""
    from videor1.data.synth import generate_from_config
    from videor1.demo.report import headline_rows, write_report
    from videor1.models.tiny import build_tiny_model
    from videor1.train import rl as rl_recipe
    from videor1.train import sft as sft_recipe

    s = DemoSettings.quick() if quick else DemoSettings.full()
    out = Path(out_dir)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    def timed(stage: str):
        class _Timer:
            def __enter__(self):
                log.info("demo stage: %s", stage)
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                seconds[stage] = round(time.perf_counter() - self.t, 1)
                log.info("demo stage %s took %.0f s", stage, seconds[stage])

        return _Timer()

    data_dir = out / "data"
    with timed("data"):
        if not (data_dir / "meta.json").exists():
            synth = SynthConfig(
                train=s.train_items,
                test=s.test_items,
                seed=s.seed,
                size=s.size,
                frames=s.frames,
                families=list(s.families),
            )
            generate_from_config(synth, data_dir, jobs=2)
    meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))

    base_dir = out / "model-base"
    with timed("model"):
        if not (base_dir / "config.json").exists():
            build_tiny_model(s.tiny, base_dir)

    with timed("sft"):
        write_image_train_file(data_dir)
        image_ckpt = sft_recipe.train(sft_config(s, out, base_dir, phase="images"), resume="auto")
        sft_ckpt = sft_recipe.train(sft_config(s, out, Path(image_ckpt), phase="all"), resume="auto")
    with timed("grpo"):
        grpo_ckpt = rl_recipe.train(rl_config(s, out, sft_ckpt, temporal=False), resume="auto")
    with timed("tgrpo"):
        tgrpo_ckpt = rl_recipe.train(rl_config(s, out, sft_ckpt, temporal=True), resume="auto")

    stages: dict[str, Any] = {}
    with timed("eval"):
        for name, model_dir in (
            ("base", base_dir),
            ("sft", sft_ckpt),
            ("grpo", grpo_ckpt),
            ("tgrpo", tgrpo_ckpt),
        ):
            stages[name] = evaluate_stage(Path(model_dir), s, out, name)

    test_records = json.loads((data_dir / "test.json").read_text(encoding="utf-8"))
    chance_per_family = {f: info["chance"] for f, info in meta["families"].items()}
    chance = sum(chance_per_family[r["family"]] for r in test_records) / max(1, len(test_records))
    results: dict[str, Any] = {
        "stages": stages,
        "chance": chance,
        "chance_per_family": chance_per_family,
        "order_dependent_families": sorted(f for f, i in meta["families"].items() if i["order_dependent"]),
        "held_out_items": len(test_records),
        "seconds": seconds,
        "config": {
            "settings": dataclasses.asdict(s),
            "sft_images": to_dict(sft_config(s, out, base_dir, phase="images")),
            "sft": to_dict(sft_config(s, out, Path(image_ckpt), phase="all")),
            "grpo": to_dict(rl_config(s, out, Path(sft_ckpt), temporal=False)),
            "tgrpo": to_dict(rl_config(s, out, Path(sft_ckpt), temporal=True)),
        },
        "reward_curves": {"grpo": _reward_curve(out / "grpo"), "tgrpo": _reward_curve(out / "tgrpo")},
        "quick": quick,
    }
    seconds["total"] = round(sum(v for k, v in seconds.items() if k != "total"), 1)
    report = write_report(results, out)
    log.info("report: %s", report)
    results["_headline"] = headline_rows(results)
    return results
