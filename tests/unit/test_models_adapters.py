"""Family adapters: detection from config, video timing kwargs, token counts (no model weights needed)."""

from __future__ import annotations

import json

import pytest
import torch

from videor1.models.adapters import UnsupportedModelError, get_adapter
from videor1.types import VideoClip


def _config(model_type: str, patch: int = 14) -> dict:
    return {
        "model_type": model_type,
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "vision_config": {"patch_size": patch, "temporal_patch_size": 2, "spatial_merge_size": 2},
    }


def _clip(n: int = 8, fps: float = 2.0, side: int = 56) -> VideoClip:
    return VideoClip(
        frames=torch.zeros(n, 3, side, side, dtype=torch.uint8),
        frame_indices=list(range(n)),
        sample_fps=fps,
        duration=n / fps if fps else 0.0,
        path="clip.mp4",
    )


@pytest.mark.parametrize(
    ("model_type", "family", "patch", "factor"),
    [
        ("qwen2_vl", "qwen2-vl", 14, 28),
        ("qwen2_5_vl", "qwen2.5-vl", 14, 28),
        ("qwen3_vl", "qwen3-vl", 16, 32),
    ],
)
def test_family_detection_from_dict_and_directory(tmp_path, model_type, family, patch, factor):
    adapter = get_adapter(_config(model_type, patch))
    assert adapter.family == family
    assert adapter.geometry.pixel_factor == factor
    assert (adapter.video_token_id, adapter.vision_start_token_id) == (151656, 151652)
    (tmp_path / "config.json").write_text(json.dumps(_config(model_type, patch)))
    assert get_adapter(tmp_path) == adapter


def test_unsupported_model_type_is_named():
    with pytest.raises(UnsupportedModelError, match="'llava'"):
        get_adapter({"model_type": "llava", "vision_config": {}})


def test_missing_checkpoint_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        get_adapter(tmp_path / "nothing_here")


def test_second_per_grid_ts_only_for_qwen25():
    clip = _clip(fps=2.5)
    # temporal_patch_size / sample_fps = 2 / 2.5
    assert get_adapter(_config("qwen2_5_vl")).second_per_grid_ts(clip) == pytest.approx(0.8)
    assert get_adapter(_config("qwen2_vl")).second_per_grid_ts(clip) is None
    assert get_adapter(_config("qwen3_vl", 16)).second_per_grid_ts(clip) is None


def test_frame_timestamps_are_means_of_each_temporal_patch():
    # 6 frames at 2 fps: times 0, .5, 1, 1.5, 2, 2.5 -> patches (0,.5) (1,1.5) (2,2.5) -> .25, 1.25, 2.25
    assert get_adapter(_config("qwen3_vl", 16)).frame_timestamps(_clip(6, 2.0)) == [0.25, 1.25, 2.25]


def test_video_inputs_kwargs_carry_real_sample_rate():
    adapter = get_adapter(_config("qwen2_5_vl"))
    kwargs = adapter.video_inputs_kwargs([_clip(8, 4.0), _clip(4, 1.0, side=28)])
    assert kwargs["do_sample_frames"] is False
    first, second = kwargs["video_metadata"]
    assert (
        first["fps"] == 4.0 and first["total_num_frames"] == 8 and first["frames_indices"] == list(range(8))
    )
    assert (second["height"], second["width"], second["duration"]) == (28, 28, 4.0)


def test_video_inputs_kwargs_reject_odd_frame_counts_and_bad_fps():
    adapter = get_adapter(_config("qwen2_5_vl"))
    with pytest.raises(ValueError, match="clip.mp4: 5 frames"):
        adapter.video_inputs_kwargs(_clip(5))
    with pytest.raises(ValueError, match="clip.mp4: sample_fps must be > 0"):
        adapter.video_inputs_kwargs(_clip(4, 0.0))


def test_num_visual_tokens():
    adapter = get_adapter(_config("qwen2_5_vl"))
    # 8 temporal patches x (224/14=16) x (420/14=30) patches / 2**2 = 960 (REFERENCE §2: ~960 for 16 frames)
    assert adapter.num_visual_tokens([8, 16, 30]) == 960
