"""Encode each video once per step, and the mRoPE positions needed when encodings are passed in.

The reference ran the vision tower 18 times per video question per step (1 + 1 generation, 8 policy,
8 reference forwards). Here:

- The rollout encodes every prompt's media once (``encode_media``, no grad) and prefills the prompt
  once for all G samples (``hf.py``).
- The shuffled T-GRPO group with ``shuffle_unit=temporal_patch`` reuses the ordered encodings,
  permuted by temporal patch (``permute_video_features``). This is exact: Qwen2/2.5-VL's vision
  tower attends only within one temporal patch (its ``cu_seqlens`` split the sequence per grid
  ``t``) and its rotary positions are spatial only, so each patch's output tokens depend only on
  that patch's pixels. With ``shuffle_unit=frame`` frames move across patches and the shuffled
  clip needs its own encode.
- The policy forward over G rollouts of one question encodes the media once (with grad when the
  vision tower trains) and repeats the features for the G rows; the reference model likewise.
- When the policy's vision tower is frozen its weights equal the reference model's, so the
  rollout's encodings serve the policy and reference forwards too: 1 pass per video question.

``encode_media`` runs the tower once per batch over its images and videos joined, so every rank of
a sharded (FSDP2) run makes the same vision calls whatever its mix of media.

``VisionCounter`` counts the vision tower's forward calls and the videos it encoded (a forward
hook on the tower; ``encode_media`` and a wrapper on ``get_video_features`` report videos) for the
``vit_passes_per_video_question`` metric.

What is reused is everything of ``get_image_features`` / ``get_video_features`` that the forward
reads (``MediaFeatures``): the merged tokens and, for Qwen3-VL, the DeepStack features (one tensor
per deepstack layer per item, added to the language model's hidden states at the visual positions
after its first layers). Every re-indexing (per-row repeats, subsets, temporal-patch permutation)
moves an item's tokens and its deepstack features together; Qwen3-VL's vision tower, like
Qwen2/2.5-VL's, attends within one temporal patch with spatial-only positions, so the permutation
stays exact for both.

Positions: every forward gets explicit 3-D mRoPE ``position_ids`` from ``rope_positions``
(``videor1.models.positions``, re-exported here; its docstring says why transformers' own
``get_rope_index`` is not used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from videor1.models.adapters import core_model
from videor1.models.positions import MropePositions, continuation_positions, rope_positions

__all__ = [
    "MediaEncoderOutput",
    "MediaFeatures",
    "MropePositions",
    "VisionCounter",
    "continuation_positions",
    "encode_media",
    "frame_order_to_patch_order",
    "mm_token_type_ids",
    "permute_video_features",
    "rope_positions",
    "vision_is_trainable",
]


def vision_is_trainable(model: Any) -> bool:
    """True when any parameter of the vision tower (merger included) requires grad."""
    return any(p.requires_grad for p in core_model(model).visual.parameters())


def mm_token_type_ids(
    input_ids: torch.Tensor,  # [B, L]
    config: Any,
) -> torch.Tensor:  # [B, L] int: 0 text, 1 image placeholder, 2 video placeholder
    types = torch.zeros_like(input_ids, dtype=torch.int)
    types[input_ids == config.image_token_id] = 1
    types[input_ids == config.video_token_id] = 2
    return types


@dataclass
class MediaEncoderOutput(BaseModelOutputWithPooling):
    """``mm_encoder_outputs`` entry carrying Qwen3-VL's deepstack features besides ``pooler_output``.

    ``deepstack_features[l]`` holds, per media item, the tokens that the language model adds to its
    hidden states after decoder layer ``l`` (the same layout as transformers'
    ``BaseModelOutputWithDeepstackFeatures`` from ``get_image_features`` / ``get_video_features``).
    """

    deepstack_features: list[tuple[torch.Tensor, ...]] | None = None


@dataclass
class MediaFeatures:
    """Vision-tower outputs the language model consumes, per media item in batch order.

    ``images`` / ``videos`` are the merged tokens (``pooler_output``). Qwen3-VL's forward also
    consumes DeepStack features: per media item one ``[tokens_i, D]`` tensor per deepstack layer,
    kept in ``image_deepstack`` / ``video_deepstack``. Those lists are either empty (Qwen2/2.5-VL,
    or no such media) or hold one entry per item, so every re-indexing below keeps an item's
    tokens and its deepstack features together.
    """

    images: list[torch.Tensor] = field(default_factory=list)  # each [tokens_i, D]
    videos: list[torch.Tensor] = field(default_factory=list)  # each [tokens_v, D]
    image_deepstack: list[tuple[torch.Tensor, ...]] = field(default_factory=list)  # [image][layer]
    video_deepstack: list[tuple[torch.Tensor, ...]] = field(default_factory=list)  # [video][layer]

    def __post_init__(self) -> None:
        for kind, items, deep in (
            ("image", self.images, self.image_deepstack),
            ("video", self.videos, self.video_deepstack),
        ):
            if deep and len(deep) != len(items):
                raise ValueError(f"{len(deep)} {kind} deepstack entries for {len(items)} {kind}s")

    def as_encoder_outputs(self) -> dict[str, BaseModelOutputWithPooling]:
        """The ``mm_encoder_outputs`` argument of the Qwen-VL forward."""
        out: dict[str, BaseModelOutputWithPooling] = {}
        for kind, items, deep in (
            ("image", self.images, self.image_deepstack),
            ("video", self.videos, self.video_deepstack),
        ):
            if not items:
                continue
            if deep:
                layers = [tuple(per_item[k] for per_item in deep) for k in range(len(deep[0]))]
                out[kind] = MediaEncoderOutput(pooler_output=tuple(items), deepstack_features=layers)
            else:
                out[kind] = BaseModelOutputWithPooling(pooler_output=tuple(items))
        return out

    def select(self, image_index: Sequence[int], video_index: Sequence[int]) -> MediaFeatures:
        """Features re-listed (with repeats) for a batch whose rows are a re-indexing of this one."""

        def pick(items: list[Any], index: Sequence[int]) -> list[Any]:
            return [items[i] for i in index] if items else []

        return MediaFeatures(
            images=pick(self.images, image_index),
            videos=pick(self.videos, video_index),
            image_deepstack=pick(self.image_deepstack, image_index),
            video_deepstack=pick(self.video_deepstack, video_index),
        )

    def concat(self, other: MediaFeatures) -> MediaFeatures:
        """This batch's media followed by ``other``'s (images after images, videos after videos)."""

        def join(
            mine: list[Any], theirs: list[Any], mine_deep: list[Any], their_deep: list[Any]
        ) -> list[Any]:
            if mine and theirs and bool(mine_deep) != bool(their_deep):
                raise ValueError("cannot join media features with and without deepstack features")
            return mine_deep + their_deep

        return MediaFeatures(
            images=self.images + other.images,
            videos=self.videos + other.videos,
            image_deepstack=join(self.images, other.images, self.image_deepstack, other.image_deepstack),
            video_deepstack=join(self.videos, other.videos, self.video_deepstack, other.video_deepstack),
        )

    def permute_videos(
        self,
        grids: Sequence[Sequence[int]] | torch.Tensor,  # [V, 3] grid (T', H, W) of each video
        patch_orders: Sequence[Sequence[int]],  # one temporal-patch order per video
        *,
        spatial_merge_size: int,
    ) -> MediaFeatures:
        """The videos' features after permuting each one's temporal patches (``permute_video_features``
        applied to the merged tokens and to every deepstack layer alike); images are kept."""
        if not len(grids) == len(patch_orders) == len(self.videos):
            raise ValueError(
                f"{len(self.videos)} videos, {len(grids)} grids and {len(patch_orders)} patch orders"
            )

        def permute(t: torch.Tensor, grid: Any, order: Sequence[int]) -> torch.Tensor:
            return permute_video_features(t, grid, order, spatial_merge_size=spatial_merge_size)

        return MediaFeatures(
            images=self.images,
            videos=[permute(v, g, o) for v, g, o in zip(self.videos, grids, patch_orders)],
            image_deepstack=self.image_deepstack,
            video_deepstack=[
                tuple(permute(layer, g, o) for layer in deep)
                for deep, g, o in zip(self.video_deepstack, grids, patch_orders)
            ],
        )

    def detach(self) -> MediaFeatures:
        return MediaFeatures(
            images=[t.detach() for t in self.images],
            videos=[t.detach() for t in self.videos],
            image_deepstack=[tuple(t.detach() for t in d) for d in self.image_deepstack],
            video_deepstack=[tuple(t.detach() for t in d) for d in self.video_deepstack],
        )


def _per_item_deepstack(out: Any, num_items: int) -> list[tuple[torch.Tensor, ...]]:
    """``out.deepstack_features`` (``[layer][item]``, Qwen3-VL) regrouped as ``[item][layer]``."""
    layers = getattr(out, "deepstack_features", None)
    if not layers:
        return []
    return [tuple(layer[i] for layer in layers) for i in range(num_items)]


def encode_media(model: Any, batch: Mapping[str, Any]) -> MediaFeatures:
    """Run the vision tower once over all images and videos of a collated batch, joined.

    The images' and the videos' patch rows (``pixel_values``, ``pixel_values_videos``) are
    concatenated with their grids and encoded in one call of ``get_image_features``, then split
    back into images and videos. In every supported family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) the
    image and video paths are the same function of (patch rows, grid) and the tower attends within
    one item (``cu_seqlens`` per grid), so this equals encoding each kind on its own. One call per
    batch whatever its mix of media keeps FSDP2's collectives aligned: under ``fsdp2`` every call
    all-gathers the tower's shards, and a rank holding both kinds would otherwise run one more
    vision forward (and backward) than a rank holding one kind.

    Keeps everything the forward reads: the merged tokens and, for Qwen3-VL, the per-layer
    deepstack features. The method is called on the outermost module given (the
    ``*ForConditionalGeneration`` or its peft wrapper): under FSDP2 that is where
    ``videor1.train.distributed.wrap_model`` registers it as a forward method, so the root's shards
    (patch embedding, merger) are gathered first, as in a forward.
    """
    core = core_model(model)
    top = model if hasattr(model, "get_image_features") else core
    kinds = [
        (batch[pixels], batch[grid])
        for pixels, grid in (("pixel_values", "image_grid_thw"), ("pixel_values_videos", "video_grid_thw"))
        if batch.get(pixels) is not None
    ]
    if not kinds:
        return MediaFeatures()
    num_images = int(batch["image_grid_thw"].shape[0]) if batch.get("pixel_values") is not None else 0
    pixels = torch.cat([p for p, _ in kinds])  # [patches_images + patches_videos, C * T * P * P]
    grid = torch.cat([g for _, g in kinds])  # [images + videos, 3]
    out = top.get_image_features(pixels, grid, return_dict=True)
    items = list(out.pooler_output)
    deep = _per_item_deepstack(out, len(items))
    for counter in _COUNTERS.get(core, ()):
        counter.videos += len(items) - num_images
    return MediaFeatures(
        images=items[:num_images],
        videos=items[num_images:],
        image_deepstack=deep[:num_images],
        video_deepstack=deep[num_images:],
    )


def with_media_encoded(model: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Forward inputs whose media are encoded by one ``encode_media`` call (``mm_encoder_outputs``)
    in place of the pixel values, which the forward would encode in one call per media kind."""
    features = encode_media(model, inputs)
    out = {k: v for k, v in inputs.items() if k not in ("pixel_values", "pixel_values_videos")}
    encoded = features.as_encoder_outputs()
    if encoded:
        out["mm_encoder_outputs"] = encoded
    return out


