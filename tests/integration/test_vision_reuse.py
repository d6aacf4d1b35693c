"""Encode each video once: the shuffled group's encodings are the ordered ones permuted by patch,
and forwards fed reused encodings (``mm_encoder_outputs``) give the logits of a plain forward."""

from __future__ import annotations

import pytest
import torch

from videor1.config import MediaConfig
from videor1.data.collate import collate
from videor1.data.frames import shuffle_frames
from videor1.data.media import load_video
from videor1.models.adapters import core_model, get_adapter
from videor1.models.known import QWEN2_5_VL_GEOMETRY as QWEN25
from videor1.models.vision import (
    MediaFeatures,
    VisionCounter,
    encode_media,
    frame_order_to_patch_order,
    permute_video_features,
    rope_positions,
)
from videor1.types import ImageInput, Sample


@pytest.fixture(scope="module")
def model_and_processor(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    return model, AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def clip(real_clips):
    budget = MediaConfig(nframes=8, video_min_pixels=16 * 784, video_max_pixels=24 * 784)
    return load_video(real_clips["bigbuckbunny"], budget, geometry=QWEN25)


def _encode(model, processor, frames):
    inputs = processor.video_processor(videos=[frames], return_tensors="pt")
    with torch.no_grad():
        out = core_model(model).get_video_features(
            inputs["pixel_values_videos"], inputs["video_grid_thw"], return_dict=True
        )
    return inputs, out.pooler_output[0]


def test_temporal_patch_shuffle_reuses_ordered_encodings_exactly(model_and_processor, clip):
    model, processor = model_and_processor
    shuffled, perm = shuffle_frames(
        clip, torch.Generator().manual_seed(3), geometry=QWEN25, unit="temporal_patch"
    )
    ordered_inputs, ordered = _encode(model, processor, clip.frames)
    shuffled_inputs, fresh = _encode(model, processor, shuffled.frames)

    # the shuffled model input really differs from the ordered one (the reference's vLLM path fed
    # the ordered video to its "shuffled" group); same shape, same grid
    assert shuffled_inputs["pixel_values_videos"].shape == ordered_inputs["pixel_values_videos"].shape
    assert not torch.equal(shuffled_inputs["pixel_values_videos"], ordered_inputs["pixel_values_videos"])
    assert not torch.allclose(fresh, ordered)

    grid = ordered_inputs["video_grid_thw"][0]
    reused = permute_video_features(ordered, grid, frame_order_to_patch_order(perm, 2), spatial_merge_size=2)
    torch.testing.assert_close(reused, fresh, atol=1e-5, rtol=1e-5)


def test_frame_shuffle_cannot_reuse():
    # frames 0 and 1 swapped inside patch 0, or frame 1 moved next to frame 2: no patch order exists
    with pytest.raises(ValueError, match="splits temporal patches"):
        frame_order_to_patch_order([1, 0, 2, 3], 2)
    with pytest.raises(ValueError, match="splits temporal patches"):
        frame_order_to_patch_order([0, 2, 1, 3], 2)
    assert frame_order_to_patch_order([4, 5, 0, 1, 2, 3], 2) == [2, 0, 1]


def test_permute_validates_shapes():
    feats = torch.arange(12.0).view(6, 2)  # 6 tokens, but grid t=3, h=2, w=2 has 3 (one per patch)
    with pytest.raises(ValueError, match="implies"):
        permute_video_features(feats, (3, 2, 2), [2, 0, 1], spatial_merge_size=2)
    feats = torch.arange(6.0).view(3, 2)  # t=3 patches, 1 token each
    torch.testing.assert_close(
        permute_video_features(feats, (3, 2, 2), [2, 0, 1], spatial_merge_size=2),
        torch.tensor([[4.0, 5.0], [0.0, 1.0], [2.0, 3.0]]),
    )
    with pytest.raises(ValueError, match="not a permutation"):
        permute_video_features(feats, (3, 2, 2), [0, 0, 1], spatial_merge_size=2)


def test_counter_counts_video_encodes(model_and_processor, clip):
    model, processor = model_and_processor
    counter = VisionCounter().install(model)
    try:
        _encode(model, processor, clip.frames)
        _encode(model, processor, clip.frames)
    finally:
        counter.remove()
    assert (counter.calls, counter.items, counter.videos) == (2, 2, 2)
    _encode(model, processor, clip.frames)  # removed: no longer counted
    assert counter.calls == 2


# --------------------------------------------------------------------------------------------------
# Qwen3-VL: the reused encodings must carry the DeepStack features its language model adds to the
# hidden states of its first layers, sliced per media item like the merged tokens.
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen3(tiny_qwen3_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen3_dir).eval()
    return model, AutoProcessor.from_pretrained(tiny_qwen3_dir)


@pytest.fixture(scope="module")
def clip32(real_clips, tiny_qwen3_dir):
    """8 frames resized to multiples of Qwen3-VL's 32 px per visual token."""
    geometry = get_adapter(tiny_qwen3_dir).geometry
    budget = MediaConfig(nframes=8, video_min_pixels=16 * 1024, video_max_pixels=24 * 1024)
    return load_video(real_clips["bigbuckbunny"], budget, geometry=geometry)


def _collate_kinds(model, processor, kinds, clip):
    """Left-padded prompts, one per kind: a frame of ``clip`` as the image, ``clip`` as the video."""
    samples = [
        Sample(i, f"What is shown ({i})?", kind, "free-form", [], "<answer>x</answer>", f"./m{i}")
        for i, kind in enumerate(kinds)
    ]
    media = [ImageInput(pixels=clip.frames[3]) if kind == "image" else clip for kind in kinds]
    return collate(samples, media, processor, adapter=get_adapter(model))


def _plain_logits(model, batch):
    """A forward from pixels (the vision tower runs inside it), with the same explicit positions."""
    media = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw")
    with torch.no_grad():
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=rope_positions(model, batch).position_ids,
            use_cache=False,
            **{k: batch[k] for k in media if k in batch},
        ).logits


