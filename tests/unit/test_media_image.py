"""Images: decoded at reduced size when the budget allows, the same bytes as before when it does not."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from videor1.config import MediaConfig
from videor1.data import images
from videor1.data.images import REDUCING_GAP
from videor1.data.media import MediaError, load_image
from videor1.models.known import QWEN2_5_VL_GEOMETRY as QWEN25

BUDGET = MediaConfig()  # images 4·28·28 .. 256·28·28 pixels


def picture(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Smooth gradients plus noise and hard edges, so that the PNG encoder picks every row filter."""
    w, h = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgba = np.stack([x * 255 // w, y * 255 // h, (x ^ y) & 255, 255 - (x + y) * 255 // (w + h)], axis=-1)
    rgba[h // 3 : h // 2, w // 4 : w // 2] = rng.integers(0, 256, (h // 2 - h // 3, w // 2 - w // 4, 4))
    img = Image.fromarray(rgba.astype(np.uint8), "RGBA")
    if mode == "P":
        return img.convert("RGB").quantize(200)
    return img.convert(mode)


def reference_resize(img: Image.Image, size: tuple[int, int], reducing_gap: float | None) -> torch.Tensor:
    """The loader before reduced decoding, with Pillow's own resize: full decode, RGB, one resize."""
    img.load()
    if img.mode == "RGBA":
        rgb = Image.new("RGB", img.size, (255, 255, 255))
        rgb.paste(img, mask=img.split()[3])
    else:
        rgb = img.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, resample=Image.Resampling.BICUBIC, reducing_gap=reducing_gap)
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)


SMALL = MediaConfig(image_min_pixels=56 * 56, image_max_pixels=84 * 84)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P"])
@pytest.mark.parametrize(("size", "budget"), [((300, 200), BUDGET), ((500, 330), SMALL), ((60, 40), SMALL)])
def test_images_within_the_reduction_gap_decode_as_before(tmp_path, mode, size, budget):
    # 330×500 at most 7056 px: β = sqrt(165000 / 7056) = 4.84 → 56×84; 500 / 84 / 3 = 1.98 and
    # 330 / 56 / 3 = 1.96, so no integer reduction. 40×60 is scaled up, 200×300 only rounded.
    path = tmp_path / f"{mode}.png"
    picture(mode, size).save(path)
    got = load_image(path, budget, geometry=QWEN25).pixels
    with Image.open(path) as img:
        assert torch.equal(got, reference_resize(img, (got.shape[2], got.shape[1]), reducing_gap=None))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P"])
def test_png_decoded_in_strips_equals_a_full_decode_reduced(tmp_path, monkeypatch, mode):
    # 1501×997 with a 56²..84² budget: factors (int(1501 / 84 / 3), int(997 / 56 / 3)) = (5, 5); strips
    # of 5·k rows (k from the strip size) and a partial last block of 997 % 5 = 2 rows
    path = tmp_path / f"{mode}.png"
    picture(mode, (1501, 997), seed=1).save(path)
    for strip_bytes in (1, 40_000, 8 << 20):  # one row of blocks per strip, several, all rows at once
        monkeypatch.setattr(images, "_PNG_STRIP_BYTES", strip_bytes)
        got = load_image(path, SMALL, geometry=QWEN25).pixels
        assert tuple(got.shape) == (3, 56, 84)
        with Image.open(path) as img:
            assert torch.equal(got, reference_resize(img, (84, 56), reducing_gap=REDUCING_GAP)), strip_bytes


def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    picture("RGB", (1800, 1200)).save(path, quality=95)
    decoded = []
    real = images._to_rgb
    monkeypatch.setattr(images, "_to_rgb", lambda img: decoded.append(img.size) or real(img))
    got = load_image(path, SMALL, geometry=QWEN25).pixels
    # 1200×1800 at most 7056 px: β = sqrt(2.16e6 / 7056) = 17.5 → floor(68.6)·28 = 56, floor(102.9)·28 = 84;
    # draft asks for 3·84 × 3·56 = 252×168: scale min(1800 // 252, 1200 // 168) = 7 → 1/4 → 450×300
    assert tuple(got.shape) == (3, 56, 84) and decoded == [(450, 300)]
    with Image.open(path) as img:
        full = reference_resize(img, (84, 56), reducing_gap=None)
    assert (got.int() - full.int()).abs().float().mean() < 1.5  # DCT-domain scaling: close, not equal


def write_banded_png(path: Path, width: int, height: int, band: int = 500) -> None:
    """An RGB PNG written row by row (never held whole): colour bands that change every ``band`` rows,
    the rows between Up-filtered to zeros, so a 12000² image compresses to about 0.5 MB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    x = np.arange(width)
    deflate = zlib.compressobj(9)
    parts = []
    for top in range(0, height, band):
        k = top // band
        row = np.stack([(x // 37 * 11 + k * 5) % 256, x * 255 // width, np.full(width, k * 29 % 256)], -1)
        parts.append(deflate.compress(b"\x00" + row.astype(np.uint8).tobytes()))
        parts.append(deflate.compress((b"\x02" + bytes(3 * width)) * (min(band, height - top) - 1)))
    data = b"".join(parts) + deflate.flush()
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    idat = [chunk(b"IDAT", data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20)]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + b"".join(idat) + chunk(b"IEND", b""))


PEAK_SCRIPT = """
import json, resource, sys, time, warnings
from videor1.config import MediaConfig
from videor1.data.media import load_image
from videor1.models.known import QWEN2_5_VL_GEOMETRY
warnings.simplefilter("ignore")  # Pillow's decompression-bomb warning above 89 million pixels
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
pixels = load_image(sys.argv[1], MediaConfig(), geometry=QWEN2_5_VL_GEOMETRY).pixels
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kib": after - before, "seconds": seconds, "shape": list(pixels.shape)}))
"""


def test_a_12000_square_png_is_decoded_in_bounded_memory(tmp_path):
    # a full decode holds 12000² RGBX (576 MB) and its RGB copy: 1.1 GB above the interpreter's peak;
    # strips of 2 MB: about 32 MB
    path = tmp_path / "huge.png"
    write_banded_png(path, 12000, 12000)
    assert path.stat().st_size < 600_000
    run = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(run.stdout)
    assert result["shape"] == [3, 448, 448]
    assert result["kib"] < 150 * 1024, result


def test_truncated_png_and_decompression_bomb_name_the_file(tmp_path, monkeypatch):
    path = tmp_path / "cut.png"
    write_banded_png(path, 3000, 3000, band=7)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match=r"cut\.png: cannot read image: image file is truncated"):
        load_image(path, BUDGET, geometry=QWEN25)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above twice this
    with pytest.raises(MediaError, match=r"cut\.png: cannot read image: .*decompression bomb"):
        load_image(path, BUDGET, geometry=QWEN25)