def permute_video_features(
    features: torch.Tensor,  # [T' * H' * W', D] merged tokens of one video, temporal-patch major
    grid_thw: Sequence[int] | torch.Tensor,  # (T', H, W) of the video in patches (T' = frames / 2)
    patch_order: Sequence[int],  # new temporal-patch order: output patch k = input patch patch_order[k]
    *,
    spatial_merge_size: int,
) -> torch.Tensor:  # [T' * H' * W', D]
    """The encodings of a clip whose temporal patches were permuted, without re-encoding it."""
    t, h, w = (int(x) for x in grid_thw)
    per_patch = (h // spatial_merge_size) * (w // spatial_merge_size)
    if features.shape[0] != t * per_patch:
        raise ValueError(
            f"features have {features.shape[0]} tokens, grid {t}x{h}x{w} implies {t * per_patch}"
        )
    if sorted(patch_order) != list(range(t)):
        raise ValueError(f"patch_order {list(patch_order)} is not a permutation of {t} temporal patches")
    index = torch.as_tensor(list(patch_order), device=features.device)
    return features.view(t, per_patch, -1)[index].reshape(features.shape)


def frame_order_to_patch_order(frame_order: Sequence[int], temporal_patch_size: int) -> list[int]:
    """The temporal-patch permutation behind a frame permutation that moves whole patches.

    ``frame_order[k]`` is the source frame shown at position k; it must keep each patch's frames
    together and in order (what ``shuffle_frames(..., unit="temporal_patch")`` produces).
    """
    n = len(frame_order)
    if n % temporal_patch_size:
        raise ValueError(f"{n} frames is not a multiple of the temporal patch size {temporal_patch_size}")
    order = []
    for k in range(0, n, temporal_patch_size):
        chunk = list(frame_order[k : k + temporal_patch_size])
        start = chunk[0]
        if start % temporal_patch_size or chunk != list(range(start, start + temporal_patch_size)):
            raise ValueError(
                f"frame order {list(frame_order)} splits temporal patches; use unit='frame' encodes"
            )
        order.append(start // temporal_patch_size)
    return order


_COUNTERS: WeakKeyDictionary[Any, list[VisionCounter]] = WeakKeyDictionary()  # core model -> installed


class VisionCounter:
    """Counts vision-tower forward calls and encoded videos while installed on a model.

    Calls and items (images + videos) come from a forward hook on the tower; videos from
    ``encode_media`` (which encodes both kinds in one call) and from calls of the model's own
    ``get_video_features`` (its forward given ``pixel_values_videos``).
    """

    def __init__(self) -> None:
        self.calls = 0
        self.items = 0  # images + videos encoded (rows of grid_thw over all calls)
        self.videos = 0
        self._handles: list[Any] = []
        self._patched: list[tuple[Any, Any]] = []

    def install(self, model: Any) -> VisionCounter:
        core = core_model(model)
        self._handles.append(core.visual.register_forward_hook(self._on_forward, with_kwargs=True))
        original = core.get_video_features

        def counted(
            pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor | None = None, **kwargs: Any
        ):
            if video_grid_thw is not None:
                self.videos += int(video_grid_thw.shape[0])
            return original(pixel_values_videos, video_grid_thw, **kwargs)

        core.get_video_features = counted
        self._patched.append((core, original))
        _COUNTERS.setdefault(core, []).append(self)
        return self

    def _on_forward(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        self.calls += 1
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        if grid is not None:
            self.items += int(grid.shape[0])

    def reset(self) -> None:
        self.calls = 0
        self.items = 0
        self.videos = 0

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        for core, _original in self._patched:
            del core.get_video_features  # drop the instance attribute; the class method shows again
            _COUNTERS[core].remove(self)
        self._handles.clear()
        self._patched.clear()
