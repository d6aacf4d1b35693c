"""Tiny models of every family: build, save, reload with plain transformers, run image and video.

Only transformers' Auto classes touch the saved directory after ``build_tiny_model``, so these tests
prove that the checkpoints are self-contained (no project code needed to load and run them).
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from videor1.config import TinyModelConfig
from videor1.models.adapters import get_adapter
from videor1.models.tiny import build_tiny_model
from videor1.types import VideoClip

FAMILIES = ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"]
NEW_TOKENS = 3


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request, tmp_path_factory):
    family = request.param
    if family == "qwen2.5-vl":
        out = request.getfixturevalue("tiny_model_dir")
    else:
        out = tmp_path_factory.mktemp(f"tiny-{family}")
        build_tiny_model(TinyModelConfig(family=family, tokenizer="small"), out)
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    return family, out, model, processor


def _messages(kind: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": "What moves first?"}]}]


def _generate(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model.generate(**batch, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)


def test_saved_config_matches_tokenizer_and_family(loaded):
    family, out, model, processor = loaded
    tok = processor.tokenizer
    cfg = model.config
    expected_class = {
        "qwen2-vl": "Qwen2VLForConditionalGeneration",
        "qwen2.5-vl": "Qwen2_5_VLForConditionalGeneration",
        "qwen3-vl": "Qwen3VLForConditionalGeneration",
    }[family]
    assert type(model).__name__ == expected_class
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert cfg.text_config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert cfg.text_config.pad_token_id == tok.pad_token_id == tok.convert_tokens_to_ids("<|endoftext|>")
    assert cfg.text_config.vocab_size == len(tok)
    assert cfg.vision_config.temporal_patch_size == 2
    assert cfg.vision_config.spatial_merge_size == 2
    assert cfg.vision_config.patch_size == (16 if family == "qwen3-vl" else 14)
    assert processor.video_processor.patch_size == cfg.vision_config.patch_size
    assert processor.image_processor.patch_size == cfg.vision_config.patch_size
    meta = json.loads((out / "videor1_tiny.json").read_text())
    assert meta["tiny"]["family"] == family


def test_image_forward_and_generate(loaded):
    family, _, model, processor = loaded
    adapter = get_adapter(model)
    side = (
        2 * adapter.geometry.pixel_factor
    )  # 56 (Qwen2/2.5-VL) or 64 (Qwen3-VL) px: a 2x2 grid of visual tokens
    image = torch.randint(
        0, 256, (3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    text = processor.apply_chat_template(_messages("image"), add_generation_prompt=True)
    batch = processor(text=[text], images=[image], return_tensors="pt")

    # [1, 3] grid (t, h, w) in patches: 1 temporal patch (an image is repeated to 2 frames), 4 x 4 patches
    assert batch["image_grid_thw"].tolist() == [[1, 4, 4]]
    ids = batch["input_ids"][0]
    assert int((ids == model.config.image_token_id).sum()) == 4 == adapter.num_visual_tokens([1, 4, 4])
    assert int((ids == model.config.vision_start_token_id).sum()) == 1
    patch_dim = 3 * 2 * adapter.geometry.patch_size**2
    assert tuple(batch["pixel_values"].shape) == (16, patch_dim)  # [t*h*w patches, C*T*P*P]

    with torch.no_grad():
        logits = model(**batch).logits
    assert tuple(logits.shape) == (1, ids.numel(), model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()
    generated = _generate(model, batch)
    assert tuple(generated.shape) == (1, ids.numel() + NEW_TOKENS)
    assert torch.equal(generated[0, : ids.numel()], ids)


def test_sixteen_frame_video_forward_and_generate(loaded):
    family, _, model, processor = loaded
    adapter = get_adapter(model)
    side = 2 * adapter.geometry.pixel_factor
    frames = torch.randint(
        0, 256, (16, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    clip = VideoClip(frames=frames, frame_indices=list(range(0, 32, 2)), sample_fps=4.0, duration=4.0)
    text = processor.apply_chat_template(_messages("video"), add_generation_prompt=True)
    batch = processor(
        text=[text], videos=[clip.frames], return_tensors="pt", **adapter.video_inputs_kwargs(clip)
    )

    # 16 frames / temporal patch 2 = 8 temporal patches, each a 4 x 4 patch grid -> 8 * 16 / 2**2 = 32 tokens
    assert batch["video_grid_thw"].tolist() == [[8, 4, 4]]
    ids = batch["input_ids"][0]
    n_video = int((ids == model.config.video_token_id).sum())
    assert n_video == 32 == adapter.num_visual_tokens(batch["video_grid_thw"][0])
    assert tuple(batch["pixel_values_videos"].shape) == (8 * 16, 3 * 2 * adapter.geometry.patch_size**2)
    starts = int((ids == model.config.vision_start_token_id).sum())
    ends = int((ids == model.config.vision_end_token_id).sum())
    if family == "qwen3-vl":
        # one <t seconds><|vision_start|> 4 pads <|vision_end|> block per temporal patch
        assert starts == ends == 8
        decoded = processor.tokenizer.decode(ids)
        # patch k holds frames 2k, 2k+1 at 4 fps: mean time (2k + 0.5) / 4 s
        for t in adapter.frame_timestamps(clip):
            assert f"<{t:.1f} seconds><|vision_start|>" in decoded
        assert adapter.frame_timestamps(clip)[:2] == [0.125, 0.625]
    else:
        assert starts == ends == 1
    if family == "qwen2.5-vl":
        # temporal_patch_size / sample_fps = 2 / 4.0
        assert batch["second_per_grid_ts"].tolist() == [0.5]
    else:
        assert "second_per_grid_ts" not in batch

    with torch.no_grad():
        logits = model(**batch).logits
    assert tuple(logits.shape) == (1, ids.numel(), model.config.text_config.vocab_size)
    generated = _generate(model, batch)
    assert tuple(generated.shape) == (1, ids.numel() + NEW_TOKENS)


def test_vision_tower_encodes_pixels_into_merged_tokens(loaded):
    family, _, model, processor = loaded
    adapter = get_adapter(model)
    tower = adapter.vision_tower(model)
    assert tower is model.model.visual
    side = 2 * adapter.geometry.pixel_factor
    frames = torch.zeros(4, 3, side, side, dtype=torch.uint8)
    clip = VideoClip(frames=frames, frame_indices=[0, 1, 2, 3], sample_fps=2.0, duration=2.0)
    kwargs = adapter.video_inputs_kwargs(clip)
    batch = processor.video_processor(videos=[clip.frames], return_tensors="pt", **kwargs)
    with torch.no_grad():
        out = tower(batch["pixel_values_videos"], grid_thw=batch["video_grid_thw"])
    merged = out.pooler_output
    # 2 temporal patches x 4 x 4 patches / merge 2**2 = 8 tokens of the language model's width
    assert tuple(merged.shape) == (8, model.config.text_config.hidden_size)


def test_frames_already_at_multiples_of_the_token_size_pass_through_unchanged(loaded):
    # videor1.data.media resizes frames itself (MediaConfig budgets); the processor must not resize again.
    _, _, model, processor = loaded
    adapter = get_adapter(model)
    f = adapter.geometry.pixel_factor
    frames = torch.randint(
        0, 256, (2, 3, 2 * f, 3 * f), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)
    )
    kwargs = {"return_tensors": "pt", "do_sample_frames": False}
    resized = processor.video_processor(videos=[frames], **kwargs)
    untouched = processor.video_processor(videos=[frames], do_resize=False, **kwargs)
    assert resized["video_grid_thw"].tolist() == [[1, 4, 6]]
    assert torch.allclose(resized["pixel_values_videos"], untouched["pixel_values_videos"], atol=1e-6)
    image = processor.image_processor(images=[frames[0]], return_tensors="pt")
    assert image["image_grid_thw"].tolist() == [[1, 4, 6]]


def test_left_padded_batch_generates_what_each_prompt_generates_alone(loaded):
    # Two clips of different length, size and frame rate in one left-padded batch: mRoPE positions and
    # per-video timing must be computed per row, so greedy tokens equal the unbatched ones.
    _, _, model, processor = loaded
    adapter = get_adapter(model)
    f = adapter.geometry.pixel_factor
    g = torch.Generator().manual_seed(3)
    clips = [
        VideoClip(
            torch.randint(0, 256, (16, 3, 2 * f, 2 * f), dtype=torch.uint8, generator=g),
            list(range(16)),
            2.0,
            8.0,
        ),
        VideoClip(
            torch.randint(0, 256, (8, 3, 2 * f, 3 * f), dtype=torch.uint8, generator=g),
            list(range(8)),
            4.0,
            2.0,
        ),
    ]
    questions = ["What moves first?", "Which colour appears last in the whole clip?"]
    texts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}],
            add_generation_prompt=True,
        )
        for q in questions
    ]

    def new_tokens(rows: list[int]) -> list[list[int]]:
        batch = processor(
            text=[texts[i] for i in rows],
            videos=[clips[i].frames for i in rows],
            padding=True,
            padding_side="left",
            return_tensors="pt",
            **adapter.video_inputs_kwargs([clips[i] for i in rows]),
        )
        mask = batch["attention_mask"]
        assert bool(mask[:, -1].all())  # left padded: every row ends with a real token
        if len(rows) == 2:
            assert not bool(mask[:, 0].all())  # and the shorter prompt starts with padding
        return _generate(model, batch)[:, batch["input_ids"].shape[1] :].tolist()

    together = new_tokens([0, 1])
    assert processor.tokenizer.padding_side == "right"  # the call's padding_side did not stick
    assert together == new_tokens([0]) + new_tokens([1])
