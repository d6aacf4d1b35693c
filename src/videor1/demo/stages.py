"""The demo's stage configs and training files, derived from ``DemoSettings``.

``videor1.demo.pipeline`` explains the choices (one prompt wording and system message for every
stage, small frames, answer-only SFT targets). SFT and RL each train on a file written here from the
generated data: the image records for the images-first SFT phase, the CoT records without the
shortcut items a cue-following teacher got wrong, and the training records of the RL families.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from videor1.config import (
    Config,
    ConfigError,
    DataConfig,
    MediaConfig,
    ModelConfig,
    RLConfig,
    SamplingConfig,
    SFTConfig,
    TrainConfig,
)
from videor1.demo.settings import VARIANTS, DemoSettings, Variant

SYSTEM_PROMPT = "You are a helpful assistant"
IMAGE_TRAIN_FILE = "train_cot_images.json"
"""The image records of ``train_cot.json``: what the first SFT phase trains on."""
SFT_TRAIN_FILE = "train_cot_sft.json"
"""``train_cot.json`` without the shortcut items a cue-following teacher would have got wrong."""
RL_TRAIN_FILE = "train_rl.json"
"""The records of ``train.json`` from the families RL trains on."""


def media_config(s: DemoSettings) -> MediaConfig:
    """Every stage samples all ``data.frames`` frames at exactly ``data.size``² pixels."""
    pixels = s.data.size * s.data.size
    return MediaConfig(
        fps=2.0,
        min_frames=4,
        max_frames=s.data.frames,
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
        media=media_config(s),
        prompt_variant="eval",
        system_prompt=SYSTEM_PROMPT,
    )


def _train(output_dir: Path, *, batch: int, steps: int, lr: float, warmup: int, seed: int) -> TrainConfig:
    return TrainConfig(
        output_dir=str(output_dir),
        seed=seed,
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


def sft_config(s: DemoSettings, out: Path, base_model: Path, *, phase: str = "all") -> Config:
    """SFT config of one phase: ``"images"`` (image records only, from the base model) or ``"all"``
    (every record, from the images phase's checkpoint, or from the base model without curriculum)."""
    if phase not in ("images", "all"):
        raise ValueError(f"phase must be 'images' or 'all', got {phase!r}")
    images = phase == "images"
    steps = s.sft.image_steps if images else s.sft.steps
    train_file = SFT_TRAIN_FILE if s.data.sft_shortcut_items == "cue" else "train_cot.json"
    return Config(
        model=ModelConfig(path=str(base_model)),
        data=_data(s, out / "data", IMAGE_TRAIN_FILE if images else train_file),
        train=_train(
            out / ("sft-images" if images else "sft"),
            batch=s.sft.batch,
            steps=steps,
            lr=s.sft.lr,
            warmup=min(s.sft.warmup_steps, steps // 10),
            seed=s.seed,
        ),
        sft=SFTConfig(system_prompt=SYSTEM_PROMPT),
    )


def rl_config(s: DemoSettings, out: Path, sft_model: Path, *, variant: Variant, seed: int) -> Config:
    """RL config of one variant and seed (``VARIANTS`` says what each variant changes)."""
    v = VARIANTS[variant]
    return Config(
        model=ModelConfig(path=str(sft_model)),
        data=_data(s, out / "data", RL_TRAIN_FILE),
        train=_train(
            rl_dir(out, variant, seed), batch=s.rl.batch, steps=s.rl.steps, lr=s.rl.lr, warmup=0, seed=seed
        ),
        rl=RLConfig(
            num_generations=s.rl.num_generations,
            temporal=v.temporal,
            shuffle_unit="temporal_patch",
            temporal_form=v.temporal_form,
            temporal_margin=s.rl.margin if v.margin else None,
            temporal_alpha=RLConfig.temporal_alpha if v.bonus else 0.0,
            length_reward=False,
            beta=s.rl.beta,
            max_prompt_length=4096,
            sampling=SamplingConfig(
                temperature=s.rl.temperature, top_p=1.0, max_new_tokens=s.rl.max_new_tokens
            ),
        ),
    )


def rl_dir(out: Path, variant: str, seed: int) -> Path:
    return out / "rl" / f"{variant}-seed{seed}"


def generate_data(s: DemoSettings, data_dir: Path) -> None:
    """The demo's procedural dataset in ``data_dir`` (kept when ``meta.json`` says it is complete)."""
    from videor1.data.synth import generate_dataset

    if (data_dir / "meta.json").exists():
        return
    generate_dataset(
        data_dir,
        train=s.data.train_items,
        test=s.data.test_items,
        seed=s.seed,
        families=s.data.families,
        size=s.data.size,
        frames=s.data.frames,
        jobs=2,
        cot_detail=s.data.cot_detail,
    )


def _write_subset(source: Path, target: Path, keep: Callable[[dict[str, Any]], bool], empty: str) -> int:
    """Write the records of ``source`` that ``keep`` accepts to ``target``; returns their count.
    ``empty`` completes the error raised when there are none: "<source>: <empty>"."""
    records = json.loads(source.read_text(encoding="utf-8"))
    chosen = [r for r in records if keep(r)]
    if not chosen:
        raise ConfigError(f"{source}: {empty}")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(chosen, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(target)
    return len(chosen)


def write_image_train_file(data_dir: Path) -> int:
    """Write ``IMAGE_TRAIN_FILE`` (the image records of ``train_cot.json``); returns their count."""
    return _write_subset(
        data_dir / "train_cot.json",
        data_dir / IMAGE_TRAIN_FILE,
        lambda r: r.get("data_type") == "image",
        "no image records (data_type: image) for the images-first SFT phase; "
        "add an image family to data.families or set sft.image_steps to 0",
    )


def write_sft_train_file(data_dir: Path) -> int:
    """Write ``SFT_TRAIN_FILE``: every CoT record except shortcut-family items whose cue is wrong.

    It models a teacher that answered the shortcut family by its static cue, filtered by
    correctness as the CoT annotation stage does: exactly the items where the cue gives the right
    answer survive, so SFT never sees the cue fail (RL still trains on every item).
    """
    return _write_subset(
        data_dir / "train_cot.json",
        data_dir / SFT_TRAIN_FILE,
        lambda r: r.get("shortcut_cue", True),
        "no records left for SFT after dropping the shortcut items whose cue is wrong "
        "(data.sft_shortcut_items: cue)",
    )


def write_rl_train_file(data_dir: Path, families: list[str]) -> int:
    """Write ``RL_TRAIN_FILE`` (the records of ``train.json`` from ``families``); returns their count."""
    wanted = set(families)
    return _write_subset(
        data_dir / "train.json",
        data_dir / RL_TRAIN_FILE,
        lambda r: r.get("family") in wanted,
        f"no records of the RL families ({', '.join(sorted(wanted))}; rl.families) to train RL on",
    )
