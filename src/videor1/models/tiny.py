"""Tiny-model factory: a random-init model of the real architecture class, saved with a full processor.

``build_tiny_model(cfg, out_dir)`` writes a directory that plain transformers loads with
``AutoModelForImageTextToText.from_pretrained(out_dir)`` and ``AutoProcessor.from_pretrained(out_dir)``:
``config.json`` + ``model.safetensors`` + ``generation_config.json`` and the processor files
(tokenizer, image processor, video processor, Qwen2-VL chat template).

What is kept from the real checkpoints, so code paths are the ones a 7B model takes:

* the architecture class (``Qwen2VLForConditionalGeneration``, ``Qwen2_5_VLForConditionalGeneration``,
  ``Qwen3VLForConditionalGeneration``), the vision geometry (Qwen2/2.5-VL: patch 14, temporal patch 2,
  2x2 merge, so 28 px per visual token; Qwen3-VL: patch 16, 32 px per token), multimodal RoPE with
  the real section proportions scaled to the tiny head size (2/2.5: t:h:w = 1/4 : 3/8 : 3/8;
  Qwen3-VL: 3/8 : 5/16 : 5/16, interleaved), Qwen2.5-VL's window attention with a final full-attention
  block, ``tokens_per_second = 2`` (Qwen2.5-VL-7B's value), Qwen3-VL's deepstack (one level);
* the special-token ids in the config equal the tokenizer's (``image_token_id``, ``video_token_id``,
  ``vision_start/end``, ``eos = <|im_end|>``, ``pad = bos = <|endoftext|>``);
* the chat template (default system message for 2/2.5, none for 3).

What differs: every size (``TinyModelConfig``); the ``small`` tokenizer's model vocabulary equals the
tokenizer's length (real checkpoints pad theirs); with ``tokenizer="qwen"`` the input and output
embeddings are tied (as in Qwen2.5-VL-3B) to halve a 152k x hidden matrix; the processors' pixel
bounds are ``factor**2 .. 16384 * factor**2`` so frames that ``videor1.data.media`` already resized to
multiples of the factor pass through unchanged (the frame/pixel budgets live in ``MediaConfig``);
the Qwen3-VL video processor does not re-sample frames (``do_sample_frames=False``).

Weights come from ``torch.manual_seed(cfg.seed)`` followed by the class's own initialisation, so the
same config gives identical weights on the same torch version. Departures from the class's
initialisation, each measured because a from-scratch model learns nothing in minutes without it:

* the vision merger's output projection is rescaled so visual tokens start at the scale of the text
  embeddings (``match_visual_scale``); without it the model barely learns to look;
* Qwen3-VL: the ViT's absolute position table is rescaled to the patch embeddings' scale
  (``match_position_scale``, ``TinyModelConfig.match_position_scale``); at class init a linear probe
  reads a shape's quadrant from its visual token at chance (23%), scaled at 100%
  (``experiments/position_probe.py``), and after the demo's SFT ``image_position`` is 98% held-out
  against 52% unscaled;
* Qwen2/2.5-VL: a smaller language-model RoPE base (``TINY_ROPE_THETA``).

The demo's tiny model (``configs/demo/full.yaml``) is Qwen3-VL with the scaled position table at
128 px (4 x 4 visual tokens a frame), chosen by ``experiments/tiny_ablation.py``: after 600 answer-only
SFT steps (lr 1e-4) it scored 100 / 98 / 100 / 100% held-out on ``image_color`` / ``image_position``
/ ``event_quarter`` / ``direction`` with ordered frames, and 38 / 40% on the two video families with
shuffled frames; the best Qwen2.5-VL (RoPE base 100) scored 100 / 90 / 95 / 60%.
``docs/tiny_model_ablation.md`` has the whole table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase

from videor1.config import TinyModelConfig
from videor1.models.chat_template import QWEN2_VL_DEFAULT_SYSTEM, qwen2_vl_chat_template
from videor1.models.corpus import builtin_corpus
from videor1.models.tokenizer import EOS_TOKEN, PAD_TOKEN, build_small_tokenizer, load_qwen_tokenizer
from videor1.utils.logging import get_logger

log = get_logger(__name__)

FAMILIES = ("qwen2-vl", "qwen2.5-vl", "qwen3-vl")
_MAX_TOKENS_PER_IMAGE = 16384


def _mrope_section(head_dim: int, family: str) -> list[int]:
    """Split head_dim/2 rotary frequencies into (t, h, w) with the real checkpoints' proportions."""
    half = head_dim // 2
    t = half * 3 // 8 if family == "qwen3-vl" else half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