def _reused_logits(model, batch, features):
    """The rollout / RL forward: encodings passed in, positions from ``rope_positions``."""
    positions, _ = rope_positions(model, batch)
    with torch.no_grad():
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=positions,
            mm_encoder_outputs=features.as_encoder_outputs(),
            use_cache=False,
        ).logits


@pytest.mark.parametrize(
    "rows",
    [[0, 0], [1], [1, 0, 1]],
    ids=["image-repeated", "video", "mixed-repeated"],
)
def test_qwen3_reused_encodings_give_the_plain_forward_logits(qwen3, clip32, rows):
    model, processor = qwen3
    # encode one image and one video once, then re-list them per row as RL's row_features does
    encoded = _collate_kinds(model, processor, ["image", "video"], clip32)
    features = encode_media(model, encoded)
    layers = len(model.config.vision_config.deepstack_visual_indexes)
    assert [len(d) for d in features.image_deepstack + features.video_deepstack] == [layers, layers]
    for tokens, deep in zip(
        features.images + features.videos, features.image_deepstack + features.video_deepstack
    ):
        assert all(d.shape == tokens.shape for d in deep)
    reused = features.select([0 for r in rows if r == 0], [0 for r in rows if r == 1])

    batch = _collate_kinds(model, processor, [["image", "video"][r] for r in rows], clip32)
    plain = _plain_logits(model, batch)
    torch.testing.assert_close(_reused_logits(model, batch, reused), plain, atol=1e-5, rtol=1e-5)

    # the comparison sees the deepstack features: without them the logits move
    zeroed = MediaFeatures(
        images=reused.images,
        videos=reused.videos,
        image_deepstack=[tuple(torch.zeros_like(t) for t in d) for d in reused.image_deepstack],
        video_deepstack=[tuple(torch.zeros_like(t) for t in d) for d in reused.video_deepstack],
    )
    assert not torch.allclose(_reused_logits(model, batch, zeroed), plain, atol=1e-3)


