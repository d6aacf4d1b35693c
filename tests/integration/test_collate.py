"""Mixed image + video batches through the real processor and a tiny Qwen2.5-VL forward pass."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from videor1.config import MediaConfig
from videor1.data.collate import IGNORE_INDEX, collate
from videor1.data.media import load_image, load_video
from videor1.models.adapters import get_adapter
from videor1.models.known import QWEN2_5_VL_GEOMETRY as QWEN25
from videor1.types import Sample


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def adapter(tiny_model_dir):
    return get_adapter(tiny_model_dir)


@pytest.fixture(scope="module")
def mixed(real_clips, tmp_path_factory):
    """2 images + 2 real videos of different lengths (16 and 8 frames), small budgets."""
    root = tmp_path_factory.mktemp("images")
    images = []
    for k, size in enumerate([(90, 60), (40, 120)]):
        path = root / f"im{k}.png"
        Image.new("RGB", size, (40 * k, 100, 200)).save(path)
        images.append(
            load_image(path, MediaConfig(image_min_pixels=3136, image_max_pixels=4 * 3136), geometry=QWEN25)
        )
    small = MediaConfig(video_min_pixels=3136, video_max_pixels=3136)
    videos = [load_video(real_clips[name], small, geometry=QWEN25) for name in ("bikes", "carphone_pristine")]
    samples = [
        Sample(
            1, "What colour?", "image", "free-form", [], "<answer>blue</answer>", "./im0.png", source="t[0]"
        ),
        Sample(
            2,
            "Which moves first? ",
            "video",
            "multiple choice",
            ["A. bike", "B. car"],
            "<answer>A</answer>",
            "./bikes.mp4",
            source="t[1]",
        ),
        Sample(3, "How many?", "image", "numerical", [], "<answer>3</answer>", "./im1.png", source="t[2]"),
        Sample(4, "Read it.", "video", "OCR", [], "<answer>hello</answer>", "./carphone.mp4", source="t[3]"),
    ]
    return samples, [images[0], videos[0], images[1], videos[1]]


def placeholder_counts(batch, processor):
    tok = processor.tokenizer
    image_id, video_id = (
        tok.convert_tokens_to_ids("<|image_pad|>"),
        tok.convert_tokens_to_ids("<|video_pad|>"),
    )
    ids = batch["input_ids"]
    return (ids == image_id).sum(1).tolist(), (ids == video_id).sum(1).tolist()


def test_mixed_batch_grids_tokens_and_forward(processor, adapter, mixed, tiny_model_dir):
    from transformers import AutoModelForImageTextToText

    samples, media = mixed
    batch = collate(samples, media, processor, adapter=adapter)
    # no resizing or re-sampling by the processor: grid = (T/2, H/14, W/14)
    v16, v8 = media[1], media[3]
    assert v16.num_frames == 16 and v8.num_frames == 8
    assert batch["video_grid_thw"].tolist() == [
        [8, v16.frames.shape[2] // 14, v16.frames.shape[3] // 14],
        [4, v8.frames.shape[2] // 14, v8.frames.shape[3] // 14],
    ]
    assert batch["image_grid_thw"].tolist() == [
        [1, m.pixels.shape[1] // 14, m.pixels.shape[2] // 14] for m in (media[0], media[2])
    ]
    # real sampling rates: bikes 16 / 250 × 25 = 1.6 fps → 1.25 s per temporal patch; carphone 8/120 × 29.97
    assert batch["second_per_grid_ts"].tolist() == pytest.approx([2 / 1.6, 2 / (8 / 120 * 30000 / 1001)])
    # placeholders per row = prod(grid) / merge² for that row's media, nothing else
    image_tokens, video_tokens = placeholder_counts(batch, processor)
    image_sizes = [int(g.prod()) // 4 for g in batch["image_grid_thw"]]
    video_sizes = [int(g.prod()) // 4 for g in batch["video_grid_thw"]]
    assert image_tokens == [image_sizes[0], 0, image_sizes[1], 0]
    assert video_tokens == [0, video_sizes[0], 0, video_sizes[1]]
    # left padding for generation: every row ends on the prompt's last token
    mask = batch["attention_mask"]
    assert mask[:, -1].tolist() == [1, 1, 1, 1] and mask[:, 0].sum() < 4
    assert "labels" not in batch

    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir)).eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.logits).all()


def test_sft_labels_cover_only_the_assistant_target(processor, adapter, mixed):
    samples, media = mixed
    targets = [
        "<think>it is blue</think>\n<answer>blue</answer>",
        "<think>x</think>\n<answer>A</answer>",
        "<think>three</think>\n<answer>3</answer>",
        "<think>read</think>\n<answer>hello</answer>",
    ]
    batch = collate(
        samples,
        media,
        processor,
        targets=targets,
        system_prompt="You are a helpful assistant",
        adapter=adapter,
    )
    tok = processor.tokenizer
    labels, ids, mask = batch["labels"], batch["input_ids"], batch["attention_mask"]
    assert mask[:, 0].tolist() == [1, 1, 1, 1]  # right padding for training
    end_id = tok.convert_tokens_to_ids("<|im_end|>")
    for row, target in enumerate(targets):
        kept = labels[row][labels[row] != IGNORE_INDEX]
        assert tok.decode(kept) == target + "<|im_end|>"
        assert kept[-1].item() == end_id
        # the labelled tokens are one contiguous run ending just before the final "\n"
        positions = (labels[row] != IGNORE_INDEX).nonzero().flatten()
        n = int(mask[row].sum())
        assert positions.tolist() == list(range(positions[0].item(), n - 1))
        assert torch.equal(ids[row, positions], kept)
    assert (labels[mask == 0] == IGNORE_INDEX).all()
    # no visual placeholder or prompt token carries a label
    image_id, video_id = (
        tok.convert_tokens_to_ids("<|image_pad|>"),
        tok.convert_tokens_to_ids("<|video_pad|>"),
    )
    assert not ((labels == image_id) | (labels == video_id)).any()


def test_errors_name_the_sample(processor, adapter, mixed):
    samples, media = mixed
    with pytest.raises(
        ValueError, match=r"batch row 0 \(t\[1\], problem_id=2\): \d+ tokens exceed max_length=50"
    ):
        collate(samples[1:2], media[1:2], processor, max_length=50, adapter=adapter)
    with pytest.raises(
        ValueError, match=r"batch row 0 \(t\[0\].*data_type 'image' but the media item is a VideoClip"
    ):
        collate(samples[:1], media[1:2], processor, adapter=adapter)
    with pytest.raises(ValueError, match="reserved chat tokens"):
        collate(samples[:1], media[:1], processor, targets=["<answer>x</answer><|im_end|>"], adapter=adapter)


def test_adapter_video_kwargs_give_the_processor_batch_at_the_real_rate(processor, adapter, mixed):
    # the processor told only each clip's frames and real sampling rate gives the same batch
    from videor1.data.collate import prompt_texts

    samples, media = mixed
    clips = [m for m in media if hasattr(m, "frames")]
    rates = [
        {"total_num_frames": len(c.frames), "fps": c.sample_fps, "frames_indices": list(range(len(c.frames)))}
        for c in clips
    ]
    images = [m.pixels for m in media if hasattr(m, "pixels")]
    videos = {"videos": [c.frames for c in clips], "video_metadata": rates, "do_sample_frames": False}
    plain = processor(
        text=prompt_texts(samples, processor), images=images, **videos, do_resize=False, padding=True,
        padding_side="left", return_tensors="pt",
    )  # fmt: skip
    via_adapter = collate(samples, media, processor, adapter=adapter)
    assert torch.equal(plain["input_ids"], via_adapter["input_ids"])
    assert torch.equal(plain["pixel_values_videos"], via_adapter["pixel_values_videos"])
    assert torch.allclose(plain["second_per_grid_ts"], via_adapter["second_per_grid_ts"])


def test_media_sized_for_another_model_are_refused(processor, mixed, tiny_qwen3_dir):
    # sized for Qwen2.5-VL (multiples of 28), not for a Qwen3-VL model's 32 px tokens
    samples, media = mixed
    with pytest.raises(ValueError, match=r"batch row 0 \(t\[0\].*is not a multiple of 32"):
        collate(samples[:1], media[:1], processor, adapter=get_adapter(tiny_qwen3_dir))
