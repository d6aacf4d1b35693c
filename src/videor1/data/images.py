"""Decode an image straight to its output size, never holding a large one whole.

Pillow does the work (:meth:`PIL.Image.Image.draft` for JPEG, its own PNG row decoder for the strips
of :func:`_png_reduced`, ``resize(..., reducing_gap=...)``); this module only decides which path an
image takes. Images that need no reduction get the reference's bytes (a direct bicubic resize).
"""

from __future__ import annotations

import zlib

from PIL import Image

REDUCING_GAP = 3.0
"""A large image is first reduced by an integer factor (box average), only while it stays this many
times the output size, then resized bicubic: Pillow's ``resize(..., reducing_gap=3.0)``, whose result
Pillow documents as indistinguishable from a direct resize. Images under 6x the output size on both
sides are resized directly, as the reference does, to the same bytes."""

_PNG_STRIP_BYTES = 2 << 20  # inflated bytes per strip of a reduced PNG


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB of a loaded image: alpha composited on white, as the reference does."""
    if img.mode == "RGBA":
        rgb = Image.new("RGB", img.size, (255, 255, 255))
        rgb.paste(img, mask=img.split()[3])
        return rgb
    return img if img.mode == "RGB" else img.convert("RGB")


def _png_inflated(fp, offset: int, block: int = 1 << 20):
    """Inflated pieces (at most ``block`` bytes) of a PNG's IDAT chunks, the first one's data at
    ``offset``; they end early in a truncated file."""
    inflate = zlib.decompressobj()
    fp.seek(offset - 8)
    while (head := fp.read(8))[4:] == b"IDAT":
        left = int.from_bytes(head[:4], "big")
        while left > 0 and (pending := fp.read(min(block, left))):
            left -= len(pending)
            while pending:
                yield inflate.decompress(pending, block)
                pending = inflate.unconsumed_tail
        fp.seek(4, 1)  # CRC


def _png_reduced(img: Image.ImageFile.ImageFile, factor: tuple[int, int]) -> Image.Image | None:
    """``_to_rgb(img).reduce(factor)`` of a plain 8-bit PNG, decoded a strip of rows at a time, or None
    for other images.

    A full decode of a 12000x12000 PNG holds 0.6 GB; a strip holds about ``_PNG_STRIP_BYTES``. Each
    strip goes to Pillow's own PNG row decoder behind the last row of the strip before, stored
    unfiltered, so the rows' filters see the same previous row as in a full decode (the first strip
    sees a row of zeros, as a PNG's first row does). Strips are whole multiples of the vertical
    factor, so every reduced pixel averages the same source pixels as in a full decode.
    """
    (codec, extents, offset, rawmode), *others = img.tile or [(None,) * 4]
    plain = codec == "zip" and not others and extents == (0, 0, *img.size) and rawmode == img.mode
    if not plain or img.mode not in ("RGB", "RGBA", "L", "LA", "P") or img.info.get("interlace"):
        return None  # also 16-bit and 1/2/4-bit rows, whose rawmode differs from the mode
    if getattr(img, "n_frames", 1) != 1:
        return None  # APNG
    width, height = img.size
    row_bytes = 1 + width * len(img.mode.replace("P", "L"))  # filter byte + one byte per channel
    rows = factor[1] * max(1, _PNG_STRIP_BYTES // (factor[1] * row_bytes))
    reduced = Image.new("RGB", (-(-width // factor[0]), -(-height // factor[1])))
    inflated = _png_inflated(img.fp, offset)
    previous, pending = bytes(row_bytes), bytearray()  # previous: filter 0 (None), all zeros
    for top in range(0, height, rows):
        count = min(rows, height - top)
        while len(pending) < count * row_bytes:
            if (piece := next(inflated, None)) is None:
                raise OSError(f"image file is truncated: rows from {top + len(pending) // row_bytes} missing")
            pending += piece
        data = zlib.compress(previous + pending[: count * row_bytes], 0)
        del pending[: count * row_bytes]
        strip = Image.frombytes(img.mode, (width, count + 1), data, "zip", img.mode)
        if img.mode == "P":
            palette_mode, colours = img.palette.getdata()
            strip.putpalette(colours, palette_mode)
        previous = b"\0" + strip.crop((0, count, width, count + 1)).tobytes()
        reduced.paste(_to_rgb(strip.crop((0, 1, width, count + 1))).reduce(factor), (0, top // factor[1]))
    return reduced


def decode_resized(img: Image.ImageFile.ImageFile, size: tuple[int, int]) -> Image.Image:
    """``img`` (opened, not yet loaded) as RGB at ``size`` = (width, height), bicubic, alpha on white.

    A large image is reduced first (:data:`REDUCING_GAP`): a JPEG is decoded at 1/2, 1/4 or 1/8 scale
    (Pillow's ``draft``), a plain PNG a strip at a time (:func:`_png_reduced`); other images are
    decoded whole.
    """
    width, height = size
    factor = (int(img.width / width / REDUCING_GAP) or 1, int(img.height / height / REDUCING_GAP) or 1)
    box = (0, 0, *img.size)
    if factor != (1, 1) and (rgb := _png_reduced(img, factor)) is not None:
        box = (0, 0, img.width / factor[0], img.height / factor[1])
    else:
        if factor != (1, 1) and img.format == "JPEG":
            box = (img.draft("RGB", (width * REDUCING_GAP, height * REDUCING_GAP)) or (None, box))[1]
        img.load()
        rgb = _to_rgb(img)
    if (width, height) != rgb.size or box != (0, 0, *rgb.size):
        rgb = rgb.resize((width, height), Image.Resampling.BICUBIC, box=box, reducing_gap=REDUCING_GAP)
    return rgb