def test_qwen3_temporal_patch_shuffle_reuses_tokens_and_deepstack(qwen3, clip32):
    model, processor = qwen3
    geometry = get_adapter(model).geometry
    shuffled, perm = shuffle_frames(
        clip32, torch.Generator().manual_seed(3), geometry=geometry, unit="temporal_patch"
    )
    ordered_batch = _collate_kinds(model, processor, ["video"], clip32)
    shuffled_batch = _collate_kinds(model, processor, ["video"], shuffled)
    assert torch.equal(ordered_batch["input_ids"], shuffled_batch["input_ids"])  # same timestamps text
    with torch.no_grad():
        ordered = encode_media(model, ordered_batch)
        fresh = encode_media(model, shuffled_batch)
    assert not torch.allclose(fresh.videos[0], ordered.videos[0])

    reused = ordered.permute_videos(
        ordered_batch["video_grid_thw"],
        [frame_order_to_patch_order(perm, geometry.temporal_patch_size)],
        spatial_merge_size=geometry.merge_size,
    )
    torch.testing.assert_close(reused.videos, fresh.videos, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(reused.video_deepstack, fresh.video_deepstack, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        _reused_logits(model, shuffled_batch, reused),
        _plain_logits(model, shuffled_batch),
        atol=1e-5,
        rtol=1e-5,
    )


def test_media_features_keep_each_items_deepstack_with_its_tokens():
    def item(v: float, n: int = 2) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        return torch.full((n, 3), v), (torch.full((n, 3), v + 0.1), torch.full((n, 3), v + 0.2))

    (i0, d0), (i1, d1), (v0, e0) = item(0.0), item(1.0), item(5.0, n=4)
    feats = MediaFeatures(images=[i0, i1], videos=[v0], image_deepstack=[d0, d1], video_deepstack=[e0])
    out = feats.select([1, 0, 1], [0]).as_encoder_outputs()
    assert [t[0, 0].item() for t in out["image"].pooler_output] == [1.0, 0.0, 1.0]
    # transformers' layout: deepstack_features[layer][item]
    assert [[t[0, 0].item() for t in layer] for layer in out["image"].deepstack_features] == [
        pytest.approx([1.1, 0.1, 1.1]),
        pytest.approx([1.2, 0.2, 1.2]),
    ]
    assert len(out["video"].deepstack_features) == 2

    # permuting a video's temporal patches moves its deepstack tokens the same way
    order = torch.arange(4.0)[:, None].expand(4, 3)
    clip = MediaFeatures(videos=[order], video_deepstack=[(order + 10, order + 20)])
    moved = clip.permute_videos([(4, 2, 2)], [[2, 3, 0, 1]], spatial_merge_size=2)
    assert moved.videos[0][:, 0].tolist() == [2.0, 3.0, 0.0, 1.0]
    assert [d[:, 0].tolist() for d in moved.video_deepstack[0]] == [
        [12.0, 13.0, 10.0, 11.0],
        [22.0, 23.0, 20.0, 21.0],
    ]

    both = feats.concat(moved)
    assert len(both.videos) == len(both.video_deepstack) == 2 and both.image_deepstack == [d0, d1]
    # Qwen2/2.5-VL: no deepstack, plain BaseModelOutputWithPooling as before
    plain = MediaFeatures(images=[i0]).as_encoder_outputs()["image"]
    assert type(plain).__name__ == "BaseModelOutputWithPooling"
    with pytest.raises(ValueError, match="deepstack"):
        MediaFeatures(videos=[v0]).concat(clip)
    with pytest.raises(ValueError, match="deepstack"):
        MediaFeatures(images=[i0, i1], image_deepstack=[d0])
