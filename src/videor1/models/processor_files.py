"""The processor files older readers look for, written beside transformers 5's ``processor_config.json``.

transformers 5 saves a multimodal processor as one ``processor_config.json`` holding the image and
video processors' settings. transformers 4.x, and vLLM releases built on it, read the image
processor from ``preprocessor_config.json`` and the video processor from
``video_preprocessor_config.json``; without them they fall back to the hub defaults (another pixel
budget, so other grids and token counts than training's). :func:`write_legacy_processor_files`
writes both from the saved ``processor_config.json``, adding the ``min_pixels`` / ``max_pixels``
keys the Qwen2-VL processors of transformers 4.x read besides ``size``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IMAGE_FILE = "preprocessor_config.json"
VIDEO_FILE = "video_preprocessor_config.json"


def _legacy(settings: dict[str, Any], processor_class: str | None) -> dict[str, Any]:
    out = dict(settings)
    size = out.get("size") or {}
    if "shortest_edge" in size and "longest_edge" in size:
        out.setdefault("min_pixels", size["shortest_edge"])
        out.setdefault("max_pixels", size["longest_edge"])
    if processor_class:
        out.setdefault("processor_class", processor_class)
    return out


def write_legacy_processor_files(directory: str | Path) -> list[Path]:
    """Write ``preprocessor_config.json`` and ``video_preprocessor_config.json`` into ``directory``
    from its ``processor_config.json``; returns the files written (none when the directory already
    holds the legacy files' sources, i.e. a processor saved without ``processor_config.json``)."""
    directory = Path(directory)
    source = directory / "processor_config.json"
    if not source.is_file():
        return []
    try:
        saved = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: not valid JSON ({e})") from e
    written = []
    for key, name in (("image_processor", IMAGE_FILE), ("video_processor", VIDEO_FILE)):
        if key not in saved:
            continue
        path = directory / name
        path.write_text(json.dumps(_legacy(saved[key], saved.get("processor_class")), indent=2) + "\n")
        written.append(path)
    return written
