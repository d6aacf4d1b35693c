"""Drawing frame states and writing them as ``.mp4`` (PyAV) or ``.png`` (Pillow).

Frames are solid shapes on a black background. Videos are H.264 (yuv420p, CRF 12, GOP 2, no
B-frames, one encoder thread) at :data:`VIDEO_FPS` frames per second, so the reference's 2 fps frame
sampling (Video-R1's media rules) keeps every frame and each pair of frames (one ViT temporal patch) is one
second. One encoder thread keeps the encoded bytes, and so the decoded frames, identical for the
same input. Letters use Pillow's bundled default TrueType font.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from videor1.data.synth.base import COLORS, FrameState

VIDEO_FPS = 2
"""Frames per second written into every video (a clip of N frames lasts N / 2 seconds)."""
BACKGROUND = (0, 0, 0)
WHITE = (255, 255, 255)


@lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=px)


def _rgb(name: str) -> tuple[int, int, int]:
    return WHITE if name == "white" else COLORS[name]


def draw_frame(state: FrameState, size: int) -> np.ndarray:
    """One frame as ``[size, size, 3]`` uint8 RGB."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for shape in state:
        box = (round(shape.x), round(shape.y), round(shape.x + shape.w) - 1, round(shape.y + shape.h) - 1)
        color = _rgb(shape.color)
        if shape.kind in ("square", "bar"):
            draw.rectangle(box, fill=color)
        elif shape.kind == "circle":
            draw.ellipse(box, fill=color)
        elif shape.kind == "letter":
            font = _font(max(8, round(shape.h)))
            cx, cy = shape.x + shape.w / 2, shape.y + shape.h / 2
            draw.text((cx, cy), shape.text, fill=color, font=font, anchor="mm")
        else:
            raise ValueError(f"unknown shape kind {shape.kind!r}")
    return np.asarray(image, dtype=np.uint8)


def draw_frames(states: list[FrameState], size: int) -> np.ndarray:
    """All frames as ``[T, size, size, 3]`` uint8 RGB."""
    return np.stack([draw_frame(s, size) for s in states])


def write_video(frames: np.ndarray, path: Path, *, fps: int = VIDEO_FPS) -> None:
    """Encode ``[T, H, W, 3]`` uint8 RGB frames as H.264 mp4 (deterministic encoder settings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _, height, width, _ = frames.shape
    with av.open(str(path), mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(
            "libx264",
            rate=Fraction(fps),
            options={"crf": "12", "preset": "veryfast", "g": "2", "bf": "0", "threads": "1"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for frame_rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_image(frame: np.ndarray, path: Path) -> None:
    """Write ``[H, W, 3]`` uint8 RGB as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path, format="PNG")


def read_video(path: Path) -> np.ndarray:
    """Decode every frame of a video as ``[T, H, W, 3]`` uint8 RGB (used by tests and checks)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
