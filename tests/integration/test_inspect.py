"""`videor1 data inspect`: counts, distributions from container metadata, a deterministic contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from videor1.cli import main
from videor1.data.inspect import inspect_file, probe_video
from videor1.data.records import RecordError


def write_video(path: Path, frames: int, rate: int = 8, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.full((size[1], size[0], 3), (i * 20) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def record(pid, **kw):
    base = {
        "problem_id": pid,
        "problem": "Which color comes first?",  # 24 characters, 4 words
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": ["A. red", "B. blue"],
        "solution": "<answer>A</answer>",
        "path": "./v/short.mp4",
        "data_source": "clips",
    }
    base.update(kw)
    return base


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inspect")
    write_video(root / "v" / "short.mp4", frames=12)  # 1.5 s at 8 fps
    write_video(root / "v" / "long.mp4", frames=24)  # 3.0 s
    (root / "i").mkdir()
    Image.fromarray(np.full((56, 84, 3), 128, np.uint8)).save(root / "i" / "a.png")
    records = [
        record(1),
        record(2, path="v/short.mp4", solution="<answer>B</answer>"),  # same file, other spelling
        record(3, path="./v/long.mp4"),
        record(
            4,
            data_type="image",
            problem_type="numerical",
            options=[],
            problem="How many?",  # 9 characters, 2 words
            solution="<answer>2</answer>",
            path="./i/a.png",
            data_source="pics",
        ),
        record(5, problem_type="essay"),  # invalid: left out of every statistic
    ]
    f = root / "train.json"
    f.write_text(json.dumps(records))
    return f


def test_counts_and_distributions(dataset):
    result = inspect_file(dataset, n=0)
    assert result.total == 5 and result.invalid == 1
    assert result.counts == {("video", "multiple choice"): 3, ("image", "numerical"): 1}
    assert result.sources == {"clips": 3, "pics": 1}
    assert result.answers == {"A": 2, "B": 1}
    # Question text of a multiple-choice record: 24 + len("Options:\n") 9 + len("A. red\n") 7 + len("B. blue\n") 8 = 48.
    assert result.question_chars.minimum == 9 and result.question_chars.maximum == 48
    assert result.question_chars.mean == pytest.approx((48 * 3 + 9) / 4)
    # "Which color comes first?Options:" is one word: 4 + 4 = 8 words; "How many?" = 2.
    assert result.question_words.maximum == 8 and result.question_words.minimum == 2
    assert result.video_files == 2 and result.videos_probed == 2
    assert (result.video_frames.minimum, result.video_frames.maximum) == (12, 24)
    assert result.video_duration.minimum == pytest.approx(1.5)
    assert result.video_duration.maximum == pytest.approx(3.0)
    assert result.video_fps.p50 == pytest.approx(8.0)


def test_probe_video_errors(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(RecordError, match="bad.mp4"):
        probe_video(bad)


def test_sample_is_deterministic_and_sheet_is_drawn(dataset, tmp_path):
    a = inspect_file(dataset, n=3, seed=7, out=tmp_path / "a.png", probe_limit=0, sheet_frames=4)
    b = inspect_file(dataset, n=3, seed=7, probe_limit=0)
    assert [s.problem_id for s in a.sampled] == [s.problem_id for s in b.sampled]
    assert len({s.problem_id for s in a.sampled}) == 3 and 5 not in {s.problem_id for s in a.sampled}
    with Image.open(a.sheet) as img:
        assert img.format == "PNG" and img.width > 200 and img.height > 3 * 100


def test_sheet_shows_missing_media_without_crashing(tmp_path):
    f = tmp_path / "x.json"
    f.write_text(json.dumps([record(1, path="./nowhere.mp4")]))
    result = inspect_file(f, n=1, out=tmp_path / "s.png", sheet_frames=2)
    assert result.sheet.exists()
    assert result.probe_errors and "nowhere.mp4" in result.probe_errors[0]


def test_cli(dataset, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["-q", "data", "inspect", str(dataset), "--n", "2", "--frames", "2", "--out", str(out)]) == 0
    assert out.exists()
    printed = capsys.readouterr().out
    assert "multiple choice" in printed and "video frames" in printed
    assert main(["-q", "data", "inspect", str(tmp_path / "missing.json")]) == 2
