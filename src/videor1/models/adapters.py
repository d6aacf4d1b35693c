"""Per-family hooks: the few things that differ between Qwen2-VL, Qwen2.5-VL and Qwen3-VL.

Everything else (tokenising, the forward pass, generation) goes through transformers' Auto classes.

| | Qwen2-VL | Qwen2.5-VL | Qwen3-VL |
|---|---|---|---|
| ``config.model_type`` | ``qwen2_vl`` | ``qwen2_5_vl`` | ``qwen3_vl`` |
| pixels per visual token (patch x merge) | 14 x 2 = 28 | 14 x 2 = 28 | 16 x 2 = 32 |
| video time in mRoPE | temporal index only | ``second_per_grid_ts`` x ``tokens_per_second`` | none; ``<t seconds>`` text per temporal patch |
| vision tower (transformers 5.x) | ``model.model.visual`` | ``model.model.visual`` | ``model.model.visual`` |

Video timing. Frames arrive already sampled (``VideoClip``: ``frames``, ``sample_fps``). The
processor learns the real sampling rate from ``video_metadata`` = ``{total_num_frames: T,
fps: sample_fps, frames_indices: 0..T-1}``; from it the Qwen2.5-VL processor derives
``second_per_grid_ts = temporal_patch_size / sample_fps`` and the Qwen3-VL processor writes the
timestamp of each temporal patch (the mean of its two frames' times, counted from the first sampled
frame). This fixes the reference's train/eval mismatch (Video-R1's media rules): training and evaluation both
pass the real rate. Qwen2-VL's mRoPE has no notion of seconds, so nothing is passed for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videor1.types import VideoClip, VisionGeometry

_MODEL_TYPES = {"qwen2_vl": "qwen2-vl", "qwen2_5_vl": "qwen2.5-vl", "qwen3_vl": "qwen3-vl"}
FAMILY_OF_MODEL_TYPE: dict[str, str] = dict(_MODEL_TYPES)


class UnsupportedModelError(ValueError):
    """The checkpoint is not a Qwen2-VL, Qwen2.5-VL or Qwen3-VL model."""


@dataclass(frozen=True)
class FamilyAdapter:
    """What code outside ``models/`` needs to know about one model family."""

    family: str
    """``qwen2-vl``, ``qwen2.5-vl`` or ``qwen3-vl``."""
    model_type: str
    """transformers' ``config.model_type``."""
    geometry: VisionGeometry
    """Patch, merge and temporal patch sizes of the vision tower: what media sizes and frame counts fit."""
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    tokens_per_second: float | None = None
    """Qwen2.5-VL's mRoPE time positions per second of video (``vision_config.tokens_per_second``);
    None for the other families, or when a config dict lacks it (then video positions raise)."""

    @property
    def uses_second_per_grid_ts(self) -> bool:
        """The model's mRoPE reads ``second_per_grid_ts`` (Qwen2.5-VL only)."""
        return self.family == "qwen2.5-vl"

    def vision_tower(self, model: Any) -> Any:
        """The module that encodes pixels into visual tokens (ViT blocks and the patch merger).

        Accepts the ``...ForConditionalGeneration`` model, its inner ``...Model``, or a peft wrapper.
        """
        return core_model(model).visual

    def language_model(self, model: Any) -> Any:
        """The text decoder (embeddings and transformer blocks, without the LM head)."""
        return core_model(model).language_model

    def num_visual_tokens(self, grid_thw: Sequence[int]) -> int:
        """Placeholder tokens one image/video occupies: t * h * w / merge_size**2."""
        t, h, w = (int(x) for x in grid_thw)
        return t * h * w // self.geometry.merge_size**2

    def video_metadata(self, clip: VideoClip) -> dict[str, Any]:
        """The processor's ``video_metadata`` entry for an already sampled clip."""
        if clip.sample_fps <= 0:
            raise ValueError(f"{clip.path or 'video clip'}: sample_fps must be > 0, got {clip.sample_fps}")
        n, _, height, width = clip.frames.shape
        return {
            "total_num_frames": int(n),
            "fps": float(clip.sample_fps),
            "frames_indices": list(range(int(n))),
            "duration": n / clip.sample_fps,
            "height": int(height),
            "width": int(width),
        }

    def second_per_grid_ts(self, clip: VideoClip) -> float | None:
        """Seconds per temporal patch for Qwen2.5-VL's mRoPE; None for families that don't use it."""
        if not self.uses_second_per_grid_ts:
            return None
        return self.geometry.temporal_patch_size / clip.sample_fps

    def frame_timestamps(self, clip: VideoClip) -> list[float]:
        """Time (s) of each temporal patch as Qwen3-VL writes it: mean of its frames' times."""
        times = [i / clip.sample_fps for i in range(clip.num_frames)]
        k = self.geometry.temporal_patch_size
        return [(times[i] + times[i + k - 1]) / 2 for i in range(0, len(times) - k + 1, k)]

    def video_inputs_kwargs(self, clips: VideoClip | Sequence[VideoClip]) -> dict[str, Any]:
        """Processor keyword arguments for these clips (in prompt order), besides ``videos=``.

        ``processor(text=..., videos=[c.frames for c in clips], **adapter.video_inputs_kwargs(clips))``
        gives ``second_per_grid_ts`` (Qwen2.5-VL) or timestamp text (Qwen3-VL) from each clip's real
        ``sample_fps``, and never re-samples frames.
        """
        items = [clips] if isinstance(clips, VideoClip) else list(clips)
        tp = self.geometry.temporal_patch_size
        for clip in items:
            if clip.num_frames % tp:
                raise ValueError(
                    f"{clip.path or 'video clip'}: {clip.num_frames} frames is not a multiple of the "
                    f"temporal patch size {tp}"
                )
        return {"video_metadata": [self.video_metadata(c) for c in items], "do_sample_frames": False}


