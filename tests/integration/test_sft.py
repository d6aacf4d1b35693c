"""SFT end to end on CPU: tiny Qwen2.5-VL, procedural CoT data with images and videos mixed.

Checks the issue's "done when": trainable parameters change (a frozen ViT does not), loss falls on a
repeated batch, checkpoints reload with plain transformers, resume reproduces an uninterrupted run,
and a 2-process torchrun (gloo) run writes one checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videor1.config import Config, DataConfig, MediaConfig, ModelConfig, TrainConfig, load_config, save_config
from videor1.train.sharded import read_sharded
from videor1.utils.rundir import read_metrics

SMALL_MEDIA = MediaConfig(
    fps=2.0,
    min_frames=4,
    max_frames=8,
    video_min_pixels=56 * 56,
    video_max_pixels=112 * 112,
    image_min_pixels=56 * 56,
    image_max_pixels=112 * 112,
)


def make_cfg(out: Path, model_dir: Path, data_dir: Path, **train) -> Config:
    settings = dict(
        output_dir=str(out),
        per_device_batch_size=2,
        gradient_accumulation_steps=1,
        max_steps=2,
        lr=1e-3,
        scheduler="constant",
        max_seq_len=4096,
        seed=0,
    )
    settings.update(train)
    return Config(
        model=ModelConfig(path=str(model_dir)),
        data=DataConfig(
            train_file=str(data_dir / "train_cot.json"), media_root=str(data_dir), media=SMALL_MEDIA
        ),
        train=TrainConfig(**settings),
    )


def model_weights(path: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=torch.float32)
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def is_vision(name: str) -> bool:
    return ".visual." in f".{name}"


@pytest.fixture(scope="module")
def initial_weights(tiny_model_dir) -> dict[str, torch.Tensor]:
    return model_weights(tiny_model_dir)


@pytest.fixture(scope="module")
def image_and_video(tiny_model_dir, synth_dir):
    """The tiny model's processor and one image and one video CoT record with their media."""
    from transformers import AutoProcessor

    from videor1.data.media import load_media
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter

    processor = AutoProcessor.from_pretrained(str(tiny_model_dir))
    geometry = get_adapter(tiny_model_dir).geometry
    samples = load_records(synth_dir / "train_cot.json")
    pair = [
        next(s for s in samples if s.data_type == "image"),
        next(s for s in samples if s.data_type == "video"),
    ]
    return processor, [(s, load_media(s, synth_dir, SMALL_MEDIA, geometry=geometry)) for s in pair]


def test_assistant_only_labels_on_real_processor_output(tiny_model_dir, synth_dir, image_and_video):
    from videor1.data.prompts import sft_target
    from videor1.models.adapters import get_adapter
    from videor1.train.sft import SFTCollator

    processor, items = image_and_video
    pair = [s for s, _ in items]
    cfg = make_cfg(Path("unused"), tiny_model_dir, synth_dir)
    cfg.sft.system_prompt = "You are a helpful assistant"
    out = SFTCollator(processor, cfg, get_adapter(tiny_model_dir))(items)
    inputs = out["inputs"]
    labels, ids = inputs["labels"], inputs["input_ids"]
    assert "pixel_values" in inputs and "pixel_values_videos" in inputs  # one image, one video
    tok = processor.tokenizer
    vision_ids = {tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")}
    for row, sample in enumerate(pair):
        kept = labels[row] != -100
        assert torch.equal(labels[row][kept], ids[row][kept])
        assert not any(int(i) in vision_ids for i in ids[row][kept])
        text = tok.decode(ids[row][kept])
        target = sft_target(sample)
        assert text == target + "<|im_end|>"
        # everything before the target (system, user, vision placeholders) is masked
        first = int(kept.nonzero()[0])
        prompt = tok.decode(ids[row][:first])
        assert "You are a helpful assistant" in prompt and prompt.rstrip().endswith("assistant")


def test_train_changes_trainable_weights_only_and_reloads(
    tmp_path, tiny_model_dir, synth_dir, initial_weights
):
    from transformers import AutoProcessor

    from videor1.train.sft import train

    cfg = make_cfg(tmp_path / "run", tiny_model_dir, synth_dir, max_steps=2)
    cfg.model.freeze_vision = True
    last = train(cfg)
    assert last.name == "step-00000002"
    trained = model_weights(last)  # plain transformers Auto class
    AutoProcessor.from_pretrained(str(last))
    assert trained.keys() == initial_weights.keys()
    for name, before in initial_weights.items():
        if is_vision(name):
            assert torch.equal(trained[name], before), f"frozen {name} changed"
        else:
            assert not torch.equal(trained[name], before), f"trainable {name} did not change"
    saved = load_config(last / "config.yaml")
    assert saved.data.media == SMALL_MEDIA  # media budgets travel with the checkpoint
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "peak_memory_mb"):
        assert all(r[key] is not None and r[key] > 0 for r in rows), key
    assert all(r["images"] + r["videos"] == 2 for r in rows)