REAL_ROPE_THETA = {"qwen2-vl": 1e6, "qwen2.5-vl": 1e6, "qwen3-vl": 5e6}
"""The released checkpoints' language-model RoPE base per family."""
TINY_ROPE_THETA = {"qwen2-vl": 100.0, "qwen2.5-vl": 100.0, "qwen3-vl": 5e6}
"""The tiny factory's RoPE base per family when ``TinyModelConfig.rope_theta`` is None.

Qwen2/2.5-VL give the width axis the slowest rotary frequencies; at the real base 1e6 and the tiny
head size 48, q.k rotates by at most 5e-4 rad across a frame 4 tokens wide, so a from-scratch model
cannot tell left from right. At 100 the width axis gets up to 0.17 rad across the frame. Measured
(``experiments/tiny_ablation.py``, five procedural families, answer-only SFT, lr 1e-4, 600 steps,
held-out): ``image_position`` 68% at 1e6, 90% at 100, 92% at 10. Qwen3-VL interleaves the axes
over all frequencies, so it keeps its real base. Pretrained checkpoints never use these values.
"""


def rope_theta(cfg: TinyModelConfig) -> float:
    """The RoPE base the tiny model gets: ``cfg.rope_theta`` or the family's tiny default."""
    return float(cfg.rope_theta) if cfg.rope_theta is not None else TINY_ROPE_THETA[cfg.family]


def _check(cfg: TinyModelConfig) -> None:
    if cfg.family not in FAMILIES:
        raise ValueError(f"model.tiny.family: {cfg.family!r} is not one of {', '.join(FAMILIES)}")
    if cfg.hidden_size % cfg.num_heads:
        raise ValueError(
            f"model.tiny.hidden_size ({cfg.hidden_size}) must be divisible by num_heads ({cfg.num_heads})"
        )
    if cfg.num_heads % cfg.num_kv_heads:
        raise ValueError(
            f"model.tiny.num_heads ({cfg.num_heads}) must be divisible by num_kv_heads ({cfg.num_kv_heads})"
        )
    if cfg.vision_hidden_size % cfg.vision_heads:
        raise ValueError(
            f"model.tiny.vision_hidden_size ({cfg.vision_hidden_size}) must be divisible by "
            f"vision_heads ({cfg.vision_heads})"
        )
    if (cfg.hidden_size // cfg.num_heads) % 2:
        raise ValueError("model.tiny.hidden_size / num_heads must be even (rotary embeddings)")
    if cfg.rope_theta is not None and not cfg.rope_theta > 1:
        raise ValueError(f"model.tiny.rope_theta must be > 1 (a RoPE base), got {cfg.rope_theta}")


def _token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = {
        name: tokenizer.convert_tokens_to_ids(token)
        for name, token in (
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
            ("eos_token_id", EOS_TOKEN),
            ("pad_token_id", PAD_TOKEN),
        )
    }
    unknown = [name for name, i in ids.items() if i is None or i == tokenizer.unk_token_id]
    if unknown:
        raise ValueError(f"the tokenizer lacks the special tokens for {', '.join(unknown)}")
    return ids


def tiny_model_config(cfg: TinyModelConfig, tokenizer: PreTrainedTokenizerBase):
    """The transformers config of the tiny model (architecture class of ``cfg.family``)."""
    _check(cfg)
    ids = _token_ids(tokenizer)
    head_dim = cfg.hidden_size // cfg.num_heads
    vocab_size = len(tokenizer) if cfg.tokenizer == "small" else 151936
    text: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "max_position_embeddings": 32768,
        "bos_token_id": ids["pad_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "pad_token_id": ids["pad_token_id"],
    }
    vision_ids = {
        k: ids[k]
        for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    }
    tie = cfg.tokenizer == "qwen"
    if cfg.family == "qwen2-vl":
        from transformers import Qwen2VLConfig

        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": rope_theta(cfg),
            "mrope_section": _mrope_section(head_dim, cfg.family),
        }
        vision = {
            "depth": cfg.vision_depth,
            "embed_dim": cfg.vision_hidden_size,
            "hidden_size": cfg.hidden_size,
            "num_heads": cfg.vision_heads,
            "mlp_ratio": 2,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
        }
        return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **vision_ids)
    if cfg.family == "qwen2.5-vl":
        from transformers import Qwen2_5_VLConfig

        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": rope_theta(cfg),
            "mrope_section": _mrope_section(head_dim, cfg.family),
        }
        vision = {
            "depth": cfg.vision_depth,
            "hidden_size": cfg.vision_hidden_size,
            "intermediate_size": 2 * cfg.vision_hidden_size,
            "num_heads": cfg.vision_heads,
            "out_hidden_size": cfg.hidden_size,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [cfg.vision_depth - 1],
            "tokens_per_second": 2,
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **vision_ids)
    from transformers import Qwen3VLConfig

    text["head_dim"] = head_dim
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": rope_theta(cfg),
        "mrope_section": _mrope_section(head_dim, cfg.family),
        "mrope_interleaved": True,
    }
    vision = {
        "depth": cfg.vision_depth,
        "hidden_size": cfg.vision_hidden_size,
        "intermediate_size": 2 * cfg.vision_hidden_size,
        "num_heads": cfg.vision_heads,
        "out_hidden_size": cfg.hidden_size,
        "patch_size": 16,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "num_position_embeddings": 2304,
        "deepstack_visual_indexes": [0],
    }
    return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **vision_ids)


