"""Turn samples with decoded media into model inputs through the model's processor.

One call handles a whole batch that mixes images, videos of different lengths and several questions:

1. each sample's chat messages come from :func:`videor1.data.prompts.build_messages` (media part
   first, then the prompt text) and are rendered by the processor's chat template;
2. the processor expands each media placeholder to its visual tokens and patchifies the pixels.
   Media arrive already sampled and resized to multiples of the model's pixel factor by
   :mod:`videor1.data.media`, so the processor is told not to resize (``do_resize=False``) and not to
   re-sample frames (``do_sample_frames=False``); the resulting grids are checked to be exactly
   ``(T / temporal_patch, H / patch, W / patch)`` of the model's geometry (``adapter.geometry``);
3. every video's real sampling rate goes in as ``video_metadata`` (``fps = clip.sample_fps``,
   ``FamilyAdapter.video_inputs_kwargs``), from
   which the Qwen2.5-VL processor derives ``second_per_grid_ts = temporal_patch_size / sample_fps``
   (the reference dropped it in training and so assumed 2 fps; Video-R1's media rules) and the Qwen3-VL
   processor its timestamps;
4. for generation (``targets=None``) rows are padded on the LEFT so every prompt ends at the last
   column; for SFT (``targets`` given) the assistant turn ``target + "<|im_end|>\\n"`` is appended,
   rows are padded on the right, and ``labels`` keep only the target tokens and the closing
   ``<|im_end|>`` (the reference computed loss over prompt and video-pad tokens; a defect of the Video-R1 code).

Sequences are never cropped: a row longer than ``max_length`` raises an error naming the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers import BatchFeature

from videor1.data.prompts import build_messages
from videor1.types import ImageInput, Sample, VideoClip, VisionGeometry

if TYPE_CHECKING:
    from videor1.models.adapters import FamilyAdapter

IGNORE_INDEX = -100
END_OF_TURN = "<|im_end|>"
TURN_SUFFIX = END_OF_TURN + "\n"  # how the chat template closes every turn
_RESERVED = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def _where(sample: Sample, row: int) -> str:
    return f"batch row {row} ({sample.source or 'sample'}, problem_id={sample.problem_id!r})"


def _check_media(
    samples: Sequence[Sample], media: Sequence[VideoClip | ImageInput], geometry: VisionGeometry
) -> None:
    factor, tp = geometry.pixel_factor, geometry.temporal_patch_size
    if len(media) != len(samples):
        raise ValueError(f"collate got {len(samples)} samples but {len(media)} media items")
    for row, (sample, item) in enumerate(zip(samples, media)):
        expected = {"video": VideoClip, "image": ImageInput}.get(sample.data_type)
        if expected is None or not isinstance(item, expected):
            raise ValueError(
                f"{_where(sample, row)}: data_type {sample.data_type!r} but the media item is a {type(item).__name__}"
            )
        pixels = item.frames if isinstance(item, VideoClip) else item.pixels
        if pixels.dtype != torch.uint8:
            raise ValueError(f"{_where(sample, row)}: media must be uint8, got {pixels.dtype}")
        h, w = pixels.shape[-2:]
        if h % factor or w % factor:
            raise ValueError(
                f"{_where(sample, row)}: media size {h}x{w} is not a multiple of {factor}; "
                "load it with videor1.data.media.load_media(..., geometry=adapter.geometry)"
            )
        if isinstance(item, VideoClip) and (item.num_frames == 0 or item.num_frames % tp):
            raise ValueError(
                f"{_where(sample, row)}: {item.num_frames} frames is not a positive multiple of the "
                f"temporal patch size {tp}"
            )


def _label_rows(batch: BatchFeature, tails: list[str]) -> torch.Tensor:
    """Labels for right-padded rows whose text ends with ``target + "<|im_end|>\\n"``.

    A token is a label when its characters lie inside ``target + "<|im_end|>"``. The character span is
    counted from the end of the text, which the processor's placeholder expansion (all in the prompt)
    does not move.
    """
    offsets = batch.pop("offset_mapping")  # [B, L, 2]
    input_ids = batch["input_ids"]  # [B, L]
    mask = batch["attention_mask"].bool()  # [B, L]
    labels = torch.full_like(input_ids, IGNORE_INDEX)  # [B, L]
    for row, tail in enumerate(tails):
        n = int(mask[row].sum())
        text_end = int(offsets[row, n - 1, 1])
        start = text_end - len(tail)
        stop = text_end - (len(TURN_SUFFIX) - len(END_OF_TURN))  # drop the trailing "\n"
        starts, ends = offsets[row, :n, 0], offsets[row, :n, 1]  # [n]
        keep = (starts >= start) & (ends <= stop) & (ends > starts)  # [n]
        labels[row, :n][keep] = input_ids[row, :n][keep]
    return labels


def prompt_texts(
    samples: Sequence[Sample],
    processor: Any,
    *,
    variant: str = "train",
    system_prompt: str | None = None,
    add_generation_prompt: bool = True,
) -> list[str]:
    """Each sample's chat-templated prompt text, media placeholders not yet expanded.

    What :func:`collate` tokenises, and what a vLLM engine receives (its processor expands the
    placeholders from the media, as the HF processor does here).
    """
    return [
        processor.apply_chat_template(
            build_messages(sample, variant=variant, system_prompt=system_prompt),
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
        for sample in samples
    ]


def collate(
    samples: Sequence[Sample],
    media: Sequence[VideoClip | ImageInput],
    processor: Any,
    *,
    variant: str = "train",
    system_prompt: str | None = None,
    targets: Sequence[str] | None = None,
    add_generation_prompt: bool = True,
    max_length: int | None = None,
    adapter: FamilyAdapter,
) -> BatchFeature:
    """Model inputs for ``samples`` (one media item each, same order) through ``processor``.

    Returns a ``BatchFeature`` with ``input_ids`` / ``attention_mask`` (left padded when ``targets`` is
    None), ``pixel_values`` + ``image_grid_thw`` when there are images, ``pixel_values_videos`` +
    ``video_grid_thw`` (+ ``second_per_grid_ts`` for Qwen2.5-VL, from each clip's real ``sample_fps``)
    when there are videos, and ``labels`` (-100 except the target tokens and their ``<|im_end|>``)
    when ``targets`` are given. ``adapter`` is the model's (``videor1.models.adapters.get_adapter``):
    its geometry is what the media must fit, and it supplies the video keyword arguments.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    geometry = adapter.geometry
    _check_media(samples, media, geometry)
    if targets is not None:
        if len(targets) != len(samples):
            raise ValueError(f"collate got {len(samples)} samples but {len(targets)} targets")
        if not add_generation_prompt:
            raise ValueError("targets need add_generation_prompt=True (the target is the assistant turn)")
        for row, (sample, target) in enumerate(zip(samples, targets)):
            bad = [tok for tok in _RESERVED if tok in target]
            if bad:
                raise ValueError(f"{_where(sample, row)}: target contains reserved chat tokens {bad}")

    texts = prompt_texts(
        samples,
        processor,
        variant=variant,
        system_prompt=system_prompt,
        add_generation_prompt=add_generation_prompt,
    )
    tails: list[str] = []
    if targets is not None:
        tails = [target + TURN_SUFFIX for target in targets]
        texts = [text + tail for text, tail in zip(texts, tails)]

    images = [m.pixels for m in media if isinstance(m, ImageInput)]  # each [3, H, W] uint8
    clips = [m for m in media if isinstance(m, VideoClip)]
    kwargs: dict[str, Any] = {"padding": True, "padding_side": "left" if targets is None else "right"}
    if images:
        kwargs["images"] = images
    if clips:
        kwargs["videos"] = [c.frames for c in clips]  # each [T, 3, H, W] uint8
        kwargs.update(adapter.video_inputs_kwargs(clips))
    if targets is not None:
        kwargs["return_offsets_mapping"] = True
    batch = processor(text=texts, do_resize=False, return_tensors="pt", **kwargs)

    _check_grids(batch, samples, media, geometry)
    if "second_per_grid_ts" in batch:
        tp = geometry.temporal_patch_size
        expected = torch.tensor([tp / c.sample_fps for c in clips], dtype=torch.float32)
        got = torch.as_tensor(batch["second_per_grid_ts"], dtype=torch.float32)
        if not torch.allclose(got, expected):
            raise RuntimeError(
                f"processor gave second_per_grid_ts {got.tolist()}, expected {expected.tolist()}"
            )
    if targets is not None:
        batch["labels"] = _label_rows(batch, tails)
    if max_length is not None:
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        for row, (sample, n) in enumerate(zip(samples, lengths)):
            if n > max_length:
                raise ValueError(
                    f"{_where(sample, row)}: {n} tokens exceed max_length={max_length} "
                    "(visual tokens are never cropped; lower the media budgets or raise max_length)"
                )
    return batch


def _check_grids(
    batch: BatchFeature,
    samples: Sequence[Sample],
    media: Sequence[VideoClip | ImageInput],
    geometry: VisionGeometry,
) -> None:
    """The processor must not have resized or re-sampled anything: grid = (T / tp, H / patch, W / patch)."""
    patch, tp = geometry.patch_size, geometry.temporal_patch_size
    grids = {"image": iter(batch.get("image_grid_thw", [])), "video": iter(batch.get("video_grid_thw", []))}
    for row, (sample, item) in enumerate(zip(samples, media)):
        if isinstance(item, VideoClip):
            t, (h, w) = item.num_frames // tp, item.frames.shape[-2:]
        else:
            t, (h, w) = 1, item.pixels.shape[-2:]
        grid = [int(x) for x in next(grids[sample.data_type])]
        if grid != [t, h // patch, w // patch]:
            raise RuntimeError(
                f"{_where(sample, row)}: processor grid {grid} != {[t, h // patch, w // patch]} for "
                f"{sample.data_type} of {h}x{w}; it resized or re-sampled the media"
            )