def test_loss_falls_on_a_repeated_batch(tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.sft import train

    # Two records and a global batch of two: every step sees the same batch.
    cfg = make_cfg(tmp_path / "run", tiny_model_dir, synth_dir, max_steps=6, lr=1e-3)
    cfg.data.max_samples = 2
    train(cfg)
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert len(losses) == 6
    assert losses[-1] < 0.85 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_resume_reproduces_an_uninterrupted_run(tmp_path, tiny_model_dir, synth_dir, lora):
    from videor1.train.sft import train

    # 2k = 4 steps, accumulation 2, cosine with warmup: every piece of state matters. LoRA adds
    # dropout (0.05), so the restored RNG state matters too.
    shape = dict(max_steps=4, gradient_accumulation_steps=2, scheduler="cosine", warmup_steps=1, lr=1e-3)
    whole = make_cfg(tmp_path / "whole", tiny_model_dir, synth_dir, **shape)
    whole.model.lora.enabled = lora
    end_whole = train(whole)

    split = make_cfg(tmp_path / "split", tiny_model_dir, synth_dir, **shape)
    split.model.lora.enabled = lora
    stopped = train(split, stop_at_step=2)
    assert stopped.name == "step-00000002"
    assert json.loads((stopped / "trainer_state.json").read_text())["sampler"]["next_step"] == 2
    end_split = train(split, resume="auto")
    assert end_split.name == "step-00000004"

    a = read_metrics(tmp_path / "whole" / "metrics.jsonl")
    b = read_metrics(tmp_path / "split" / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5, abs=1e-6)
        assert rb["lr"] == pytest.approx(ra["lr"], rel=1e-9)
    if lora:  # the fp32 masters
        wa, wb = read_sharded(end_whole / "masters"), read_sharded(end_split / "masters")
    else:
        wa, wb = (
            load_file(str(end_whole / "model.safetensors")),
            load_file(str(end_split / "model.safetensors")),
        )
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)
    # the vision tower trained too here (freeze_vision is off; with LoRA it trains in full)
    if lora:
        assert any(is_vision(k) and "lora_" not in k for k in wa)
    else:
        initial = load_file(str(next(tiny_model_dir.glob("*.safetensors"))))
        assert any(not torch.equal(wa[k], initial[k]) for k in wa if is_vision(k))


def test_lora_checkpoint_has_adapter_and_merged_model(tmp_path, tiny_model_dir, synth_dir, initial_weights):
    from videor1.train.sft import train

    cfg = make_cfg(tmp_path / "run", tiny_model_dir, synth_dir, max_steps=1)
    cfg.model.lora.enabled = True
    cfg.model.freeze_vision = True
    last = train(cfg)
    assert (last / "adapter_config.json").is_file() and (last / "masters" / ".metadata").is_file()
    trainable = read_sharded(last / "masters")
    assert trainable and all("lora_" in k for k in trainable)
    merged = model_weights(last / "merged")  # plain transformers loads the merged model
    changed = [k for k in initial_weights if not torch.equal(merged[k], initial_weights[k])]
    assert changed and all(not is_vision(k) for k in changed)
    assert any(k.endswith("q_proj.weight") for k in changed)
    # the merge equals peft's own merge_and_unload of the saved adapter
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    reference = PeftModel.from_pretrained(base, str(last)).merge_and_unload()
    for name, param in reference.named_parameters():
        torch.testing.assert_close(merged[name], param.detach(), rtol=1e-5, atol=1e-6)


