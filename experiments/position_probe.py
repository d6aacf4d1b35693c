"""Can the visual tokens of a random-init tiny model say where the shape is? A linear probe, no training.

For ``image_position`` items (a shape in one of four quadrants) the tiny model's vision tower encodes
the image; the probe takes the visual token that differs most from the black background (the
shape's) and fits a ridge-regression classifier of the quadrant on 800 items, scored on 200 others.
If the token does not carry its position, no amount of language-model training on top can read
the quadrant from that token's *value* (RoPE only changes attention weights, not values).

Run from the repository root (about a minute on 2 cores, nothing downloaded)::

    PYTHONPATH=src python experiments/position_probe.py
    PYTHONPATH=src python experiments/position_probe.py --quick     # 100 items

Prints one line per model: family, frame size, ViT position table, probe accuracy (chance 25%).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from tiny_ablation import DEMO_TINY  # the sibling script: one home for the sizes

MODELS = (
    ("qwen2.5-vl", 112, False),
    ("qwen3-vl", 128, False),
    ("qwen3-vl", 128, True),
)
"""(family, frame side in px, match_position_scale): 4 x 4 visual tokens per frame for each."""


def shape_tokens(model_dir: Path, size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The shape's visual token ``[n, hidden]`` and the quadrant label ``[n]`` of ``n`` items."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videor1.data.synth import image_position
    from videor1.data.synth.render import draw_frame

    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    features, labels = [], []
    for slot in range(n):
        item = image_position.FAMILY.generate(np.random.default_rng([5, slot]), slot, size=size, frames=1)
        batch = processor.image_processor(images=[draw_frame(item.states[0], size)], return_tensors="pt")
        with torch.no_grad():
            out = model.model.get_image_features(
                pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"]
            )
        tokens = getattr(out, "pooler_output", out)
        tokens = torch.cat(list(tokens)) if isinstance(tokens, list | tuple) else tokens  # [16, hidden]
        distance = (tokens - tokens.median(0).values).norm(dim=1)  # [16] from the background token
        features.append(tokens[distance.argmax()].numpy())
        labels.append("ABCD".index(item.answer))
    return np.array(features), np.array(labels)


def ridge_probe(x: np.ndarray, y: np.ndarray, train: int) -> float:
    """Held-out accuracy of a one-vs-all ridge classifier (standardised features, lambda 1)."""
    mean, std = x[:train].mean(0), x[:train].std(0) + 1e-6
    design = np.c_[(x - mean) / std, np.ones(len(x))]
    a, targets = design[:train], np.eye(4)[y[:train]]
    weights = np.linalg.solve(a.T @ a + np.eye(a.shape[1]), a.T @ targets)
    return float(((design[train:] @ weights).argmax(1) == y[train:]).mean())


def main(argv: list[str] | None = None) -> int:
    from videor1.config import TinyModelConfig
    from videor1.models.tiny import build_tiny_model

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 items instead of 1000")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n = 100 if args.quick else 1000
    for family, size, match in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TinyModelConfig(family=family, match_position_scale=match, **DEMO_TINY)
            model_dir = build_tiny_model(cfg, Path(tmp) / "model")
            x, y = shape_tokens(model_dir, size, n)
        table = "none" if family != "qwen3-vl" else ("scaled to patches" if match else "class init")
        accuracy = ridge_probe(x, y, train=int(0.8 * n))
        sys.stdout.write(f"{family} {size}px position table: {table}: probe accuracy {100 * accuracy:.1f}%\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
