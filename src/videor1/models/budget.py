"""Write a run's media budget into its processor, so a checkpoint runs outside videor1 as it was trained.

videor1 samples and resizes frames itself (``videor1.data.media``) and hands the processor finished
pixels (``do_resize=False``, ``do_sample_frames=False``), so the processor's own defaults never
mattered in training. Plain transformers (``AutoProcessor.from_pretrained(checkpoint)``) and vLLM do
use them: with the library defaults a 720p frame became 4,784 visual tokens where training used 240.
:func:`write_media_budget` sets, before the processor is saved into a checkpoint:

- image processor ``size``: ``{"shortest_edge": image_min_pixels, "longest_edge": image_max_pixels}``;
- video processor ``size``: ``{"shortest_edge": video_min_pixels, "longest_edge": L}`` with ``L`` the
  per-frame maximum of the reference's rule, ``max(video_max_pixels, int(1.05 * video_min_pixels))``
  when ``video_total_pixels`` is unset. With ``video_total_pixels`` set, the processor's
  ``cap_pixels_per_frame`` applies the same ``max(min(max, total / n * 2), 1.05 * min)`` rule, with
  the total expressed in its ``max_video_tokens`` (rounded to whole tokens);
- frame sampling: ``do_sample_frames=True`` with ``fps``, ``min_frames`` and ``max_frames`` (or
  ``num_frames`` for a fixed ``nframes``). The processor's sampler takes ``arange(0, total, total / n)``
  frames where videor1 takes ``linspace(0, total - 1, n)`` rounded, so a video *file* given to the
  processor gets the same number and size of frames but possibly neighbouring frame indices; frames
  sampled by the caller (``do_sample_frames=False``) give exactly the training pixels.

Both resize with Qwen's ``smart_resize`` sizes, bicubic and antialiased, so the same frames give the
same ``video_grid_thw`` and visual token count. The pixel values agree to within 2 of 255 levels:
videor1 resizes as the reference's qwen-vl-utils does (``torchvision.transforms.functional.resize``),
transformers' processors use ``torchvision.transforms.v2`` whose uint8 bicubic rounds differently
(tested on a real clip).
"""

from __future__ import annotations

from typing import Any

from videor1.config import MediaConfig


def video_frame_limit(media: MediaConfig) -> int:
    """Per-frame pixel maximum of the reference's rule when the clip has no total budget."""
    return max(media.video_max_pixels, int(media.video_min_pixels * 1.05))


def write_media_budget(processor: Any, media: MediaConfig) -> None:
    """Set ``processor``'s resize and frame-sampling defaults to ``media`` (call before ``save_pretrained``)."""
    images = getattr(processor, "image_processor", None)
    if images is not None:
        images.size = {"shortest_edge": media.image_min_pixels, "longest_edge": media.image_max_pixels}
        for name, value in (("min_pixels", media.image_min_pixels), ("max_pixels", media.image_max_pixels)):
            if getattr(images, name, None) is not None:
                setattr(images, name, value)
    videos = getattr(processor, "video_processor", None)
    if videos is None:
        return
    videos.size = {"shortest_edge": media.video_min_pixels, "longest_edge": video_frame_limit(media)}
    if media.video_total_pixels is not None and hasattr(videos, "max_video_tokens"):
        factor = videos.patch_size * videos.merge_size
        videos.size["longest_edge"] = media.video_max_pixels
        videos.cap_pixels_per_frame = True
        videos.max_video_tokens = max(1, round(media.video_total_pixels / (factor * factor * 0.9)))
    elif hasattr(videos, "cap_pixels_per_frame"):
        videos.cap_pixels_per_frame = False
    videos.do_sample_frames = True
    videos.min_frames, videos.max_frames = media.min_frames, media.max_frames
    if media.nframes is not None:
        videos.num_frames, videos.fps = media.nframes, None
    else:
        videos.num_frames, videos.fps = None, media.fps