def test_sample_longer_than_max_seq_len_is_an_error(tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.sft import train

    cfg = make_cfg(tmp_path / "run", tiny_model_dir, synth_dir, max_seq_len=32)
    with pytest.raises(ValueError, match=r"train_cot\.json\[\d+\].*max_length=32"):
        train(cfg)


def test_torchrun_two_processes_write_one_checkpoint(tmp_path, tiny_model_dir, synth_dir, torchrun_videor1):
    # accumulation 2: the first micro-batch of each step skips DDP's all-reduce (no_sync)
    cfg = make_cfg(
        tmp_path / "run",
        tiny_model_dir,
        synth_dir,
        max_steps=2,
        per_device_batch_size=1,
        gradient_accumulation_steps=2,
    )
    config = tmp_path / "sft.yaml"
    save_config(cfg, config)
    proc = torchrun_videor1("sft", config)
    assert proc.returncode == 0, proc.stderr[-4000:]
    checkpoints = sorted((tmp_path / "run" / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["step-00000002"]
    ckpt = checkpoints[0]
    assert sorted(p.name for p in (ckpt / "rng").iterdir()) == ["rank-00000.pt", "rank-00001.pt"]
    assert json.loads((ckpt / "trainer_state.json").read_text())["world_size"] == 2
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]  # rank 0 alone writes
    assert all(r["images"] + r["videos"] == 4 for r in rows)  # 2 ranks x 2 micro-batches, reduced
    model_weights(ckpt)


@pytest.mark.slow
def test_fsdp2_two_processes_resume_matches_uninterrupted(
    tmp_path, tiny_model_dir, synth_dir, torchrun_videor1
):
    """FSDP2 (fully_shard, gloo on CPU): HF weights gathered from the shards, fp32 masters and AdamW
    state written and read per rank (DCP), exact resume."""

    def launch(name: str, *extra: str) -> None:
        cfg = make_cfg(
            tmp_path / name,
            tiny_model_dir,
            synth_dir,
            max_steps=4,
            per_device_batch_size=1,
            distributed="fsdp2",
        )
        cfg.model.dtype = "bfloat16"  # the HF files are rounded: resuming needs the sharded masters
        config = tmp_path / f"{name}.yaml"
        save_config(cfg, config)
        proc = torchrun_videor1("sft", config, *extra)
        assert proc.returncode == 0, proc.stderr[-4000:]

    launch("whole")
    launch("split", "--stop-at-step", "2")
    launch("split", "--resume", "auto")
    a = [r["loss"] for r in read_metrics(tmp_path / "whole" / "metrics.jsonl")]
    b = [r["loss"] for r in read_metrics(tmp_path / "split" / "metrics.jsonl")]
    assert len(a) == 4 and b == pytest.approx(a, rel=1e-5)
    end = "checkpoints/step-00000004"
    wa = load_file(str(tmp_path / "whole" / end / "model.safetensors"))
    wb = load_file(str(tmp_path / "split" / end / "model.safetensors"))
    initial = model_weights(tiny_model_dir)
    assert wa.keys() == wb.keys() and len(wa) == len(initial)
    assert all(w.dtype == torch.bfloat16 for w in wa.values() if w.is_floating_point())
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)
    for part in ("masters", "optimizer"):  # each rank wrote its own shard
        names = sorted(p.name for p in (tmp_path / "split" / end / part).glob("*.distcp"))
        assert names == ["__0_0.distcp", "__1_0.distcp"], (part, names)
    ma, mb = (
        read_sharded(tmp_path / "whole" / end / "masters"),
        read_sharded(tmp_path / "split" / end / "masters"),
    )
    exported = model_weights(tmp_path / "whole" / end)  # by parameter name, like the masters
    assert ma.keys() == mb.keys() == exported.keys() and all(m.dtype == torch.float32 for m in ma.values())
    for k in ma:
        torch.testing.assert_close(mb[k], ma[k], rtol=1e-5, atol=1e-6)
        assert torch.equal(exported[k], ma[k].to(torch.bfloat16).float()), k  # the same weights, rounded


def test_target_token_loss_equals_the_full_logits_loss(tiny_model_dir):
    """Logits only at target-predicting positions give the same loss as projecting every position."""
    import torch.nn.functional as F
    from transformers import AutoModelForImageTextToText

    from videor1.models.positions import rope_positions
    from videor1.train.sft import target_token_loss

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    ids = torch.randint(10, 300, (3, 40), generator=torch.Generator().manual_seed(0))
    labels = torch.full_like(ids, -100)
    labels[0, 30:38], labels[1, 10:20], labels[2, 35:40] = ids[0, 30:38], ids[1, 10:20], ids[2, 35:40]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    inputs["position_ids"] = rope_positions(model, inputs).position_ids
    loss, n = target_token_loss(model, inputs)
    logits = model(input_ids=ids, attention_mask=inputs["attention_mask"]).logits  # [3, 40, V]
    shifted = labels[:, 1:]
    mask = shifted != -100
    expected = F.cross_entropy(logits[:, :-1][mask].float(), shifted[mask], reduction="sum")
    # targets at 30..37, 10..19, 35..39 are predicted from positions 29..36, 9..18, 34..38
    assert n == 8 + 10 + 5 == int(mask.sum())
    torch.testing.assert_close(loss, expected)
