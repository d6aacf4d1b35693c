"""Frame-count, index and size rules of REFERENCE §2 with hand-derived numbers; images; seek planning."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from videor1.config import MediaConfig
from videor1.data.frames import (
    num_sampled_frames,
    sample_frame_indices,
    smart_resize,
    video_frame_max_pixels,
    video_frame_size,
)
from videor1.data.media import MediaError, load_image, plan_seeks
from videor1.models.known import QWEN2_5_VL_GEOMETRY as QWEN25

TRAIN_PIXELS = 128 * 28 * 28  # 100,352
TRAIN = MediaConfig(video_min_pixels=TRAIN_PIXELS, video_max_pixels=TRAIN_PIXELS)


# (total_frames, video_fps, kwargs, expected indices), each derived by hand in the comment.
INDEX_TABLE = [
    # bikes: 250 f @ 25 → 10 s × 2 fps = 20 → clamp to max 16; step 249/15 = 16.6
    (250, 25.0, {}, [0, 17, 33, 50, 66, 83, 100, 116, 133, 149, 166, 183, 199, 216, 232, 249]),
    # carphone: 120 f @ 29.97 → 4.004 s → 8.008 → floor2 → 8; step 119/7 = 17
    (120, 30000 / 1001, {}, [0, 17, 34, 51, 68, 85, 102, 119]),
    # bigbuckbunny: 132 f @ 25 → 5.28 s → 10.56 → floor2 → 10; step 131/9 = 14.56
    (132, 25.0, {}, [0, 15, 29, 44, 58, 73, 87, 102, 116, 131]),
    # 6 f @ 30 → 0.4 → raised to min 4; step 5/3: 1.67 → 2, 3.33 → 3
    (6, 30.0, {}, [0, 2, 3, 5]),
    # 3 f: min 4 capped by total 3 → floor2 → 2
    (3, 30.0, {}, [0, 2]),
    # max_frames 15 → floor2 → 14 (100 f @ 10 fps → 10 s → 20 wanted); step 99/13 = 7.615
    (100, 10.0, {"max_frames": 15}, [0, 8, 15, 23, 30, 38, 46, 53, 61, 69, 76, 84, 91, 99]),
    # min_frames 5 → ceil2 → 6 (100 f @ 50 fps → 2 s → 4 wanted); step 99/5 = 19.8
    (100, 50.0, {"min_frames": 5}, [0, 20, 40, 59, 79, 99]),
    # fps 1.0: 250 f @ 25 → 10 frames; step 249/9 = 27.67
    (250, 25.0, {"fps": 1.0}, [0, 28, 55, 83, 111, 138, 166, 194, 221, 249]),
    # fixed nframes 4; step 33
    (100, 25.0, {"nframes": 4}, [0, 33, 66, 99]),
    # fixed nframes 8; step 99/7 = 14.14
    (100, 25.0, {"nframes": 8}, [0, 14, 28, 42, 57, 71, 85, 99]),
    # window 2 s..6 s of 250 f @ 25: frames ceil(50)..floor(150) = 101 f → 4.04 s → 8 f; step 100/7
    (250, 25.0, {"start": 2.0, "end": 6.0}, [50, 64, 79, 93, 107, 121, 136, 150]),
    # window from 8 s to the end: frames 200..249 = 50 f → 2 s → 4 f; step 49/3 = 16.33
    (250, 25.0, {"start": 8.0}, [200, 216, 233, 249]),
]


@pytest.mark.parametrize(("total", "fps", "kwargs", "expected"), INDEX_TABLE)
def test_sample_frame_indices_table(total, fps, kwargs, expected):
    window = {key: kwargs.pop(key) for key in ("start", "end") if key in kwargs}
    assert sample_frame_indices(total, fps, MediaConfig(**kwargs), geometry=QWEN25, **window) == expected


def test_frame_count_must_fit():
    with pytest.raises(ValueError, match="cannot sample 0 frames"):
        sample_frame_indices(1, 25.0, MediaConfig(), geometry=QWEN25)
    with pytest.raises(ValueError, match=r"cannot sample 8 frames"):
        num_sampled_frames(6, 25.0, MediaConfig(nframes=8), geometry=QWEN25)
    with pytest.raises(ValueError, match="empty time window"):
        sample_frame_indices(250, 25.0, MediaConfig(), geometry=QWEN25, start=5.0, end=5.0)


@pytest.mark.parametrize(("nframes", "use"), [(3, "2 or 4"), (5, "4 or 6"), (7, "6 or 8"), (1, "2")])
def test_fixed_frame_count_off_the_temporal_patch_is_an_error(nframes, use):
    # the reference rounds 5 to 4 and 7 to 8, so a run would record a count it did not use
    with pytest.raises(ValueError, match=rf"nframes={nframes} is not a multiple of .* use {use}$"):
        num_sampled_frames(100, 25.0, MediaConfig(nframes=nframes), geometry=QWEN25)


def test_smart_resize_reference_examples():
    # 640×360 with the training budget: effective max = max(min(100352, inf), int(100352 × 1.05)) = 105369;
    # rounded 364×644 = 234416 > max → β = sqrt(230400 / 105369) = 1.4787 → floor(8.69)·28, floor(15.46)·28
    assert video_frame_max_pixels(TRAIN_PIXELS, TRAIN_PIXELS, None, 16, geometry=QWEN25) == 105369
    assert video_frame_size(360, 640, 16, TRAIN, geometry=QWEN25) == (224, 420)
    assert (224 // 28) * (420 // 28) == 120  # tokens per frame pair (REFERENCE §2)
    # 308×336 = 103488 lies between 100352 and 105369: the 5% slack keeps it as is …
    assert video_frame_size(308, 336, 16, TRAIN, geometry=QWEN25) == (308, 336)
    # … where a plain max of 100352 shrinks it: β = 1.0155 → floor(10.83)·28, floor(11.82)·28
    assert smart_resize(308, 336, 28, min_pixels=TRAIN_PIXELS, max_pixels=TRAIN_PIXELS) == (280, 308)
    # 176×144 is too small: rounded 140×168 = 23520 < min → β = sqrt(100352 / 25344) = 1.9899 → ceil
    assert video_frame_size(144, 176, 8, TRAIN, geometry=QWEN25) == (308, 364)
    # A clip budget binds: total 401408 over 16 frames → 401408 / 16 × 2 = 50176 per frame;
    # 272×640: β = sqrt(174080 / 50176) = 1.8626 → floor(5.22)·28 = 140, floor(12.27)·28 = 336
    assert video_frame_max_pixels(3136, 602112, 401408, 16, geometry=QWEN25) == 50176
    clip_budget = MediaConfig(video_min_pixels=3136, video_max_pixels=602112, video_total_pixels=401408)
    assert video_frame_size(272, 640, 16, clip_budget, geometry=QWEN25) == (140, 336)


def test_smart_resize_keeps_multiples_and_rejects_bad_input():
    for h, w in [(28, 28), (100, 1000), (1080, 1920), (33, 47)]:
        rh, rw = smart_resize(h, w, 28, min_pixels=3136, max_pixels=200704)
        assert rh % 28 == 0 and rw % 28 == 0
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 3000, 28, min_pixels=3136, max_pixels=200704)
    with pytest.raises(ValueError, match="min_pixels"):
        smart_resize(100, 100, 28, min_pixels=10, max_pixels=5)


def test_plan_seeks_prefers_the_cheaper_path():
    # keyframes every 30 frames: 5 seeks to 0, 7 decodes on; 40 seeks to 30 (40-30+2 < 40-7)
    assert plan_seeks([5, 7, 40, 41], [0, 30, 60]) == [0, None, 30, None]
    # 31 is one past keyframe 30, but decoding on from 29 is 2 frames: no seek
    assert plan_seeks([29, 31], [0, 30]) == [0, None]
    # single keyframe (bigbuckbunny): never seek after the first
    assert plan_seeks([0, 50, 100], [0]) == [0, None, None]
    # first needed frame seeks to its own GOP
    assert plan_seeks([65], [0, 30, 60]) == [60]


def test_load_image_resizes_and_composites_alpha(tmp_path):
    rgba = Image.new("RGBA", (300, 200), (10, 20, 30, 0))  # fully transparent → white
    rgba.paste((200, 0, 0, 255), (0, 0, 150, 200))  # opaque red left half
    path = tmp_path / "x.png"
    rgba.save(path)
    image = load_image(path, MediaConfig(image_min_pixels=3136), geometry=QWEN25)
    # 200×300 → rounded 196×308 = 60368 within [3136, 200704]
    assert image.pixels.dtype == torch.uint8 and tuple(image.pixels.shape) == (3, 196, 308)
    assert image.pixels[:, 100, 300].tolist() == [255, 255, 255]
    assert image.pixels[:, 100, 10].tolist() == [200, 0, 0]


def test_load_image_errors(tmp_path):
    with pytest.raises(MediaError, match="file not found") as err:
        load_image(tmp_path / "none.png", MediaConfig(), geometry=QWEN25)
    assert err.value.path.endswith("none.png") and err.value.cause == "file not found"
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(MediaError, match="bad.jpg.*cannot read image"):
        load_image(bad, MediaConfig(), geometry=QWEN25)


def test_load_media_dispatches_and_names_the_record(tmp_path, real_clips):
    import shutil

    from videor1.data.media import load_media
    from videor1.types import ImageInput, Sample, VideoClip

    shutil.copy(real_clips["carphone_pristine"], tmp_path / "clip.mp4")
    Image.new("RGB", (64, 32)).save(tmp_path / "im.png")
    cfg = MediaConfig(
        video_min_pixels=3136, video_max_pixels=3136, image_min_pixels=3136, image_max_pixels=3136
    )

    def sample(kind: str, path: str) -> Sample:
        return Sample(7, "q", kind, "free-form", [], "<answer>x</answer>", path, source="d.json[3]")

    clip = load_media(sample("video", "./clip.mp4"), tmp_path, cfg, geometry=QWEN25)
    assert isinstance(clip, VideoClip) and clip.num_frames == 8
    # 144×176 → rounded 140×168 = 23520 > 3292 (3136 × 1.05) → β = sqrt(25344 / 3292) = 2.775 → floor(1.85)·28, floor(2.26)·28
    assert tuple(clip.frames.shape[-2:]) == (28, 56)
    image = load_media(sample("image", "./im.png"), tmp_path, cfg, geometry=QWEN25)
    # 32×64 → rounded 28×56 = 1568 < 3136 → β = sqrt(3136 / 2048) = 1.2374 → ceil(1.41)·28, ceil(2.83)·28
    assert isinstance(image, ImageInput) and tuple(image.pixels.shape) == (3, 56, 84)
    (tmp_path / "broken.mp4").write_text("no")
    with pytest.raises(MediaError, match=r"broken\.mp4 \(record d\.json\[3\]\): cannot open") as err:
        load_media(sample("video", "./broken.mp4"), tmp_path, cfg, geometry=QWEN25)
    assert err.value.record == "d.json[3]"
    with pytest.raises(ValueError, match=r"d\.json\[3\]: field data_type"):
        load_media(sample("audio", "./im.png"), tmp_path, cfg, geometry=QWEN25)


@pytest.mark.parametrize(
    ("src", "dst"), [((45, 80), (28, 56)), ((30, 30), (56, 84)), ((64, 48), (56, 28)), ((28, 56), (28, 56))]
)
def test_per_frame_resize_is_torchvision_bicubic_antialias(src, dst):
    # the reference resizes the stacked [T, 3, H, W] view of decoded [T, H, W, 3] frames in one call;
    # we resize frame by frame as they are decoded: the bytes must be the same
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    from videor1.data.media import _resize_rgb

    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (4, *src, 3), dtype=torch.uint8, generator=gen)  # [T, H, W, 3]
    expected = TF.resize(
        frames.permute(0, 3, 1, 2), list(dst), interpolation=InterpolationMode.BICUBIC, antialias=True
    )
    got = torch.stack([_resize_rgb(f.numpy(), dst) for f in frames])
    assert got.dtype == torch.uint8 and torch.equal(got, expected)
