"""The generated dataset on disk: schema, media, determinism, meta.json, loading and a contact sheet."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from videor1.data.synth import FAMILIES, generate_dataset
from videor1.data.synth.render import VIDEO_FPS, read_video

REQUIRED = [
    "problem_id",
    "problem",
    "data_type",
    "problem_type",
    "options",
    "solution",
    "path",
    "data_source",
]


def _load(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_files_follow_the_video_r1_schema(synth_dir):
    train, test = _load(synth_dir / "train.json"), _load(synth_dir / "test.json")
    cot = _load(synth_dir / "train_cot.json")
    assert len(train) == 24 and len(test) == 12 and len(cot) == 24
    ids = [r["problem_id"] for r in train + test]
    assert ids == list(range(36))
    for rec in train + test:
        assert list(rec)[:8] == REQUIRED and rec["family"] in FAMILIES
        assert rec["data_source"] == f"videor1-synth/{rec['family']}"
        assert rec["order_dependent"] is FAMILIES[rec["family"]].order_dependent
        assert rec["solution"].startswith("<answer>") and rec["solution"].endswith("</answer>")
        assert rec["path"].startswith("./") and (synth_dir / rec["path"]).is_file()
        assert rec["path"].endswith(".mp4" if rec["data_type"] == "video" else ".png")
        if rec["problem_type"] == "multiple choice":
            assert rec["solution"][8:-9] in [o[0] for o in rec["options"]]
        else:
            assert rec["options"] == []
    assert Counter(r["family"] for r in test) == dict.fromkeys(FAMILIES, 1)
    for plain, with_cot in zip(train, cot, strict=True):
        process = with_cot.pop("process")
        assert with_cot == plain and process.startswith("<think>") and process.endswith("</think>")


def test_records_load_and_media_decode_with_the_project_loaders(synth_dir):
    from videor1.config import MediaConfig
    from videor1.data.media import load_image, load_video
    from videor1.data.records import load_records
    from videor1.models.known import QWEN2_5_VL_GEOMETRY as QWEN25

    samples = load_records(synth_dir / "test.json")
    assert [s.extra["family"] for s in samples] == list(FAMILIES)
    video = next(s for s in samples if s.data_type == "video")
    pixels = {"video_min_pixels", "video_max_pixels", "image_min_pixels", "image_max_pixels"}
    budget = MediaConfig(**dict.fromkeys(pixels, 112 * 112))
    clip = load_video(synth_dir / video.path, budget, geometry=QWEN25)
    # 8 frames written at 2 fps = 4 s; the reference's 2 fps sampling keeps every frame
    assert clip.frame_indices == list(range(8)) and clip.sample_fps == VIDEO_FPS
    assert tuple(clip.frames.shape) == (8, 3, 112, 112)
    image = next(s for s in samples if s.data_type == "image")
    assert tuple(load_image(synth_dir / image.path, budget, geometry=QWEN25).pixels.shape) == (
        3,
        112,
        112,
    )


def test_decoded_frames_keep_solid_colours(synth_dir):
    rec = next(r for r in _load(synth_dir / "test.json") if r["family"] == "transitions")
    frames = read_video(synth_dir / rec["path"]).astype(int)
    assert frames.shape == (8, 112, 112, 3)
    centre = frames[:, 56, 56]  # the square covers the centre; H.264 keeps its colour within a few levels
    corner = frames[:, 2, 2]
    assert (centre.max(axis=1) > 180).all() and (corner.max(axis=1) < 20).all()
    colours = {tuple(c // 64) for c in centre}
    assert len(colours) == 2  # two colours, as the question says


def test_meta_reports_chance_and_sensitivity(synth_dir):
    meta = _load(synth_dir / "meta.json")
    assert meta["counts"] == {"train": 24, "test": 12} and meta["fps"] == VIDEO_FPS and meta["frames"] == 8
    assert set(meta["families"]) == set(FAMILIES)
    for name, info in meta["families"].items():
        assert 0 < info["chance"] < 1 and info["counts"] == {"train": 2, "test": 1}
        assert info["shuffle_sensitivity"] >= info["min_shuffle_sensitivity"], name
    assert meta["families"]["direction"]["chance"] == 0.25


def test_same_seed_gives_identical_files_and_frames_for_any_jobs(tmp_path):
    families = ["direction", "ocr_reveal", "image_count"]
    a = generate_dataset(tmp_path / "a", train=6, test=3, seed=4, families=families, frames=8, jobs=1)
    b = generate_dataset(tmp_path / "b", train=6, test=3, seed=4, families=families, frames=8, jobs=2)
    for name in ("train.json", "test.json", "train_cot.json", "meta.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for rec in _load(a / "train.json") + _load(a / "test.json"):
        if rec["data_type"] == "video":
            assert np.array_equal(read_video(a / rec["path"]), read_video(b / rec["path"])), rec["path"]
        else:
            assert (a / rec["path"]).read_bytes() == (b / rec["path"]).read_bytes()
    c = generate_dataset(tmp_path / "c", train=6, test=3, seed=5, families=families, frames=8, jobs=1)
    assert (a / "train.json").read_bytes() != (c / "train.json").read_bytes()


def test_contact_sheet_of_every_family(synth_dir, tmp_path):
    from videor1.data.inspect import inspect_file

    sheet = tmp_path / "sheet.png"
    inspect_file(synth_dir / "test.json", n=4, out=sheet, sheet_frames=8)
    with Image.open(sheet) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 0 or ((pixels[..., 2] > 200) & (pixels[..., 0] < 80)).sum() > 0  # shapes are drawn
