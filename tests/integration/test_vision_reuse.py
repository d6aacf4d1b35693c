"""Encode each video once: the shuffled group's encodings are the ordered ones permuted by patch."""

from __future__ import annotations

import pytest
import torch

from videor1.data.media import load_video, shuffle_frames
from videor1.rollout.vision import (
    VisionCounter,
    core_model,
    frame_order_to_patch_order,
    permute_video_features,
)


@pytest.fixture(scope="module")
def model_and_processor(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    return model, AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def clip(real_clips):
    return load_video(real_clips["bigbuckbunny"], nframes=8, min_pixels=16 * 784, max_pixels=24 * 784)


def _encode(model, processor, frames):
    inputs = processor.video_processor(videos=[frames], return_tensors="pt")
    with torch.no_grad():
        out = core_model(model).get_video_features(
            inputs["pixel_values_videos"], inputs["video_grid_thw"], return_dict=True
        )
    return inputs, out.pooler_output[0]


def test_temporal_patch_shuffle_reuses_ordered_encodings_exactly(model_and_processor, clip):
    model, processor = model_and_processor
    shuffled, perm = shuffle_frames(clip, torch.Generator().manual_seed(3), unit="temporal_patch")
    ordered_inputs, ordered = _encode(model, processor, clip.frames)
    shuffled_inputs, fresh = _encode(model, processor, shuffled.frames)

    # the shuffled model input really differs from the ordered one (the reference's vLLM path fed
    # the ordered video to its "shuffled" group); same shape, same grid
    assert shuffled_inputs["pixel_values_videos"].shape == ordered_inputs["pixel_values_videos"].shape
    assert not torch.equal(shuffled_inputs["pixel_values_videos"], ordered_inputs["pixel_values_videos"])
    assert not torch.allclose(fresh, ordered)

    grid = ordered_inputs["video_grid_thw"][0]
    reused = permute_video_features(ordered, grid, frame_order_to_patch_order(perm))
    torch.testing.assert_close(reused, fresh, atol=1e-5, rtol=1e-5)


def test_frame_shuffle_cannot_reuse():
    # frames 0 and 1 swapped inside patch 0, or frame 1 moved next to frame 2: no patch order exists
    with pytest.raises(ValueError, match="splits temporal patches"):
        frame_order_to_patch_order([1, 0, 2, 3])
    with pytest.raises(ValueError, match="splits temporal patches"):
        frame_order_to_patch_order([0, 2, 1, 3])
    assert frame_order_to_patch_order([4, 5, 0, 1, 2, 3]) == [2, 0, 1]


def test_permute_validates_shapes():
    feats = torch.arange(12.0).view(6, 2)  # 6 tokens, but grid t=3, h=2, w=2 has 3 (one per patch)
    with pytest.raises(ValueError, match="implies"):
        permute_video_features(feats, (3, 2, 2), [2, 0, 1])
    feats = torch.arange(6.0).view(3, 2)  # t=3 patches, 1 token each
    torch.testing.assert_close(
        permute_video_features(feats, (3, 2, 2), [2, 0, 1]),
        torch.tensor([[4.0, 5.0], [0.0, 1.0], [2.0, 3.0]]),
    )
    with pytest.raises(ValueError, match="not a permutation"):
        permute_video_features(feats, (3, 2, 2), [0, 0, 1])


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
