"""Architectures of public checkpoints the shipped configs name, for planning without downloading them.

``videor1 plan`` needs the model's shapes; when ``model.path`` is a local checkpoint its
``config.json`` is read, and for the hub ids below (no download possible offline) the values of the
public ``config.json`` are used. Only what the architecture needs is kept (token ids and generation
settings are irrelevant to memory).

``QWEN2_5_VL_GEOMETRY`` is that architecture's vision geometry, for code that sizes media with no
local model to read it from (an HTTP teacher, ``videor1 data validate`` / ``inspect``, benchmarks
against the reference's Qwen2.5-VL frame loader).
"""

from __future__ import annotations

from typing import Any

from videor1.models.adapters import vision_geometry

QWEN2_5_VL_7B: dict[str, Any] = {
    # Qwen/Qwen2.5-VL-7B-Instruct/config.json (8,292,166,656 parameters)
    "model_type": "qwen2_5_vl",
    "tie_word_embeddings": False,
    "text_config": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_attention_heads": 28,
        "num_hidden_layers": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
    },
}

QWEN2_5_VL_GEOMETRY = vision_geometry(QWEN2_5_VL_7B)
"""Qwen2.5-VL's vision geometry (patch 14, merge 2, temporal patch 2: 28 px per visual token); every
Qwen2.5-VL size (3B to 72B) shares it."""

KNOWN: dict[str, dict[str, Any]] = {
    "Qwen/Qwen2.5-VL-7B-Instruct": QWEN2_5_VL_7B,
    "Video-R1/Qwen2.5-VL-7B-COT-SFT": QWEN2_5_VL_7B,  # fine-tunes of it: same architecture
    "Video-R1/Video-R1-7B": QWEN2_5_VL_7B,
}
