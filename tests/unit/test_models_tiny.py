"""build_tiny_model: determinism, the real-Qwen-vocabulary variant, bad sizes and occupied directories."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from videor1.config import TinyModelConfig
from videor1.models.tiny import _mrope_section, build_tiny_model


def _weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_same_seed_same_model_other_seed_other_weights(tmp_path):
    cfg = TinyModelConfig(family="qwen2.5-vl", seed=7)
    a = build_tiny_model(cfg, tmp_path / "a")
    b = build_tiny_model(cfg, tmp_path / "b")
    c = build_tiny_model(TinyModelConfig(family="qwen2.5-vl", seed=8), tmp_path / "c")
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert wa.keys() == wb.keys() == wc.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "chat_template.jinja").read_text() == (b / "chat_template.jinja").read_text()


def test_building_does_not_disturb_the_global_rng(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model(TinyModelConfig(family="qwen2-vl"), tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


def test_qwen_vocabulary_variant(tmp_path):
    out = build_tiny_model(TinyModelConfig(family="qwen2.5-vl", tokenizer="qwen"), tmp_path / "q")
    model = AutoModelForImageTextToText.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    cfg = model.config
    assert (cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id) == (
        151655,
        151656,
        151652,
        151653,
    )
    assert (cfg.text_config.eos_token_id, cfg.text_config.pad_token_id) == (151645, 151643)
    assert cfg.text_config.vocab_size == 151936 >= len(processor.tokenizer)
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    batch = processor(text=[text], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert tuple(logits.shape) == (1, batch["input_ids"].shape[1], 151936)


def test_refuses_an_occupied_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty"):
        build_tiny_model(TinyModelConfig(), tmp_path / "x")


def test_rejects_inconsistent_sizes(tmp_path):
    with pytest.raises(ValueError, match="hidden_size \\(130\\) must be divisible by num_heads \\(4\\)"):
        build_tiny_model(TinyModelConfig(hidden_size=130), tmp_path / "y")
    with pytest.raises(ValueError, match="num_heads \\(4\\) must be divisible by num_kv_heads \\(3\\)"):
        build_tiny_model(TinyModelConfig(num_kv_heads=3), tmp_path / "z")


def test_mrope_sections_keep_the_real_proportions():
    # real Qwen2/2.5-VL: head_dim 128 -> [16, 24, 24]; real Qwen3-VL: [24, 20, 20]
    assert _mrope_section(128, "qwen2.5-vl") == [16, 24, 24]
    assert _mrope_section(128, "qwen3-vl") == [24, 20, 20]
    # tiny head_dim 32: 16 frequencies
    assert _mrope_section(32, "qwen2.5-vl") == [4, 6, 6]
    assert _mrope_section(32, "qwen3-vl") == [6, 5, 5]


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"])
def test_visual_tokens_start_at_text_embedding_scale(tmp_path, family):
    from videor1.models.tiny import _visual_features

    out = build_tiny_model(TinyModelConfig(family=family), tmp_path / "m")
    model = AutoModelForImageTextToText.from_pretrained(out)
    vision = model.config.vision_config
    torch.manual_seed(123)  # another probe than the one used at build time
    pixels = torch.randn(36, 3 * vision.temporal_patch_size * vision.patch_size**2)
    with torch.no_grad():
        feats = _visual_features(model, pixels, torch.tensor([[1, 6, 6]]))
    text_rms = model.get_input_embeddings().weight.pow(2).mean().sqrt().item()
    visual_rms = feats.pow(2).mean().sqrt().item()
    # same scale up to the probe's randomness (at class init the visual RMS is ~50x the text's)
    assert 0.5 < visual_rms / text_rms < 2.0


@pytest.mark.parametrize("match", [True, False])
def test_qwen3_position_table_starts_at_patch_scale(tmp_path, match):
    out = build_tiny_model(TinyModelConfig(family="qwen3-vl", match_position_scale=match), tmp_path / "m")
    model = AutoModelForImageTextToText.from_pretrained(out)
    visual, vision = model.model.visual, model.config.vision_config
    torch.manual_seed(123)
    pixels = torch.randn(64, 3 * vision.temporal_patch_size * vision.patch_size**2)
    with torch.no_grad():
        patch_rms = visual.patch_embed(pixels).pow(2).mean().sqrt().item()
    table_rms = visual.pos_embed.weight.pow(2).mean().sqrt().item()
    if match:
        assert 0.7 < table_rms / patch_rms < 1.4
    else:  # the class initialisation: std 0.02, a few percent of a patch embedding
        assert table_rms == pytest.approx(0.02, rel=0.05) and table_rms / patch_rms < 0.1


def test_rope_theta_reaches_the_model_config(tmp_path):
    from videor1.models.tiny import REAL_ROPE_THETA, TINY_ROPE_THETA

    out = build_tiny_model(TinyModelConfig(family="qwen2.5-vl", rope_theta=50.0), tmp_path / "a")
    assert (
        AutoModelForImageTextToText.from_pretrained(out).config.text_config.rope_parameters["rope_theta"]
        == 50.0
    )
    out = build_tiny_model(TinyModelConfig(family="qwen3-vl"), tmp_path / "b")
    theta = AutoModelForImageTextToText.from_pretrained(out).config.text_config.rope_parameters["rope_theta"]
    assert theta == TINY_ROPE_THETA["qwen3-vl"] and REAL_ROPE_THETA["qwen3-vl"] == 5e6
    # Qwen2.5-VL's tiny default is small enough that the width axis rotates across a frame
    out = build_tiny_model(TinyModelConfig(family="qwen2.5-vl"), tmp_path / "d")
    theta = AutoModelForImageTextToText.from_pretrained(out).config.text_config.rope_parameters["rope_theta"]
    assert theta == TINY_ROPE_THETA["qwen2.5-vl"] == 100.0 and REAL_ROPE_THETA["qwen2.5-vl"] == 1e6
    with pytest.raises(ValueError, match="rope_theta must be > 1"):
        build_tiny_model(TinyModelConfig(rope_theta=0.5), tmp_path / "c")
