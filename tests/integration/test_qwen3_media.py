"""Qwen3-VL (32 px per visual token) through eval, infer, annotate, SFT and RL on procedural media.

The synth media are 84 px (3 x 28, not a multiple of 32). Every recipe must resize them with the
model's pixel factor (``FamilyAdapter.geometry.pixel_factor``); sized for Qwen2/2.5-VL (28) they would
stay 84 px and collation refuses them for a Qwen3-VL model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_sft import SMALL_MEDIA

from videor1.config import Config, DataConfig, ModelConfig, TrainConfig

SIZE = 84  # a multiple of 28, not of 32
MEDIA = SMALL_MEDIA  # 84 px stays 84 px with factor 28 and becomes 96 px with factor 32


@pytest.fixture(scope="module")
def data84(tmp_path_factory) -> Path:
    """4 train and 4 test items, images and videos alternating, 84 x 84 px."""
    from videor1.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("synth84")
    generate_dataset(
        out, train=4, test=4, seed=0, families=["image_color", "direction"], size=SIZE, frames=8, jobs=1
    )
    return out


@pytest.fixture(scope="module")
def predictor(tiny_qwen3_dir):
    from videor1.infer import Predictor

    return Predictor(tiny_qwen3_dir, device="cpu", media=MEDIA)


def test_eval_runner_on_qwen3_has_no_error_lines(predictor, data84, tmp_path):
    from videor1.eval.runner import evaluate

    assert SIZE % 32  # the model cannot take the media at their own size
    from videor1.config import EvalConfig, SamplingConfig

    cfg = EvalConfig(
        benches=[str(data84 / "test.json")],
        output_dir=str(tmp_path),
        sampling=SamplingConfig(max_new_tokens=4),
        greedy=True,
        batch_size=4,
    )
    summary = evaluate(predictor, cfg, media=MEDIA)
    s = summary["benchmarks"]["test"]
    lines = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert {line["data_type"] for line in lines} == {"image", "video"}
    assert [line["status"] for line in lines] == ["ok"] * 4
    assert (s["n"], s["scored"], s["errors"]) == (4, 4, 0)


def test_predictor_predicts_on_qwen3_video_and_image(predictor, data84):
    records = json.loads((data84 / "test.json").read_text())
    video = next(r for r in records if r["data_type"] == "video")
    image = next(r for r in records if r["data_type"] == "image")
    from videor1.config import SamplingConfig

    predictor.greedy, predictor.sampling = True, SamplingConfig(max_new_tokens=4)
    out = predictor.predict(video["problem"], video=data84 / video["path"], options=video["options"])
    assert out.num_frames == 8 and out.raw_text
    out = predictor.predict(image["problem"], image=data84 / image["path"])
    assert out.num_frames is None and out.raw_text
    assert predictor.geometry.pixel_factor == 32


def test_local_qwen3_teacher_answers_every_record(tiny_qwen3_dir, data84, tmp_path):
    from videor1.annotate import annotate, make_teacher
    from videor1.config import SamplingConfig

    teacher = make_teacher(
        str(tiny_qwen3_dir), media=MEDIA, sampling=SamplingConfig(max_new_tokens=4), device="cpu"
    )
    report = annotate(teacher, data84 / "test.json", data84, tmp_path / "cot.json", media=MEDIA, batch_size=4)
    assert (report["total"], report["answered"], report["media_errors"]) == (4, 4, 0)
    assert teacher.geometry.pixel_factor == 32


def test_media_dataset_resizes_with_the_given_factor(data84):
    from videor1.data.records import load_records
    from videor1.train.data import MediaDataset
    from videor1.types import VisionGeometry

    samples = load_records(data84 / "train.json")
    for geometry in (VisionGeometry(14, 2, 2), VisionGeometry(16, 2, 2)):
        factor = geometry.pixel_factor
        for _, media in MediaDataset(samples, data84, MEDIA, geometry):
            pixels = media.frames if hasattr(media, "frames") else media.pixels
            assert tuple(pixels.shape[-2:]) == ((84, 84) if factor == 28 else (96, 96))


def test_one_sft_step_on_qwen3(tiny_qwen3_dir, data84, tmp_path):
    from videor1.train.sft import train
    from videor1.utils.rundir import read_metrics

    cfg = Config(
        model=ModelConfig(path=str(tiny_qwen3_dir)),
        data=DataConfig(train_file=str(data84 / "train_cot.json"), media_root=str(data84), media=MEDIA),
        train=TrainConfig(
            output_dir=str(tmp_path),
            per_device_batch_size=4,  # two images and two videos in one micro-batch
            max_steps=1,
            lr=1e-3,
            scheduler="constant",
            max_seq_len=4096,
            seed=0,
        ),
    )
    final = train(cfg)
    (record,) = read_metrics(tmp_path / "metrics.jsonl")
    assert record["step"] == 1 and record["loss"] > 0
    assert (final / "model.safetensors").exists()


def _rl_config(model_dir: Path, data_dir: Path, out: Path, overrides: dict) -> Config:
    """One RL step on the 84 px data, 4 questions (two images, two videos) per micro-batch."""
    from videor1.config import load_config

    settings = {
        "model.path": model_dir,
        "data.train_file": data_dir / "train.json",
        "data.media_root": data_dir,
        "data.media.video_min_pixels": 3136,
        "data.media.video_max_pixels": 12544,
        "data.media.image_min_pixels": 3136,
        "data.media.image_max_pixels": 12544,
        "train.output_dir": out,
        "train.max_steps": 1,
        "train.per_device_batch_size": 4,
        "train.save_every": 0,
        **overrides,
    }
    return load_config(None, [f"{k}={v}" for k, v in settings.items()])


def test_rl_rollout_gets_media_resized_with_the_policy_factor(tiny_qwen3_dir, data84, tmp_path, monkeypatch):
    # Only media loading is checked: the rollout is replaced by a stub that stops the run with what it got.
    import videor1.train.rl as rl

    class Seen(Exception):
        pass

    def rollout(state, questions, generator):
        raise Seen([q.media for q in questions])

    monkeypatch.setattr(rl, "rollout", rollout)
    cfg = _rl_config(tiny_qwen3_dir, data84, tmp_path, {"rl.beta": 0.0})
    with pytest.raises(Seen) as seen:
        rl.train(cfg)
    (media,) = seen.value.args
    assert {type(m).__name__ for m in media} == {"ImageInput", "VideoClip"}
    for m in media:
        assert tuple((m.frames if hasattr(m, "frames") else m.pixels).shape[-2:]) == (96, 96)


@pytest.mark.parametrize(
    "vision",
    ["trained", "frozen"],
)
def test_rl_step_on_qwen3_images_and_videos(tiny_qwen3_dir, data84, tmp_path, vision):
    # A real T-GRPO step (no stub): the rollout prefill and the policy / reference forwards get the
    # reused vision encodings with Qwen3-VL's deepstack features. ``trained``: the ViT trains and the
    # shuffled clips are re-encoded (unit=frame); ``frozen``: the shuffled group reuses the ordered
    # encodings permuted by temporal patch and every forward reuses the rollout's (1 ViT pass).
    import torch
    from safetensors.torch import load_file

    from videor1.train.rl import train
    from videor1.utils.rundir import read_metrics

    frozen = vision == "frozen"
    overrides = {
        "model.freeze_vision": str(frozen).lower(),
        "data.media.nframes": 4,
        "train.lr": 1e-3,
        "rl.num_generations": 4,
        "rl.shuffled_generations": 2,
        "rl.shuffle_unit": "temporal_patch" if frozen else "frame",
        "rl.sampling.max_new_tokens": 6,
        # a random-init model scores 0 on every rollout (zero advantages); the second pass over the
        # batch has a KL gradient (the first update moved the policy off the reference)
        "rl.num_iterations": 2,
    }
    final = train(_rl_config(tiny_qwen3_dir, data84, tmp_path, overrides))

    (record,) = read_metrics(tmp_path / "metrics.jsonl")
    assert record["step"] == 1 and record["temporal/p"] is not None  # video questions were rolled out
    assert record["grad_norm"] > 0 and record["completion_length"] > 0
    if frozen:
        assert record["vit_passes_per_video_question"] == 1
    before, after = (
        load_file(str(tiny_qwen3_dir / "model.safetensors")),
        load_file(str(final / "model.safetensors")),
    )
    assert before.keys() == after.keys()
    vision_keys = {k for k in before if ".visual." in k}
    deepstack = {k for k in vision_keys if "deepstack_merger" in k}
    assert deepstack
    expected = set(before) - vision_keys if frozen else set(before)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # trained ViT: the deepstack mergers' biases and norms (no weight decay) moved, so the gradient
    # reached them through the deepstack features of the policy forward
    assert changed == expected, sorted(expected - changed)[:10]
