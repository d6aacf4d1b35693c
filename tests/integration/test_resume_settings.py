"""A real SFT resume refuses settings that change the run and accepts the ones named in --allow-changed."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from videor1.config import Config, DataConfig, MediaConfig, ModelConfig, TrainConfig, load_config
from videor1.train.checkpoint import CheckpointError

SMALL_MEDIA = MediaConfig(
    min_frames=4,
    max_frames=8,
    video_min_pixels=56 * 56,
    video_max_pixels=112 * 112,
    image_max_pixels=112 * 112,
)


def test_sft_resume_refuses_changed_settings_and_accepts_named_ones(tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.sft import train

    data = tmp_path / "train_cot.json"
    shutil.copy(synth_dir / "train_cot.json", data)
    cfg = Config(
        model=ModelConfig(path=str(tiny_model_dir)),
        data=DataConfig(train_file=str(data), media_root=str(synth_dir), media=SMALL_MEDIA, max_samples=4),
        train=TrainConfig(output_dir=str(tmp_path / "run"), max_steps=2, lr=1e-3, max_seq_len=4096),
    )
    first = train(cfg, stop_at_step=1)
    assert json.loads((first / "trainer_state.json").read_text())["train_file_sha256"]

    lr = copy.deepcopy(cfg)
    lr.train.lr = 5e-2
    with pytest.raises(CheckpointError, match=r"train.lr: 0.001 -> 0.05"):
        train(lr, resume="auto")

    other_model = copy.deepcopy(cfg)
    other_model.model.path = str(tmp_path / "another-model")
    shutil.copytree(tiny_model_dir, other_model.model.path)
    with pytest.raises(CheckpointError, match=r"model.path: "):
        train(other_model, resume="auto")

    original = data.read_text()
    records = json.loads(original)
    records[0]["problem"] += " (edited)"  # same number of records, other content
    data.write_text(json.dumps(records))
    with pytest.raises(CheckpointError, match=r"data.train_file \(content\): 'sha256 "):
        train(cfg, resume="auto")
    data.write_text(original)

    allowed = copy.deepcopy(cfg)
    allowed.train.max_grad_norm = 1.0
    with pytest.raises(CheckpointError, match=r"--allow-changed train.max_grad_norm"):
        train(allowed, resume="auto")
    allowed.train.allow_changed = ["train.max_grad_norm"]
    last = train(allowed, resume="auto")
    assert last.name == "step-00000002"
    run = Path(cfg.train.output_dir)
    (record,) = [json.loads(line) for line in (run / "changed_on_resume.jsonl").open()]
    assert record["changed"] == {"train.max_grad_norm": [5.0, 1.0]}
    assert load_config(run / "config.yaml").train.allow_changed == ["train.max_grad_norm"]
