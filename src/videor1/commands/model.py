"""``videor1 model``: build a random-init tiny model, or describe a checkpoint directory."""

from __future__ import annotations

import argparse

HELP = "build a tiny random-init model (real Qwen-VL architecture) or describe a checkpoint"
DESCRIPTION = """Build a tiny random-init model of a real architecture class, saved with its processor
(tokenizer, image and video processors, Qwen2-VL chat template), or describe a checkpoint.

  videor1 model tiny --family qwen2.5-vl --out runs/tiny-model            # small BPE tokenizer
  videor1 model tiny --family qwen3-vl --tokenizer qwen --out runs/tiny3  # real Qwen vocabulary
  videor1 model info runs/tiny-model

The directory loads with plain transformers:
  AutoModelForImageTextToText.from_pretrained(DIR), AutoProcessor.from_pretrained(DIR)
"""


def configure(parser: argparse.ArgumentParser) -> None:
    from videor1.config import TinyModelConfig

    defaults = TinyModelConfig()
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    tiny = sub.add_parser("tiny", help="build a random-init tiny model + processor into --out")
    tiny.add_argument(
        "--family",
        choices=["qwen2-vl", "qwen2.5-vl", "qwen3-vl"],
        default=defaults.family,
        help=f"architecture; the real transformers class is used (default {defaults.family})",
    )
    tiny.add_argument("--out", required=True, help="output directory (must be new or empty)")
    tiny.add_argument(
        "--tokenizer",
        choices=["small", "qwen"],
        default=defaults.tokenizer,
        help="small: local byte-level BPE (fast on CPU); qwen: the real Qwen vocabulary",
    )
    tiny.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="initialisation seed; the same seed gives the same weights",
    )
    tiny.add_argument(
        "--vocab-size",
        type=int,
        default=defaults.vocab_size,
        help=f"size bound of the small tokenizer, ignored for qwen (default {defaults.vocab_size})",
    )
    tiny.add_argument(
        "--hidden-size",
        type=int,
        default=defaults.hidden_size,
        help=f"language model hidden size, a multiple of 4 heads (default {defaults.hidden_size})",
    )
    tiny.add_argument(
        "--num-layers",
        type=int,
        default=defaults.num_layers,
        help=f"language model layers (default {defaults.num_layers})",
    )
    tiny.add_argument(
        "--corpus",
        help="text file (one document per line) to train the small tokenizer on instead of the built-in corpus",
    )
    info = sub.add_parser("info", help="print family, sizes and special-token ids of a checkpoint directory")
    info.add_argument("path", help="checkpoint directory")


def run(args: argparse.Namespace) -> int:
    from videor1.utils.logging import get_logger

    try:
        return _tiny(args) if args.model_command == "tiny" else _info(args)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        get_logger(__name__).error("%s", e)
        return 2


def _tiny(args: argparse.Namespace) -> int:
    from pathlib import Path

    from videor1.config import TinyModelConfig
    from videor1.models.tiny import build_tiny_model

    cfg = TinyModelConfig(
        family=args.family,
        tokenizer=args.tokenizer,
        seed=args.seed,
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
    )
    cfg.validate("model tiny")
    corpus = None
    if args.corpus:
        path = Path(args.corpus)
        if not path.exists():
            raise FileNotFoundError(f"--corpus {path}: file not found")
        corpus = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = build_tiny_model(cfg, args.out, corpus=corpus)
    print(out)  # noqa: T201 - CLI output
    return 0


def _info(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from videor1.models.adapters import get_adapter

    path = Path(args.path)
    adapter = get_adapter(path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    text = config.get("text_config", config)
    info = {
        "path": str(path),
        "family": adapter.family,
        "architecture": (config.get("architectures") or ["?"])[0],
        "hidden_size": text.get("hidden_size"),
        "num_hidden_layers": text.get("num_hidden_layers"),
        "vocab_size": text.get("vocab_size"),
        "vision_depth": config["vision_config"].get("depth"),
        "pixels_per_visual_token": adapter.geometry.pixel_factor,
        "temporal_patch_size": adapter.geometry.temporal_patch_size,
        "image_token_id": adapter.image_token_id,
        "video_token_id": adapter.video_token_id,
        "vision_start_token_id": adapter.vision_start_token_id,
        "vision_end_token_id": adapter.vision_end_token_id,
        "eos_token_id": text.get("eos_token_id"),
        "pad_token_id": text.get("pad_token_id"),
    }
    print(json.dumps(info, indent=2))  # noqa: T201 - CLI output
    return 0