def build_tiny_processor(cfg: TinyModelConfig, tokenizer: PreTrainedTokenizerBase):
    """Processor (tokenizer + image + video processor + chat template) matching ``cfg.family``."""
    from transformers import Qwen2VLImageProcessor

    patch = 16 if cfg.family == "qwen3-vl" else 14
    factor = patch * 2
    pixels = {"min_pixels": factor * factor, "max_pixels": _MAX_TOKENS_PER_IMAGE * factor * factor}
    geometry = {"patch_size": patch, "temporal_patch_size": 2, "merge_size": 2}
    image_processor = Qwen2VLImageProcessor(**pixels, **geometry)
    if cfg.family == "qwen3-vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        video_processor = Qwen3VLVideoProcessor(
            size={"shortest_edge": pixels["min_pixels"], "longest_edge": pixels["max_pixels"]},
            do_sample_frames=False,
            cap_pixels_per_frame=False,
            **geometry,
        )
        template = qwen2_vl_chat_template(default_system=None, wrap_video=False)
        return Qwen3VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=template,
        )
    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    video_processor = Qwen2VLVideoProcessor(**pixels, **geometry, cap_pixels_per_frame=False)
    processor_cls = Qwen2_5_VLProcessor if cfg.family == "qwen2.5-vl" else Qwen2VLProcessor
    return processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=qwen2_vl_chat_template(QWEN2_VL_DEFAULT_SYSTEM),
    )


def build_tokenizer(cfg: TinyModelConfig, corpus: list[str] | None = None) -> PreTrainedTokenizerBase:
    if cfg.tokenizer == "qwen":
        if corpus is not None:
            raise ValueError("a tokenizer corpus only applies to tokenizer='small'")
        return load_qwen_tokenizer()
    if cfg.tokenizer == "small":
        return build_small_tokenizer(
            builtin_corpus() if corpus is None else corpus, vocab_size=cfg.vocab_size
        )
    raise ValueError(f"model.tiny.tokenizer: {cfg.tokenizer!r} is not one of 'qwen', 'small'")


