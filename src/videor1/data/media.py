"""Decode and resize video frames and images under Video-R1's media rules.

What to sample and what size to resize to is :mod:`videor1.data.frames` (pure maths); this module
gets those frames out of files: a PyAV packet index and seek plan, a resize worker, and
:func:`load_video` / :func:`load_image` / :func:`load_media`. Every loader takes the model's
:class:`~videor1.types.VisionGeometry` explicitly (``get_adapter(model).geometry``), so frames come out
in multiples of its pixel factor and temporal patch. Frames are resized once, bicubic with
antialiasing, with the reference's arithmetic (torchvision's tensor resize: float32 interpolation,
clamp, round; it then casts to float, we keep uint8, the values are the same integers).

Departures from the reference, all in how frames are obtained, not which:

* Decoding uses PyAV and only the frames the sampled indices need: a demux-only pass indexes the
  packets (presentation timestamps, keyframes), then for each needed frame we either decode on from
  the current position or seek to the nearest keyframe before it, whichever decodes fewer frames.
  For H.264, packets of non-reference frames (``nal_ref_idc == 0``) whose frame is not needed are
  not decoded at all (nothing depends on them, so the kept frames are bit-identical).
  Decoded frames are identified by their timestamp's rank among all packet timestamps (presentation
  order, as decord numbers frames). Streams whose packets lack timestamps, or whose decoded frames
  carry timestamps the index does not know, are decoded sequentially from the start and frames are
  numbered by counting.
* Each frame is resized on its own, on a worker thread, as soon as it is decoded, so resizing overlaps
  decoding; the reference resizes the stacked clip in one call. Output pixels depend only on their own
  frame, so the bytes are the same (tests compare with torchvision on the stacked frames).
* Bad media never fall back to another file: missing, empty, truncated, corrupt, zero-frame and
  non-video files raise :class:`MediaError` naming the path and the cause.

Speed (``bench/decode.py``): most of the time is decoding, and what we decode cannot shrink without
changing pixels: every reference frame from the keyframe before a sampled frame up to it (a clip with
one keyframe whose last frame is sampled needs a full decode, as for the reference). The other part is
the resize, whose float arithmetic we must repeat to keep the reference's bytes (torch's uint8 kernel is
about 10x faster but differs by up to 7 levels). The worker runs torch single-threaded for this.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from PIL import Image

from videor1.data.frames import frame_window, sample_frame_indices, smart_resize, video_frame_size
from videor1.data.images import decode_resized
from videor1.types import ImageInput, VideoClip, VisionGeometry
from videor1.utils.logging import get_logger

if TYPE_CHECKING:
    from videor1.config import MediaConfig
    from videor1.types import Sample

log = get_logger(__name__)

SEEK_COST_FRAMES = 2  # a seek (demuxer reposition + decoder flush) costs about this many decoded frames


class MediaError(Exception):
    """A media file that cannot be used: missing, empty, truncated, corrupt, zero-frame or not a video."""

    def __init__(self, path: str | Path, cause: str, *, record: str | None = None) -> None:
        self.path = str(path)
        self.cause = cause
        self.record = record
        where = f" (record {record})" if record else ""
        super().__init__(f"{self.path}{where}: {cause}")


@dataclass
class _StreamIndex:
    """What a demux-only pass over the video stream tells: frame count, timestamps, keyframes."""

    pts: list[int] | None  # presentation timestamps in presentation order; None when packets lack them
    keyframes: list[int]  # presentation indices of keyframes, sorted, always with 0 (the stream start)
    declared_frames: int  # frame count the container declares (0 when it does not)
    packets: int  # packets read (including ones the demuxer marks discard)

    @property
    def total_frames(self) -> int:
        return len(self.pts) if self.pts is not None else self.packets


def _index_stream(container: av.container.InputContainer, stream: av.video.VideoStream) -> _StreamIndex:
    pts: list[int] = []
    key_pts: list[int] = []
    missing_pts = False
    packets = 0
    for packet in container.demux(stream):
        if packet.size == 0:  # the flush packet PyAV yields at the end
            continue
        packets += 1
        if packet.is_discard:
            continue
        if packet.pts is None:
            missing_pts = True
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            key_pts.append(packet.pts)
    if missing_pts or len(set(pts)) != len(pts):
        return _StreamIndex(None, [0], stream.frames, packets)
    pts.sort()
    rank = {p: i for i, p in enumerate(pts)}
    # frame 0 always counts as a seek point: seeking to its timestamp goes to the start of the stream
    return _StreamIndex(pts, sorted({0, *(rank[p] for p in key_pts)}), stream.frames, packets)


def plan_seeks(
    needed: list[int], keyframes: list[int], seek_cost: int = SEEK_COST_FRAMES
) -> list[int | None]:
    """For each needed frame (sorted, presentation order), the keyframe to seek to first, or None.

    Decoding starts at no position, so the first needed frame always seeks. Afterwards a seek to the
    last keyframe ``k`` at or before frame ``i`` costs ``i - k + seek_cost`` decoded frames against
    ``i - pos`` for decoding on from the last decoded frame ``pos``; we seek when that is cheaper.

    >>> plan_seeks([5, 7, 40, 41], keyframes=[0, 30])
    [0, None, 30, None]
    """
    plan: list[int | None] = []
    pos: int | None = None
    for i in needed:
        k = keyframes[max(0, bisect.bisect_right(keyframes, i) - 1)]
        if pos is None or (k > pos and (i - k + seek_cost) < (i - pos)):
            plan.append(k)
        else:
            plan.append(None)
        pos = i
    return plan


class _PlanFailed(Exception):
    """Decoded frames did not match the packet index; decode sequentially instead."""


class _CorruptFrame(Exception):
    """The decoder flagged a frame as corrupt (it concealed damaged data)."""


_REFORMATTER = threading.local()


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    """Frame → ``[H, W, 3]`` uint8 RGB.

    A per-thread ``VideoReformatter`` keeps its swscale context between frames of the same size and
    format; ``frame.to_ndarray(format="rgb24")`` builds a new one for every frame, which cost about
    5x more here (0.73 vs 0.15 ms per 112x112 frame). The bytes are identical.
    """
    reformatter = getattr(_REFORMATTER, "value", None)
    if reformatter is None:
        reformatter = _REFORMATTER.value = VideoReformatter()
    return reformatter.reformat(frame, format="rgb24").to_ndarray()


def _h264_slice_ref_idcs(data: bytes | memoryview, length_size: int | None) -> list[int]:
    """``nal_ref_idc`` of every slice NAL (types 1 and 5) in one H.264 access unit.

    ``length_size`` is the NAL length prefix size of AVCC packets (mp4, mkv); None for Annex B
    (start codes, e.g. MPEG-TS).
    """
    refs: list[int] = []
    if length_size is not None:
        i, n = 0, len(data)
        while i + length_size < n:
            size = int.from_bytes(data[i : i + length_size], "big")
            header = data[i + length_size]
            if header & 0x1F in (1, 5):
                refs.append((header >> 5) & 3)
            i += length_size + size
        return refs
    raw = bytes(data)
    i = raw.find(b"\x00\x00\x01")
    while 0 <= i < len(raw) - 3:
        header = raw[i + 3]
        if header & 0x1F in (1, 5):
            refs.append((header >> 5) & 3)
        i = raw.find(b"\x00\x00\x01", i + 3)
    return refs


def _nonref_test(stream: av.video.VideoStream):
    """A test for packets no other frame references (H.264 ``nal_ref_idc == 0``), or None.

    Such a packet can be left undecoded when its own frame is not needed: nothing else depends on it,
    so the frames we keep decode to the same pixels (this is what FFmpeg's ``skip_frame=nonref`` does
    inside the decoder). Other codecs decode every packet.
    """
    ctx = stream.codec_context
    if ctx.name != "h264":
        return None
    extradata = bytes(ctx.extradata or b"")
    length_size = (extradata[4] & 3) + 1 if extradata[:1] == b"\x01" and len(extradata) > 4 else None

    def is_nonref(packet: av.Packet) -> bool:
        refs = _h264_slice_ref_idcs(memoryview(packet), length_size)
        return bool(refs) and not any(refs)

    return is_nonref


def _decode_packets(container, stream, rank: dict[int, int], wanted: set[int], skippable):
    """Decoded frames from the current demuxer position, leaving out unneeded non-reference packets."""
    for packet in container.demux(stream):
        if skippable is not None and packet.size and packet.pts is not None:
            if rank.get(packet.pts) not in wanted and skippable(packet):
                continue
        yield from packet.decode()


def _decode_with_seeks(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    index: _StreamIndex,
    needed: list[int],
    keep: Callable[[int, av.VideoFrame], None],
) -> None:
    """Decode the ``needed`` frames (sorted), handing each to ``keep(index, frame)`` as it comes."""
    assert index.pts is not None
    rank = {p: i for i, p in enumerate(index.pts)}
    wanted = set(needed)
    skippable = _nonref_test(stream)
    frames = None
    floor = 0  # frames before the keyframe we sought to may be open-GOP leftovers; only later ones count
    for i, seek_to in zip(needed, plan_seeks(needed, index.keyframes)):
        if seek_to is not None or frames is None:
            floor = seek_to or 0
            container.seek(index.pts[floor], stream=stream, backward=True, any_frame=False)
            frames = _decode_packets(container, stream, rank, wanted, skippable)
        for frame in frames:
            j = rank.get(frame.pts) if frame.pts is not None else None
            if j is None:
                raise _PlanFailed(f"decoded a frame with unindexed pts {frame.pts}")
            if frame.is_corrupt and j >= floor:
                raise _CorruptFrame(f"the decoder flagged frame {j} as corrupt")
            if j == i:
                keep(i, frame)
                break
            if j > i:
                raise _PlanFailed(f"frame {i} was skipped (next decoded frame is {j})")
        else:
            raise _PlanFailed(f"stream ended before frame {i}")


def _decode_sequential(
    path: Path, needed: list[int], rank: dict[int, int] | None, keep: Callable[[int, av.VideoFrame], None]
) -> None:
    """Decode every frame from the start of the file, handing the needed ones to ``keep(index, frame)``.

    A frame whose timestamp is in ``rank`` takes that index; any other frame is numbered by counting on
    from the last frame with a known index (the first decoded frame is 0 when its index is unknown).
    """
    wanted = set(needed)
    last = max(needed)
    j = -1
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            known = rank.get(frame.pts) if rank is not None and frame.pts is not None else None
            j = known if known is not None else j + 1
            if frame.is_corrupt:
                raise _CorruptFrame(f"the decoder flagged frame {j} as corrupt")
            if j in wanted:
                keep(j, frame)
            if j >= last:
                break


def _open_video(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaError(path, "file not found")
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise MediaError(path, f"cannot open as media: {err}") from err


def _stream_fps(stream: av.video.VideoStream, total_frames: int) -> float:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return float(rate)
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return total_frames / seconds
    raise ValueError("stream has no frame rate and no duration")


def _resize_rgb(rgb: np.ndarray, size: tuple[int, int], out: torch.Tensor | None = None) -> torch.Tensor:
    """One ``[H, W, 3]`` uint8 RGB frame → ``[3, h, w]`` uint8 (into ``out`` when given), exactly as the
    reference's bicubic antialiased ``torchvision`` resize of the stacked clip.

    The same operations as torchvision's tensor resize on the reference's ``[T, 3, H, W]`` view of
    decoded frames: cast to float32 (keeping the channels-last layout of the permuted view, so the cast
    is one contiguous pass), bicubic antialiased interpolation, clamp to [0, 255], round, uint8. Each
    output pixel depends on its own frame only, so resizing frames one at a time gives the same bytes.
    """
    if out is None:
        out = torch.empty((3, *size), dtype=torch.uint8)
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)  # [3, H, W] view, channels last in memory
    if tuple(pixels.shape[-2:]) == tuple(size):
        return out.copy_(pixels)
    resized = torch.nn.functional.interpolate(
        pixels[None].float(), size=size, mode="bicubic", align_corners=False, antialias=True
    )  # [1, 3, h, w] float32
    return out.copy_(resized[0].clamp_(0, 255).round_())  # integral values: the uint8 cast is exact


def _resize_into(rgb: np.ndarray, size: tuple[int, int], slots: list[torch.Tensor]) -> None:
    _resize_rgb(rgb, size, out=slots[0])
    for slot in slots[1:]:
        slot.copy_(slots[0])


class _FrameResizer:
    """Receives decoded frames and resizes them on a worker thread, into the clip's frame tensor, while
    decoding goes on.

    All tensor work happens on the worker, which runs torch with one intra-op thread: decoding already
    keeps the other cores busy, and per-frame resizes and copies split over OpenMP threads cost far
    more CPU time than they save (on a loaded 2-core machine, 12x the CPU time of a single-threaded
    resize for small frames, from threads spinning at barriers).

    The first frame fixes the output size (the reference's rule for a clip of ``len(indices)`` frames
    of that frame's size); every later frame must have the same source size, as the reference stacks
    them. Frames that arrive again (a sequential decode after a failed seek plan) are written again.
    """

    def __init__(
        self, path: Path, indices: list[int], frame_size: Callable[[int, int, int], tuple[int, int]]
    ) -> None:
        self._path = path
        self._positions: dict[int, list[int]] = {}
        for k, i in enumerate(indices):
            self._positions.setdefault(i, []).append(k)
        self._nframes = len(indices)
        self._frame_size = frame_size
        self._torch_threads = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="videor1-resize",
            initializer=torch.set_num_threads,
            initargs=(1,),
        )
        self._jobs: dict[int, Future[None]] = {}
        self._frames: torch.Tensor | None = None  # [T, 3, h, w] uint8
        self.source: tuple[int, int] | None = None  # (H, W) of the decoded frames

    def __enter__(self) -> _FrameResizer:
        return self

    def __exit__(self, *exc: object) -> None:
        for job in self._jobs.values():
            job.cancel()  # only resizes not started yet; a no-op once the frames are stacked
        # torch's thread count is per OS thread, but a thread's setting is also what threads started
        # later begin with: the worker's last task gives back the count it found
        self._pool.submit(torch.set_num_threads, self._torch_threads)
        self._pool.shutdown(wait=True)

    def __contains__(self, i: int) -> bool:
        return i in self._jobs

    def keep(self, i: int, frame: av.VideoFrame) -> None:
        rgb = _rgb(frame)  # [H, W, 3] uint8
        source = (rgb.shape[0], rgb.shape[1])
        if self._frames is None:
            self.source = source
            size = self._frame_size(*source, self._nframes)
            self._frames = torch.empty((self._nframes, 3, *size), dtype=torch.uint8)
        elif source != self.source:
            raise MediaError(
                self._path,
                f"frame {i} is {source[1]}x{source[0]}, earlier frames are {self.source[1]}x{self.source[0]}",
            )
        slots = [self._frames[k] for k in self._positions[i]]  # [3, h, w] views
        self._jobs[i] = self._pool.submit(_resize_into, rgb, tuple(self._frames.shape[-2:]), slots)

    def result(self) -> torch.Tensor:
        """The clip's ``[T, 3, h, w]`` uint8 frames, once every kept frame is resized."""
        assert self._frames is not None
        for job in self._jobs.values():
            job.result()
        return self._frames


def load_video(
    path: str | Path,
    media: MediaConfig,
    *,
    geometry: VisionGeometry,
    start: float | None = None,
    end: float | None = None,
) -> VideoClip:
    """Decode the reference's frame sample of a video, resized once to the reference's frame size.

    Returns a :class:`VideoClip` with ``frames`` ``[T, 3, H, W]`` uint8 (T a multiple of
    ``geometry.temporal_patch_size``, H and W multiples of ``geometry.pixel_factor``: 28 for
    Qwen2/2.5-VL, 32 for Qwen3-VL), the source ``frame_indices``, ``sample_fps`` and the covered
    ``duration`` in seconds.
    Raises :class:`MediaError` for anything that is not a readable video with enough frames.
    """
    path = Path(path)
    with _open_video(path) as container:
        if not container.streams.video:
            raise MediaError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            index = _index_stream(container, stream)
        except av.error.FFmpegError as err:
            raise MediaError(path, f"corrupt container: {err}") from err
        if index.total_frames == 0:
            raise MediaError(path, "video stream has no frames")
        if index.total_frames < geometry.temporal_patch_size:
            raise MediaError(
                path,
                f"a video needs at least {geometry.temporal_patch_size} frames (one temporal patch), this "
                f"file has {index.total_frames} ({container.format.long_name})",
            )
        if index.declared_frames and index.packets < index.declared_frames:
            raise MediaError(
                path,
                f"truncated: container declares {index.declared_frames} frames, {index.packets} readable",
            )
        try:
            video_fps = _stream_fps(stream, index.total_frames)
            first, last = frame_window(index.total_frames, video_fps, start, end)
            window = last - first + 1
            indices = sample_frame_indices(
                index.total_frames, video_fps, media, geometry=geometry, start=start, end=end
            )
        except ValueError as err:
            raise MediaError(path, str(err)) from err
        needed = sorted(set(indices))

        def frame_size(height: int, width: int, count: int) -> tuple[int, int]:
            try:
                return video_frame_size(height, width, count, media, geometry=geometry)
            except ValueError as err:
                raise MediaError(path, str(err)) from err

        with _FrameResizer(path, indices, frame_size) as resizer:
            try:
                planned = False
                if index.pts is not None:
                    try:
                        _decode_with_seeks(container, stream, index, needed, resizer.keep)
                        planned = True
                    except _PlanFailed as why:
                        log.debug("%s: seek plan failed (%s); decoding sequentially", path, why)
                if not planned:
                    rank = {p: i for i, p in enumerate(index.pts)} if index.pts is not None else None
                    _decode_sequential(path, needed, rank, resizer.keep)
            except av.error.FFmpegError as err:
                raise MediaError(path, f"decoding failed: {err}") from err
            except _CorruptFrame as err:
                raise MediaError(path, f"corrupt video data: {err}") from err
            missing = [i for i in needed if i not in resizer]
            if missing:
                raise MediaError(
                    path,
                    f"truncated or corrupt: frames {missing} of {index.total_frames} could not be decoded",
                )
            frames = resizer.result()  # [T, 3, h, w] uint8
    return VideoClip(
        frames=frames,
        frame_indices=indices,
        sample_fps=len(indices) / window * video_fps,
        duration=window / video_fps,
        path=str(path),
    )


def load_image(path: str | Path, media: MediaConfig, *, geometry: VisionGeometry) -> ImageInput:
    """Open an image as RGB (alpha composited on white, as the reference) and smart-resize it (bicubic)
    to multiples of ``geometry.pixel_factor`` within ``media``'s image budget.

    A large image is reduced while it is decoded (:func:`videor1.data.images.decode_resized`), so a large
    JPEG or plain PNG is never held at full size. Pillow's decompression-bomb limit
    (``Image.MAX_IMAGE_PIXELS``) stays: it warns above 89 million pixels and refuses twice that.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(path, "file not found")
    try:
        with Image.open(path) as img:
            try:
                low, high = media.image_min_pixels, media.image_max_pixels
                height, width = smart_resize(
                    img.height, img.width, geometry.pixel_factor, min_pixels=low, max_pixels=high
                )
            except ValueError as err:
                raise MediaError(path, str(err)) from err
            rgb = decode_resized(img, (width, height))
    except (OSError, Image.DecompressionBombError, ValueError) as err:
        raise MediaError(path, f"cannot read image: {err}") from err
    pixels = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()  # [3, H, W]
    return ImageInput(pixels=pixels, path=str(path))


def load_media(
    sample: Sample, media_root: str | Path, media: MediaConfig, *, geometry: VisionGeometry
) -> VideoClip | ImageInput:
    """Load a record's image or video under ``media_root`` with the configured budgets, sized for the
    model's ``geometry`` (``get_adapter(model).geometry``).

    Errors name the record (``sample.source`` / ``problem_id``); nothing is ever substituted.
    """
    from videor1.data.records import MediaPathError, resolve_media_path

    record = sample.source or f"problem_id={sample.problem_id}"
    try:
        path = resolve_media_path(sample.path, media_root)
    except MediaPathError as err:
        raise MediaPathError(
            f"record {record} (problem_id={sample.problem_id!r}) field 'path': {err}"
        ) from err
    try:
        if sample.data_type == "video":
            return load_video(path, media, geometry=geometry)
        if sample.data_type == "image":
            return load_image(path, media, geometry=geometry)
    except MediaError as err:
        raise MediaError(err.path, err.cause, record=record) from err
    raise ValueError(f"record {record}: field data_type must be 'image' or 'video', got {sample.data_type!r}")