def core_model(model: Any) -> Any:
    """The ``*VLModel`` (vision tower + language model + ``get_rope_index``) inside a
    ``*ForConditionalGeneration``, its peft wrapper, or the ``*VLModel`` itself."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for candidate in (getattr(base, "model", None), base):
        if candidate is not None and hasattr(candidate, "get_rope_index") and hasattr(candidate, "visual"):
            return candidate
    raise UnsupportedModelError(
        f"{type(base).__name__} is not a Qwen-VL model (no .model with a vision tower and get_rope_index)"
    )


def _config_of(model_or_config: Any) -> Any:
    if isinstance(model_or_config, str | Path):
        path = Path(model_or_config) / "config.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found (expected a checkpoint directory)")
        return json.loads(path.read_text(encoding="utf-8"))
    return getattr(model_or_config, "config", model_or_config)


def _get(config: Any, key: str, default: Any = None) -> Any:
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)


def vision_geometry(model_or_config: Any) -> VisionGeometry:
    """The vision tower's geometry from a model, its config (object or dict) or a checkpoint directory."""
    config = _config_of(model_or_config)
    vision = _get(config, "vision_config")
    if vision is None:
        raise UnsupportedModelError(f"{_get(config, 'model_type')} config has no vision_config")
    return VisionGeometry(
        patch_size=int(_get(vision, "patch_size")),
        merge_size=int(_get(vision, "spatial_merge_size")),
        temporal_patch_size=int(_get(vision, "temporal_patch_size")),
    )


def get_adapter(model_or_config: Any) -> FamilyAdapter:
    """Adapter for a model, its config (object or dict) or a checkpoint directory."""
    config = _config_of(model_or_config)
    model_type = _get(config, "model_type")
    family = _MODEL_TYPES.get(model_type)
    if family is None:
        raise UnsupportedModelError(
            f"model_type {model_type!r} is not supported; expected one of {', '.join(_MODEL_TYPES)}"
        )
    return FamilyAdapter(
        family=family,
        model_type=model_type,
        geometry=vision_geometry(config),
        image_token_id=int(_get(config, "image_token_id")),
        video_token_id=int(_get(config, "video_token_id")),
        vision_start_token_id=int(_get(config, "vision_start_token_id")),
        vision_end_token_id=int(_get(config, "vision_end_token_id")),
        tokens_per_second=_tokens_per_second(config) if family == "qwen2.5-vl" else None,
    )


def _tokens_per_second(config: Any) -> float | None:
    value = _get(_get(config, "vision_config"), "tokens_per_second")
    return None if value is None else float(value)
