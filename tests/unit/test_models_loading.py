"""ensure_model / load_model_and_processor: where checkpoints come from and which parameters train."""

from __future__ import annotations

import shutil

import pytest
import torch

from videor1.config import LoraConfig, ModelConfig, TinyModelConfig
from videor1.models.adapters import get_adapter
from videor1.models.loading import (
    ModelNotFoundError,
    ensure_model,
    load_model_and_processor,
    lora_target_modules,
)


def test_ensure_model_builds_tiny_once(tmp_path):
    target = tmp_path / "tiny"
    cfg = ModelConfig(path=str(target), tiny=TinyModelConfig(family="qwen2-vl"))
    assert ensure_model(cfg) == target
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # the staging directory was renamed away
    weights = target / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert ensure_model(cfg) == target
    assert weights.stat().st_mtime_ns == stamp
    assert get_adapter(target).family == "qwen2-vl"


def test_missing_path_without_tiny_names_the_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "absent")):
        ensure_model(ModelConfig(path=str(tmp_path / "absent")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        ensure_model(ModelConfig(path=str(tmp_path / "empty")))
    with pytest.raises(ModelNotFoundError, match="model.path is empty"):
        ensure_model(ModelConfig(path=""))


def test_unreachable_hub_id_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="could not be fetched from the Hugging Face hub"):
        ensure_model(ModelConfig(path="no-such-org/no-such-model-videor1"))


def test_inference_load_is_frozen_eval_float32(tiny_model_dir):
    model, processor = load_model_and_processor(ModelConfig(path=str(tiny_model_dir)))
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert processor.tokenizer.eos_token == "<|im_end|>"


def test_dtype_and_family_come_from_config(tiny_model_dir):
    model, _ = load_model_and_processor(
        ModelConfig(path=str(tiny_model_dir), dtype="bfloat16", attn_implementation="eager")
    )
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.config._attn_implementation == "eager"
    with pytest.raises(ValueError, match="model.family is 'qwen3-vl' but .* is a qwen2.5-vl model"):
        load_model_and_processor(ModelConfig(path=str(tiny_model_dir), family="qwen3-vl"))


def test_freeze_vision_trains_only_the_language_side(tiny_model_dir):
    model, _ = load_model_and_processor(
        ModelConfig(path=str(tiny_model_dir), freeze_vision=True), for_training=True
    )
    assert model.training
    vision = get_adapter(model).vision_tower(model)
    assert not any(p.requires_grad for p in vision.parameters())
    vision_ids = {id(p) for p in vision.parameters()}
    others = [p for p in model.parameters() if id(p) not in vision_ids]
    assert others and all(p.requires_grad for p in others)


def test_lora_targets_language_model_only_unless_vision(tiny_model_dir):
    model, _ = load_model_and_processor(ModelConfig(path=str(tiny_model_dir)))
    cfg = ModelConfig(
        path=str(tiny_model_dir), lora=LoraConfig(enabled=True, target_modules=["q_proj", "down_proj"])
    )
    targets = lora_target_modules(model, cfg)
    # 2 layers x (q_proj, down_proj)
    assert targets == [
        "model.language_model.layers.0.self_attn.q_proj",
        "model.language_model.layers.0.mlp.down_proj",
        "model.language_model.layers.1.self_attn.q_proj",
        "model.language_model.layers.1.mlp.down_proj",
    ]
    cfg.lora.vision = True
    with_vision = lora_target_modules(model, cfg)
    assert set(targets) < set(with_vision)
    assert all(t.startswith("model.visual.") for t in set(with_vision) - set(targets))
    cfg.lora.target_modules = ["no_such_proj"]
    cfg.lora.vision = False
    with pytest.raises(ValueError, match="matched no linear layer"):
        lora_target_modules(model, cfg)


def test_lora_with_checkpointing_gets_gradients_on_adapters_only(tiny_model_dir, tmp_path):
    path = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, path)
    cfg = ModelConfig(
        path=str(path),
        freeze_vision=True,
        gradient_checkpointing=True,
        lora=LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0),
    )
    model, processor = load_model_and_processor(cfg, for_training=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ".visual." not in n for n in trainable)
    batch = processor.tokenizer(["<think>a</think><answer>B</answer>"], return_tensors="pt")
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_lora_without_freeze_trains_the_vision_tower_in_full(tiny_model_dir):
    cfg = ModelConfig(path=str(tiny_model_dir), lora=LoraConfig(enabled=True, r=2))
    model, _ = load_model_and_processor(cfg, for_training=True)
    vision = get_adapter(model).vision_tower(model)
    assert all(p.requires_grad for p in vision.parameters())
    lm = get_adapter(model).language_model(model)
    assert not any(p.requires_grad for n, p in lm.named_parameters() if "lora_" not in n)


@pytest.mark.parametrize("lora", [False, True])
def test_a_model_built_without_weights_is_the_same_model_on_the_meta_device(tiny_model_dir, lora):
    """What the ranks other than 0 build: every tensor on meta, names, shapes, dtypes, trainable flags
    and generation settings as ``from_pretrained`` gives them."""
    cfg = ModelConfig(path=str(tiny_model_dir), freeze_vision=True, lora=LoraConfig(enabled=lora))
    real, _ = load_model_and_processor(cfg, for_training=True)
    meta, _ = load_model_and_processor(cfg, for_training=True, weights=False)
    assert all(t.is_meta for t in [*meta.parameters(), *meta.buffers()])
    described = [
        {n: (tuple(p.shape), p.dtype, p.requires_grad) for n, p in m.named_parameters()} for m in (real, meta)
    ]
    assert described[0] == described[1]
    assert {n: b.shape for n, b in real.named_buffers()} == {n: b.shape for n, b in meta.named_buffers()}
    assert meta.generation_config.to_dict() == real.generation_config.to_dict()
    assert meta.config.to_dict() == real.config.to_dict()