def _visual_features(model: Any, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
    out = model.model.get_image_features(pixel_values=pixel_values, image_grid_thw=grid_thw)
    feats = getattr(out, "pooler_output", out)
    if isinstance(feats, list | tuple):
        feats = torch.cat(list(feats))
    return feats  # [tokens, hidden]


@torch.no_grad()
def match_visual_scale(model: Any, *, probe_side: int = 4) -> float:
    """Rescale the vision merger's output projection(s) so visual tokens enter the language model at
    the RMS of its text embeddings; returns the factor applied.

    At random init the merger emits tokens about 50x larger than the text embeddings. Every decoder
    layer normalises its input, so the gradient reaching a visual token shrinks with its norm and
    the vision path of a model trained from scratch learns far slower than the text path: a tiny
    model fitted the CoT wording but answered colour questions at chance after 150 SFT steps, and
    reached 100% in 100 steps once the scales matched (measured on the procedural data). Real
    checkpoints are pretrained and never pass through here. The probe is a fixed random image of
    ``probe_side`` x ``probe_side`` patches drawn from the current (seeded) RNG, so the factor is
    deterministic.
    """
    from torch import nn

    vision = model.config.vision_config
    patch, temporal = vision.patch_size, vision.temporal_patch_size
    channels = getattr(vision, "in_channels", getattr(vision, "in_chans", 3))
    grid = torch.tensor([[1, probe_side, probe_side]])
    pixels = torch.randn(probe_side * probe_side, channels * temporal * patch * patch)
    feats = _visual_features(model, pixels, grid)
    text_rms = model.get_input_embeddings().weight.float().pow(2).mean().sqrt()
    factor = float(text_rms / feats.float().pow(2).mean().sqrt())
    visual = model.model.visual
    mergers = [visual.merger, *getattr(visual, "deepstack_merger_list", [])]
    for merger in mergers:
        last = [m for m in merger.modules() if isinstance(m, nn.Linear)][-1]
        last.weight.mul_(factor)
        if last.bias is not None:
            last.bias.mul_(factor)
    return factor


@torch.no_grad()
def match_position_scale(model: Any, *, probe_patches: int = 16) -> float | None:
    """Rescale the ViT's absolute position embedding (Qwen3-VL) to the RMS of its patch embeddings;
    returns the factor applied, or None for a ViT without one (Qwen2/2.5-VL).

    At random init the position table (std 0.02) is about 5% of a patch embedding, so the visual
    tokens barely say where they are: a linear probe on the shape's token read the quadrant of
    ``image_position`` items at chance (23%, 1000 items, 4x4 tokens); with the table scaled 5x it
    read 66%, 20x 100%. The probe is ``probe_patches`` random patches from the current (seeded)
    RNG, so the factor is deterministic.
    """
    visual = model.model.visual
    table = getattr(visual, "pos_embed", None)
    if table is None:
        return None
    vision = model.config.vision_config
    channels = getattr(vision, "in_channels", 3)
    pixels = torch.randn(probe_patches, channels * vision.temporal_patch_size * vision.patch_size**2)
    patch_rms = visual.patch_embed(pixels).float().pow(2).mean().sqrt()
    factor = float(patch_rms / table.weight.float().pow(2).mean().sqrt())
    table.weight.mul_(factor)
    return factor


def build_tiny_model(cfg: TinyModelConfig, out_dir: str | Path, *, corpus: list[str] | None = None) -> Path:
    """Build, initialise (seeded) and save a tiny model + processor to ``out_dir``; returns the path.

    The files are written to a temporary sibling directory that is then renamed to ``out_dir``, so a
    reader never sees a half-written model. ``out_dir`` must not exist or be empty.
    """
    from transformers import AutoModelForImageTextToText

    out = Path(out_dir)
    _check_free(out)
    tokenizer = build_tokenizer(cfg, corpus)
    config = tiny_model_config(cfg, tokenizer)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
        if cfg.match_position_scale:
            match_position_scale(model)
        match_visual_scale(model)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[config.text_config.eos_token_id, config.text_config.pad_token_id],
        pad_token_id=config.text_config.pad_token_id,
    )
    processor = build_tiny_processor(cfg, tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / "videor1_tiny.json").write_text(
            json.dumps({"tiny": dataclasses.asdict(cfg)}, indent=2) + "\n", encoding="utf-8"
        )
        _check_free(out)
        os.replace(staging, out)  # atomic; replaces an empty directory, fails on a non-empty one
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "built tiny %s (%s tokenizer, %d tokens, %.2fM parameters) in %s",
        cfg.family,
        cfg.tokenizer,
        len(tokenizer),
        n_params / 1e6,
        out,
    )
    return out


def _check_free(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if (out / "config.json").exists():
            raise FileExistsError(f"{out} already holds a model; choose an empty or new directory")
        raise FileExistsError(f"{out} is not empty; choose an empty or new directory")


BARE_IDS = {"image": 290, "video": 291, "vision_start": 292, "vision_end": 293, "pad": 0, "bos": 1}
"""Special token ids of :func:`bare_qwen2_5_vl` (a 300-token vocabulary, no tokenizer)."""


def bare_qwen2_5_vl(*, seed: int = 0, eos_token_id: int = 2):
    """An untrained two-layer Qwen2.5-VL in memory, without tokenizer or processor (ids in
    :data:`BARE_IDS`; ``tokens_per_second`` 2): for engine tests and benchmarks that feed token ids and
    pixels directly. :func:`build_tiny_model` makes the full checkpoint the recipes load."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    text = dict(
        vocab_size=300, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    )
    text |= dict(
        intermediate_size=128,
        max_position_embeddings=4096,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
    )
    vision = dict(depth=2, hidden_size=32, num_heads=2, intermediate_size=64, out_hidden_size=64)
    vision |= dict(fullatt_block_indexes=[1], window_size=56, tokens_per_second=2)
    cfg = Qwen2_5_VLConfig(
        text_config={
            **text,
            "bos_token_id": BARE_IDS["bos"],
            "eos_token_id": eos_token_id,
            "pad_token_id": BARE_IDS["pad"],
        },
        vision_config=vision,
        image_token_id=BARE_IDS["image"],
        video_token_id=BARE_IDS["video"],
        vision_start_token_id=BARE_IDS["vision_start"],
        vision_end_token_id=BARE_IDS["vision_end"],
    )
    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(cfg).eval()
