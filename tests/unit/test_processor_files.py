"""Checkpoints also carry the processor files transformers 4.x and older vLLM read."""

from __future__ import annotations

import json

import pytest


def test_legacy_files_hold_the_saved_processors_settings(tmp_path):
    from transformers import AutoProcessor

    from videor1.config import TinyModelConfig
    from videor1.models.processor_files import write_legacy_processor_files
    from videor1.models.tiny import build_tiny_model

    build_tiny_model(TinyModelConfig(family="qwen2.5-vl", tokenizer="small"), tmp_path / "model")
    processor = AutoProcessor.from_pretrained(tmp_path / "model")
    processor.image_processor.size = {"shortest_edge": 3136, "longest_edge": 12544}
    processor.save_pretrained(tmp_path / "out")
    written = write_legacy_processor_files(tmp_path / "out")
    assert [p.name for p in written] == ["preprocessor_config.json", "video_preprocessor_config.json"]
    image = json.loads((tmp_path / "out/preprocessor_config.json").read_text())
    video = json.loads((tmp_path / "out/video_preprocessor_config.json").read_text())
    assert image["image_processor_type"] == "Qwen2VLImageProcessor"
    assert image["processor_class"] == video["processor_class"] == "Qwen2_5_VLProcessor"
    assert (image["min_pixels"], image["max_pixels"]) == (3136, 12544)
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor"
    # the image file alone rebuilds the same image processor
    rebuilt = type(processor.image_processor).from_dict(image)
    assert rebuilt.size == processor.image_processor.size


def test_a_broken_processor_config_is_an_error_naming_the_file(tmp_path):
    from videor1.models.processor_files import write_legacy_processor_files

    (tmp_path / "processor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="processor_config.json: not valid JSON"):
        write_legacy_processor_files(tmp_path)
