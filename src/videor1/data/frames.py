"""Frame maths of Video-R1's media rules: which frames to sample, what size to resize to, how to permute.

Pure functions of numbers (no decoding; :mod:`videor1.data.media` decodes). Every function that rounds
to the vision tower takes the model's :class:`~videor1.types.VisionGeometry` explicitly
(``get_adapter(model).geometry``): frame counts are multiples of its ``temporal_patch_size`` and frame
sides multiples of its ``pixel_factor`` (28 for Qwen2/2.5-VL, 32 for Qwen3-VL). Budgets come whole, as one
:class:`videor1.config.MediaConfig` (pixel budgets stay in pixels), whose fields hold every default.

Frame sampling follows the reference's frame utility exactly (``T`` = the temporal patch, 2 for every
Qwen-VL family):

* fps rule: ``nframes = clamp(total_frames / video_fps * fps, ceilT(min_frames), floorT(max_frames))``,
  capped by ``total_frames``, then rounded *down* to a multiple of ``T``;
* fixed count: ``nframes`` must be a multiple of ``T`` and lie in ``[T, total_frames]``. Departure: the
  reference rounds it to the nearest multiple (5 → 4, 7 → 8), so a run would record a count it did not
  use; here that is an error (:func:`fixed_frame_count_error`);
* indices ``linspace(start_frame, end_frame, nframes).round()`` (round half to even, as torch does);
  an optional ``start``/``end`` window in seconds becomes ``start_frame = ceil(start * fps)``,
  ``end_frame = floor(end * fps)``;
* ``sample_fps = nframes / total_frames * video_fps`` (frames per second of the sampled sequence).

Resizing uses Qwen's ``smart_resize`` (sides multiples of the pixel factor, aspect kept, area clamped)
with the reference's effective per-frame maximum ``max(min(max_pixels, total_pixels / nframes * T),
int(min_pixels * 1.05))``. ``total_pixels=None`` means no clip budget (treated as infinity), so with the
training budgets (min = max = 100,352) the effective maximum is 105,369 and a 640×360 clip becomes
420×224 for Qwen2.5-VL.

The temporal contrast of T-GRPO permutes a clip's frames (:func:`shuffle_frames`): single frames, as the
reference, or whole temporal patches, so each patch's vision encoding can be reused.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from videor1.config import MediaConfig
from videor1.types import VideoClip, VisionGeometry

MAX_RATIO = 200  # the reference rejects images more elongated than this


def _round_by(x: float, factor: int) -> int:
    return round(x / factor) * factor


def _ceil_by(x: float, factor: int) -> int:
    return math.ceil(x / factor) * factor


def _floor_by(x: float, factor: int) -> int:
    return math.floor(x / factor) * factor


def smart_resize(
    height: int, width: int, factor: int, *, min_pixels: int, max_pixels: float
) -> tuple[int, int]:
    """Qwen's resize rule: sides multiples of ``factor``, aspect kept, area in ``[min_pixels, max_pixels]``.

    ``factor`` is the model's ``VisionGeometry.pixel_factor``. Sides are first rounded to the nearest
    multiple; if the area is then above ``max_pixels`` both sides are scaled down and floored, if below
    ``min_pixels`` scaled up and ceiled (so the result can land a little outside the range, exactly as
    the reference does).

    >>> smart_resize(360, 640, 28, min_pixels=100352, max_pixels=105369)
    (224, 420)
    """
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) must be <= max_pixels ({max_pixels})")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"aspect ratio of {height}x{width} exceeds {MAX_RATIO}")
    h_bar = max(factor, _round_by(height, factor))
    w_bar = max(factor, _round_by(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, _floor_by(height / beta, factor))
        w_bar = max(factor, _floor_by(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by(height * beta, factor)
        w_bar = _ceil_by(width * beta, factor)
    return h_bar, w_bar


def video_frame_max_pixels(
    min_pixels: int, max_pixels: int, total_pixels: int | None, nframes: int, *, geometry: VisionGeometry
) -> float:
    """The reference's effective per-frame maximum: ``max(min(max, total / n * T), int(min * 1.05))``.

    ``T`` is the temporal patch; ``total_pixels=None`` is an unlimited clip budget.
    """
    total = math.inf if total_pixels is None else total_pixels
    return max(min(max_pixels, total / nframes * geometry.temporal_patch_size), int(min_pixels * 1.05))


def video_frame_size(
    height: int, width: int, nframes: int, media: MediaConfig, *, geometry: VisionGeometry
) -> tuple[int, int]:
    """Output (height, width) of every frame of an ``nframes`` clip whose source is ``height × width``."""
    low, high = media.video_min_pixels, media.video_max_pixels
    frame_max = video_frame_max_pixels(low, high, media.video_total_pixels, nframes, geometry=geometry)
    return smart_resize(height, width, geometry.pixel_factor, min_pixels=low, max_pixels=frame_max)


def frame_window(
    total_frames: int, video_fps: float, start: float | None = None, end: float | None = None
) -> tuple[int, int]:
    """First and last source frame (inclusive) of the ``[start, end]`` window in seconds."""
    if total_frames <= 0:
        raise ValueError(f"total_frames must be positive, got {total_frames}")
    if video_fps <= 0:
        raise ValueError(f"video_fps must be positive, got {video_fps}")
    if start is None and end is None:
        return 0, total_frames - 1
    max_duration = total_frames / video_fps
    first = math.ceil(max(0.0, min(start, max_duration)) * video_fps) if start is not None else 0
    last = total_frames - 1
    if end is not None:
        last = min(math.floor(max(0.0, min(end, max_duration)) * video_fps), total_frames - 1)
    if first >= last:
        raise ValueError(
            f"empty time window start={start}s end={end}s: frames {first}..{last} of a {total_frames}-frame "
            f"video at {video_fps:.3f} fps"
        )
    return first, last


def fixed_frame_count_error(nframes: int, geometry: VisionGeometry) -> str | None:
    """Why ``nframes`` cannot be a fixed frame count for ``geometry``'s vision tower, else None.

    >>> from videor1.models.known import QWEN2_5_VL_GEOMETRY
    >>> fixed_frame_count_error(5, QWEN2_5_VL_GEOMETRY)
    'is not a multiple of the temporal patch (2 frames): use 4 or 6'
    """
    tp = geometry.temporal_patch_size
    if nframes >= tp and nframes % tp == 0:
        return None
    below = _floor_by(nframes, tp)
    use = f"{below} or {below + tp}" if below >= tp else str(tp)
    return f"is not a multiple of the temporal patch ({tp} frames): use {use}"


def num_sampled_frames(
    total_frames: int, video_fps: float, media: MediaConfig, *, geometry: VisionGeometry
) -> int:
    """How many frames the reference samples from ``total_frames`` frames at ``video_fps`` (a multiple
    of the temporal patch)."""
    tp = geometry.temporal_patch_size
    if media.nframes is not None:
        why = fixed_frame_count_error(media.nframes, geometry)
        if why is not None:
            raise ValueError(f"nframes={media.nframes} {why}")
        count = media.nframes
    else:
        lo = _ceil_by(media.min_frames, tp)
        hi = _floor_by(media.max_frames, tp)
        wanted = total_frames / video_fps * media.fps
        count = _floor_by(min(min(max(wanted, lo), hi), total_frames), tp)
    if not tp <= count <= total_frames:
        raise ValueError(
            f"cannot sample {count} frames (must be in [{tp}, {total_frames}]) from a {total_frames}-frame "
            f"video (nframes={media.nframes}, fps={media.fps}, min_frames={media.min_frames}, "
            f"max_frames={media.max_frames})"
        )
    return count


def sample_frame_indices(
    total_frames: int,
    video_fps: float,
    media: MediaConfig,
    *,
    geometry: VisionGeometry,
    start: float | None = None,
    end: float | None = None,
) -> list[int]:
    """Source frame indices the reference samples: ``linspace(first, last, n).round()``.

    ``start``/``end`` (seconds) restrict sampling to a window; the frame count is then computed from
    the window's own frame count, as the reference does.

    >>> from videor1.models.known import QWEN2_5_VL_GEOMETRY
    >>> sample_frame_indices(120, 30000 / 1001, MediaConfig(), geometry=QWEN2_5_VL_GEOMETRY)  # 4.004 s: 8
    [0, 17, 34, 51, 68, 85, 102, 119]
    """
    first, last = frame_window(total_frames, video_fps, start, end)
    count = num_sampled_frames(last - first + 1, video_fps, media, geometry=geometry)
    return torch.linspace(first, last, count, dtype=torch.float64).round().long().tolist()


def shuffle_frames(
    clip: VideoClip,
    generator: torch.Generator,
    *,
    geometry: VisionGeometry,
    unit: Literal["frame", "temporal_patch"] = "frame",
) -> tuple[VideoClip, list[int]]:
    """Randomly permute a clip's frames so that the clip shows something different.

    ``unit="frame"`` permutes single frames (the reference's shuffled group). ``unit="temporal_patch"``
    permutes whole temporal patches of ``geometry`` (pairs of frames for every Qwen-VL family), keeping
    each patch's frames together and in order, so each patch's vision encoding can be reused from the
    ordered clip.

    Returns ``(shuffled, permutation)`` with ``shuffled.frames[i] = clip.frames[permutation[i]]`` (a
    frame-level permutation for both units; with patches of 2 the patch order is
    ``permutation[0::2] // 2``).
    ``frame_indices`` are permuted the same way; ``sample_fps`` and ``duration`` are unchanged.
    A permutation is drawn with ``torch.randperm`` and redrawn while the permuted frames equal the
    ordered ones: the identity, and also a permutation that only exchanges identical units (a shape
    that flashes in one pair of an otherwise black clip stays in place for 1 in 8 pair permutations
    of 16 frames; the reference's check, identity only, would hand such a clip to the "shuffled"
    group unchanged). Raises ``ValueError`` when no permutation can change the clip: fewer than two
    units, or every unit alike (a still clip).
    """
    t = clip.num_frames
    if unit == "frame":
        size = 1
        if t < 2:
            raise ValueError(f"cannot shuffle a clip of {t} frame(s)")
    elif unit == "temporal_patch":
        size = geometry.temporal_patch_size
        if t % size or t < 2 * size:
            raise ValueError(
                f"temporal_patch shuffling needs two or more whole temporal patches of {size} frames "
                f"(an even frame count >= 4 for Qwen-VL models), got {t}"
            )
    else:
        raise ValueError(f"unit must be 'frame' or 'temporal_patch', got {unit!r}")
    units = clip.frames.reshape(t // size, -1)  # [units, frames-per-unit * pixels]
    if bool((units == units[:1]).all()):
        raise ValueError(
            f"cannot shuffle a still clip: its {t // size} {unit.replace('_', ' ')}s are all alike"
        )
    order = torch.randperm(len(units), generator=generator)
    while torch.equal(units[order], units):  # at most half of all permutations: a few draws
        order = torch.randperm(len(units), generator=generator)
    perm = [size * p + k for p in order.tolist() for k in range(size)]
    shuffled = VideoClip(
        frames=clip.frames[torch.tensor(perm)],
        frame_indices=[clip.frame_indices[p] for p in perm],
        sample_fps=clip.sample_fps,
        duration=clip.duration,
        path=clip.path,
    )
    return shuffled, perm
