"""Decoding: frames equal a full sequential decode at the same indices; bad files raise MediaError."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from videor1.config import MediaConfig
from videor1.data import media
from videor1.data.media import MediaError, load_video
from videor1.models.known import QWEN2_5_VL_GEOMETRY as QWEN25

SMALL = MediaConfig(video_min_pixels=3136, video_max_pixels=3136)


def sequential_reference(path: Path, indices: list[int], size: tuple[int, int]) -> torch.Tensor:
    """Decode every frame in order, pick ``indices``, resize as the reference (torchvision, bicubic, AA)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    picked = torch.from_numpy(np.stack([frames[i] for i in indices])).permute(0, 3, 1, 2).contiguous()
    return TF.resize(picked, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)


def write_clip(
    path: Path,
    *,
    frames: int = 48,
    gop: int = 6,
    codec: str = "libx264",
    bframes: int = 0,
    fmt: str | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """A small clip whose every frame is distinct (moving bar + frame-coded colour)."""
    h, w = 48, 64
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = bframes
        if codec == "libx264":
            stream.options = {
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:b-pyramid=none"
            }
        for i in range(frames):
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[..., 0] = (i * 5) % 256
            rgb[(i * 3) % h, :, 1] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("name", ["bigbuckbunny", "bikes", "carphone_pristine"])
def test_real_clips_match_sequential_decode(real_clips, name):
    path = real_clips[name]
    clip = load_video(path, MediaConfig(), geometry=QWEN25)
    expected_t = {"bigbuckbunny": 10, "bikes": 16, "carphone_pristine": 8}[name]
    expected_hw = {"bigbuckbunny": (224, 420), "bikes": (196, 476), "carphone_pristine": (308, 364)}[name]
    assert clip.frames.dtype == torch.uint8
    assert tuple(clip.frames.shape) == (expected_t, 3, *expected_hw)
    assert torch.equal(clip.frames, sequential_reference(path, clip.frame_indices, expected_hw))


def test_real_clip_window_and_dense_sampling(real_clips):
    # bikes has keyframes at 0, 30, 76, 137, 187, 242: a window from 5.5 s needs a seek past three GOPs
    path = real_clips["bikes"]
    budget = MediaConfig(fps=8.0, max_frames=32, video_min_pixels=3136, video_max_pixels=50176)
    clip = load_video(path, budget, start=5.5, end=9.0, geometry=QWEN25)
    # frames ceil(137.5) = 138 .. 225 → 88 f = 3.52 s × 8 fps = 28.16 → 28 frames
    assert clip.frame_indices[0] == 138 and clip.frame_indices[-1] == 225 and clip.num_frames == 28
    assert clip.duration == pytest.approx(88 / 25)
    assert clip.sample_fps == pytest.approx(28 / 88 * 25)
    size = tuple(clip.frames.shape[-2:])
    assert torch.equal(clip.frames, sequential_reference(path, clip.frame_indices, size))


@pytest.mark.parametrize(
    ("suffix", "codec", "bframes", "fmt"),
    [
        (".mp4", "libx264", 0, None),
        (".mp4", "libx264", 2, None),  # B-frames: decode order differs from presentation order
        (".mkv", "libx264", 2, None),  # no declared frame count, millisecond timestamps
        (".mp4", "mpeg4", 2, None),
        (".h264", "libx264", 0, "h264"),  # raw stream without timestamps → counting from frame 0
    ],
)
def test_generated_clips_match_sequential_decode(tmp_path, suffix, codec, bframes, fmt):
    path = write_clip(tmp_path / f"clip{suffix}", codec=codec, bframes=bframes, fmt=fmt)
    for kwargs in ({}, {"fps": 7.0, "max_frames": 12}, {"nframes": 6}, {"fps": 25.0, "max_frames": 48}):
        clip = load_video(
            path, MediaConfig(video_min_pixels=3136, video_max_pixels=3136 * 4, **kwargs), geometry=QWEN25
        )
        assert clip.num_frames % 2 == 0
        size = tuple(clip.frames.shape[-2:])
        assert torch.equal(clip.frames, sequential_reference(path, clip.frame_indices, size)), kwargs


def test_seeking_decodes_fewer_frames(tmp_path, monkeypatch):
    # 240 frames with a keyframe every 6: 16 sampled frames need ~16 GOP starts, not 240 frames
    path = write_clip(tmp_path / "long.mp4", frames=240, gop=6)
    seen = []
    real_rgb = media._rgb
    monkeypatch.setattr(media, "_rgb", lambda frame: seen.append(frame.pts) or real_rgb(frame))
    decoded = []
    real_decode = av.packet.Packet.decode

    def counting_decode(packet):
        frames = real_decode(packet)
        decoded.extend(frames)
        return frames

    monkeypatch.setattr(av.packet.Packet, "decode", counting_decode)
    clip = load_video(path, SMALL, geometry=QWEN25)
    assert clip.num_frames == 16 and len(seen) == 16
    assert len(decoded) < 240 // 2


def test_missing_and_non_video_files(tmp_path):
    with pytest.raises(MediaError, match="file not found") as err:
        load_video(tmp_path / "nope.mp4", MediaConfig(), geometry=QWEN25)
    assert err.value.path == str(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(MediaError, match=r"empty\.mp4: empty file"):
        load_video(empty, MediaConfig(), geometry=QWEN25)
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(MediaError, match=r"text\.mp4: ") as err:
        load_video(text, MediaConfig(), geometry=QWEN25)
    assert err.value.cause
    with pytest.raises(MediaError, match="not a regular file"):
        load_video(tmp_path, MediaConfig(), geometry=QWEN25)


def test_truncated_real_clip(real_clips, tmp_path):
    source = real_clips["bikes"]
    data = source.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=r"cut\.mp4: ") as err:
        load_video(cut, MediaConfig(), geometry=QWEN25)
    assert "truncated" in err.value.cause or "cannot open" in err.value.cause
    shutil.copy(source, tmp_path / "ok.mp4")
    assert load_video(tmp_path / "ok.mp4", MediaConfig(), geometry=QWEN25).num_frames == 16


def test_corrupt_keyframe_data(tmp_path):
    # a noisy clip so the keyframe is large, then garbage in the middle of its slice data
    rng = np.random.default_rng(0)
    path = tmp_path / "c.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.options = {"x264-params": "keyint=48:min-keyint=48:scenecut=0:bframes=0"}
        base = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        for i in range(48):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.roll(base, i, axis=1), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert load_video(path, SMALL, geometry=QWEN25).num_frames == 4
    with av.open(str(path)) as container:
        first = next(p for p in container.demux(video=0) if p.size)
        pos, size = first.pos, first.size
    data = bytearray(path.read_bytes())
    data[pos + size // 2 : pos + size // 2 + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"c\.mp4: corrupt video data: .*frame 0") as err:
        load_video(path, SMALL, geometry=QWEN25)
    assert err.value.path == str(path)


def test_zero_frame_video(tmp_path):
    for suffix in (".mp4", ".mkv"):
        path = tmp_path / f"zero{suffix}"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            out.start_encoding()  # header written, no frame ever muxed
        assert path.stat().st_size > 0
        with pytest.raises(MediaError, match=rf"zero\{suffix}: (no video stream|cannot open)"):
            load_video(path, MediaConfig(), geometry=QWEN25)


def test_truncated_faststart_clip(tmp_path):
    # moov first (index intact), media data cut in half: fewer packets than the index declares
    path = write_clip(tmp_path / "fs.mp4", frames=48, gop=6, options={"movflags": "faststart"})
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        MediaError, match=r"fs_cut\.mp4: truncated: container declares 48 frames, \d+ readable"
    ):
        load_video(cut, SMALL, geometry=QWEN25)


@pytest.mark.parametrize("name", ["x.png", "one.mp4"])
def test_a_single_picture_is_not_a_video(tmp_path, name):
    # PyAV opens an image as a 1-frame video; the frame rule alone said "cannot sample 0 frames
    # (must be in [2, 1])", naming neither the file's frame count as the cause nor that it is an image
    path = tmp_path / name
    if name.endswith(".png"):
        Image.new("RGB", (64, 48), (200, 10, 10)).save(path)
        kind = "piped png sequence"
    else:
        write_clip(path, frames=1)
        kind = "QuickTime / MOV"
    with pytest.raises(MediaError) as err:
        load_video(path, MediaConfig(), geometry=QWEN25)
    assert str(err.value) == (
        f"{path}: a video needs at least 2 frames (one temporal patch), this file has 1 ({kind})"
    )


def test_audio_only_file(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(MediaError, match="no video stream"):
        load_video(path, MediaConfig(), geometry=QWEN25)


def test_unneeded_non_reference_frames_are_not_decoded(tmp_path, monkeypatch):
    # x264 with 3 B-frames and no pyramid: every B-frame is a non-reference frame (nal_ref_idc = 0)
    path = tmp_path / "b.mp4"
    write_clip(path, frames=96, gop=96, bframes=3)
    skipped = []
    real_test = media._nonref_test

    def counting_test(stream):
        test = real_test(stream)
        return lambda packet: test(packet) and not skipped.append(packet.pts)

    monkeypatch.setattr(media, "_nonref_test", counting_test)
    clip = load_video(
        path, MediaConfig(fps=4.0, video_min_pixels=3136, video_max_pixels=3136), geometry=QWEN25
    )
    # 3.84 s × 4 fps → 14 frames
    assert clip.num_frames == 14
    assert len(skipped) > 30  # about 3 of every 4 frames are B-frames; none of the 14 needed is skipped
    assert torch.equal(
        clip.frames, sequential_reference(path, clip.frame_indices, tuple(clip.frames.shape[-2:]))
    )


def test_h264_ref_idc_parsing():
    # AVCC: two NALs with 4-byte lengths: SEI (type 6, ignored) and a non-reference slice (0x01: idc 0, type 1)
    avcc = b"\x00\x00\x00\x02\x06\xff" + b"\x00\x00\x00\x03\x01\xaa\xbb"
    assert media._h264_slice_ref_idcs(avcc, 4) == [0]
    # Annex B: reference P slice (0x41: idc 2, type 1) then IDR (0x65: idc 3, type 5)
    annexb = b"\x00\x00\x00\x01\x41\x9a" + b"\x00\x00\x01\x65\x88"
    assert media._h264_slice_ref_idcs(annexb, None) == [2, 3]


def test_timestamp_mismatch_falls_back_to_counting(tmp_path, monkeypatch):
    # a decoder whose frames carry timestamps the packet index does not know: decode by counting instead
    path = write_clip(tmp_path / "b.mp4", frames=48, gop=6, bframes=2)
    expected = load_video(path, SMALL, geometry=QWEN25)

    def plan_fails(*args):
        raise media._PlanFailed("decoded a frame with unindexed pts 12345")

    monkeypatch.setattr(media, "_decode_with_seeks", plan_fails)
    clip = load_video(path, SMALL, geometry=QWEN25)
    assert clip.frame_indices == expected.frame_indices
    assert torch.equal(clip.frames, expected.frames)


def test_stream_starting_without_a_keyframe(tmp_path):
    # remux a clip without its first 4 packets: frames 0..7 of the new stream precede its first keyframe
    source = write_clip(tmp_path / "src.mp4", frames=48, gop=12)
    cut = tmp_path / "cut.mkv"
    with av.open(str(source)) as inp, av.open(str(cut), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        packets = [p for p in inp.demux(video=0) if p.size]
        for packet in packets[4:]:
            packet.stream = stream
            out.mux(packet)
    with pytest.raises(
        MediaError, match=r"cut\.mkv: truncated or corrupt: frames \[0\] of 44 could not be decoded"
    ):
        load_video(cut, SMALL, geometry=QWEN25)
    # from 0.5 s on (frame 13 of the cut stream = frame 17 of the source) everything decodes, at the right index
    clip = load_video(cut, SMALL, start=0.5, geometry=QWEN25)
    assert clip.frame_indices == [13, 23, 33, 43]
    expected = sequential_reference(
        source, [i + 4 for i in clip.frame_indices], tuple(clip.frames.shape[-2:])
    )
    assert torch.equal(clip.frames, expected)


def test_resize_worker_leaves_torch_threads_as_found(tmp_path):
    # the resize worker runs torch single-threaded; threads started afterwards must see the old count
    import threading

    path = write_clip(tmp_path / "t.mp4", frames=24, gop=6)
    found = torch.get_num_threads()
    torch.set_num_threads(2)  # not 1, so that the worker's setting would show
    try:
        load_video(path, MediaConfig(video_min_pixels=3136, video_max_pixels=3136 * 2), geometry=QWEN25)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert torch.get_num_threads() == 2 and seen == [2]
    finally:
        torch.set_num_threads(found)


def test_frames_of_different_sizes_raise(monkeypatch):
    sizes = iter([(48, 64), (48, 64), (40, 64)])
    monkeypatch.setattr(media, "_rgb", lambda frame: np.full((*next(sizes), 3), 0, np.uint8))
    with media._FrameResizer(Path("v.mp4"), [0, 3, 3, 7], lambda h, w, n: (56, 56 * n)) as resizer:
        resizer.keep(0, None)
        resizer.keep(3, None)
        with pytest.raises(MediaError, match=r"v\.mp4: frame 7 is 64x40, earlier frames are 64x48"):
            resizer.keep(7, None)
        assert 3 in resizer and 7 not in resizer
        frames = resizer.result()
        assert tuple(frames.shape) == (4, 3, 56, 224) and not frames[:3].any()
