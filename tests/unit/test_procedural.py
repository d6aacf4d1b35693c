"""Procedural data and tiny models are built only where the config owns the path, never over a typo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from videor1.config import ConfigError, DataConfig, ModelConfig, SynthConfig, TinyModelConfig, load_config
from videor1.data.procedural import check_generation
from videor1.models.loading import ModelNotFoundError, ensure_model
from videor1.train.data import ensure_data

ROOT = Path(__file__).resolve().parents[2]
SMALL_SYNTH = SynthConfig(train=2, test=1, frames=8, families=["direction"])


def _data(root: Path, train_file: str = "train.json", synth: SynthConfig | None = SMALL_SYNTH) -> DataConfig:
    return DataConfig(train_file=str(root / train_file), media_root=str(root), synth=synth)


def test_a_mistyped_train_file_is_an_error_and_nothing_is_written(tmp_path):
    root = tmp_path / "data"
    with pytest.raises(ConfigError, match=r"data.train_file .*trian.json does not exist.*fix the path"):
        ensure_data(_data(root, "trian.json"))
    assert not root.exists()


def test_a_user_directory_is_never_generated_into(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "train.json").write_text("[]")  # the user's own file
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="already holds other files"):
        ensure_data(_data(root, "train_cot.json"))
    assert (root / "train.json").read_text() == "[]"
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt", "train.json"]


def test_a_file_outside_the_media_root_is_never_generated(tmp_path):
    cfg = DataConfig(train_file=str(tmp_path / "elsewhere" / "train.json"), media_root=str(tmp_path / "d"))
    cfg.synth = SMALL_SYNTH
    with pytest.raises(ConfigError, match="directly under data.media_root"):
        ensure_data(cfg)
    assert not (tmp_path / "d").exists()


def test_without_synth_a_missing_file_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.train_file .*train.json does not exist$"):
        ensure_data(_data(tmp_path, synth=None))


def test_the_owned_path_is_generated_once_then_checked_against_the_section(tmp_path):
    root = tmp_path / "data"
    assert ensure_data(_data(root)) == root / "train.json"
    assert len(json.loads((root / "train.json").read_text())) == 2
    assert not check_generation(_data(root), {"data.train_file": root / "train.json"})  # reused
    other = SynthConfig(train=5, test=1, frames=8, families=["direction"])
    with pytest.raises(ConfigError, match=r"data.synth.train=5 \(the files have 2\)"):
        ensure_data(_data(root, synth=other))


def test_a_mistyped_checkpoint_path_never_becomes_a_random_model(tmp_path):
    tiny = TinyModelConfig()
    path = tmp_path / "run" / "checkpoints" / "step-0004"
    with pytest.raises(
        ModelNotFoundError, match=r"model.path .*step-0004 does not exist; it looks like a training"
    ):
        ensure_model(ModelConfig(path=str(path), tiny=tiny))
    full = tmp_path / "full"
    full.mkdir()
    (full / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="holds other files but no config.json"):
        ensure_model(ModelConfig(path=str(full), tiny=tiny))
    assert not path.exists() and [p.name for p in full.iterdir()] == ["weights.bin"]


def test_model_path_on_the_command_line_switches_model_tiny_off():
    grpo = ROOT / "configs" / "tiny" / "grpo.yaml"
    assert load_config(grpo).model.tiny is not None
    cfg = load_config(grpo, ["model.path=runs/tiny/sft/checkpoints/step-00000004"])
    assert cfg.model.tiny is None
    with pytest.raises(ModelNotFoundError, match=r"^model.path .*step-00000004 does not exist"):
        ensure_model(cfg.model)
    kept = load_config(grpo, ["model.path=elsewhere/model", "model.tiny.seed=1"])
    assert kept.model.tiny is not None and kept.model.tiny.seed == 1


def test_eval_with_a_mistyped_bench_generates_nothing(tmp_path, capsys):
    from videor1.cli import main

    root = tmp_path / "data"
    argv = [
        "-q", "eval", "--model", str(tmp_path / "no-model"), "--bench", str(root / "tset.json"),
        "data.media_root=" + str(root), "data.synth.train=2", "data.synth.test=1", "data.synth.frames=8",
    ]  # fmt: skip
    assert main(argv) == 2
    assert "eval.benches[0]" in capsys.readouterr().err
    assert not root.exists()
