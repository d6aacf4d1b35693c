"""Load a Qwen2-VL / Qwen2.5-VL / Qwen3-VL checkpoint and its processor from a ``ModelConfig``.

Only transformers' Auto classes are used (``AutoModelForImageTextToText``, ``AutoProcessor``), so any
checkpoint directory in the Hugging Face layout works, including the tiny ones built by
``videor1.models.tiny``. The config decides dtype, attention kernel, which parts train
(``freeze_vision``, LoRA through peft) and gradient checkpointing.

Where the checkpoint comes from (``ensure_model``):

1. ``cfg.path`` is a directory with a ``config.json``: use it.
2. it does not exist (or is an empty directory) and ``cfg.tiny`` is set: build the tiny model there
   first, unless the path looks like a training checkpoint (``.../checkpoints/...`` or ``step-*``), a
   mistyped path that must not be replaced by a random-init model. (``model.path`` given on the
   command line also switches ``model.tiny`` off, see ``videor1.config.load_config``.)
3. it looks like a hub id (``org/name``) and is not a local path: fetch it with
   ``huggingface_hub.snapshot_download`` (or take it from the local cache when offline); failures
   raise ``ModelNotFoundError`` saying so.
4. otherwise: ``ModelNotFoundError`` naming the path.

Precision. A model loaded for training keeps every parameter in float32, whatever ``model.dtype``
says: those are the optimiser's master weights (AdamW steps on bfloat16 weights lose updates smaller
than the weight's last bit: at lr 1e-6 most of them), and ``train.precision: bf16`` computes in
bfloat16 on top of them (FSDP2's mixed-precision policy or autocast). ``model.dtype`` is the dtype
of inference models (the RL reference model, evaluation) and of the weights a checkpoint writes for
other tools (:func:`storage_dtype`).

LoRA targets are listed explicitly (full module names) rather than matched by suffix, so an adapter
lands in the language model only, unless ``lora.vision`` also puts adapters on every linear layer of
the vision tower. With LoRA and ``lora.vision = false`` the vision tower follows ``freeze_vision``
(trained in full when false, as the reference trains the ViT).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from videor1.config import ModelConfig
from videor1.models.adapters import get_adapter
from videor1.utils.logging import get_logger

log = get_logger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelNotFoundError(FileNotFoundError):
    """The configured checkpoint is neither a local directory nor a reachable hub id."""


def _looks_like_hub_id(path: str) -> bool:
    return bool(_HUB_ID.match(path)) and not path.startswith(".")


def _looks_like_checkpoint(path: Path) -> bool:
    return path.name.startswith("step-") or "checkpoints" in path.parts or path.name == "merged"


def ensure_model(cfg: ModelConfig) -> Path:
    """Local directory of the configured checkpoint, building a tiny model or fetching from the hub."""
    if not cfg.path:
        raise ModelNotFoundError("model.path is empty: set it to a checkpoint directory or hub id")
    path = Path(cfg.path).expanduser()
    if (path / "config.json").exists():
        return path
    if cfg.tiny is not None and _looks_like_checkpoint(path):
        raise ModelNotFoundError(
            f"model.path {path} does not exist; it looks like a training checkpoint, and model.tiny only "
            "builds a new random-init model (fix the path)"
        )
    if cfg.tiny is not None and path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ModelNotFoundError(
            f"model.path {path} holds other files but no config.json; model.tiny only builds into a new "
            "or empty directory"
        )
    if cfg.tiny is not None:
        from videor1.models.tiny import build_tiny_model

        log.info("model.path %s does not exist: building a tiny %s model there", path, cfg.tiny.family)
        try:
            return build_tiny_model(cfg.tiny, path)
        except OSError:
            # another process (e.g. another rank) finished building the same deterministic model first
            if (path / "config.json").exists():
                return path
            raise
    if path.exists():
        raise ModelNotFoundError(
            f"model.path {path} exists but has no config.json (not a checkpoint directory)"
        )
    if _looks_like_hub_id(cfg.path):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(cfg.path))
        except Exception as e:  # network, auth, offline mode, missing repo: all become one clear error
            raise ModelNotFoundError(
                f"model.path {cfg.path!r} is not a local directory and could not be fetched from the "
                f"Hugging Face hub ({type(e).__name__}: {e}); download it first or point model.path at a "
                f"local checkpoint"
            ) from e
    raise ModelNotFoundError(
        f"model.path {path} does not exist; point it at a checkpoint directory, or set model.tiny to "
        f"build a random-init tiny model there"
    )


def lora_target_modules(model: torch.nn.Module, cfg: ModelConfig) -> list[str]:
    """Full names of the linear layers that get LoRA adapters (language model, optionally vision)."""
    adapter = get_adapter(model)
    lm_prefix = _prefix_of(model, adapter.language_model(model))
    vision_prefix = _prefix_of(model, adapter.vision_tower(model))
    suffixes = tuple(cfg.lora.target_modules)
    targets = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        in_lm = name.startswith(lm_prefix + ".") and name.rsplit(".", 1)[-1] in suffixes
        in_vision = cfg.lora.vision and name.startswith(vision_prefix + ".")
        if in_lm or in_vision:
            targets.append(name)
    if not targets:
        raise ValueError(
            f"model.lora.target_modules {list(suffixes)} matched no linear layer of the language model "
            f"({lm_prefix})"
        )
    return targets


def _prefix_of(model: torch.nn.Module, sub: torch.nn.Module) -> str:
    for name, module in model.named_modules():
        if module is sub:
            return name
    raise ValueError(f"{type(sub).__name__} is not a submodule of {type(model).__name__}")


def storage_dtype(cfg: ModelConfig) -> torch.dtype:
    """The dtype of ``cfg`` as loaded for inference and as checkpoints store it.

    ``auto`` means the checkpoint's own (``dtype`` / ``torch_dtype`` in its ``config.json``; float32
    when it names none).
    """
    if cfg.dtype in _DTYPES:
        return _DTYPES[cfg.dtype]
    config = Path(cfg.path).expanduser() / "config.json"
    saved = None
    if config.is_file():
        import json

        data = json.loads(config.read_text(encoding="utf-8"))
        saved = data.get("dtype") or data.get("torch_dtype") or data.get("text_config", {}).get("dtype")
    return _DTYPES.get(str(saved), torch.float32)


def _build_on_meta(path: Path, dtype: torch.dtype | str, attn_implementation: str | None) -> Any:
    """The model of ``path`` with every parameter and buffer on the meta device (what ``from_pretrained``
    builds, generation settings included, without reading a weight)."""
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

    config = AutoConfig.from_pretrained(str(path))
    kwargs: dict[str, Any] = {"attn_implementation": attn_implementation}
    if dtype != "auto":
        kwargs["dtype"] = dtype
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config, **kwargs)
    if (path / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(str(path))
    return model


def load_processor(path: str | Path) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(path))


def load_model_and_processor(
    cfg: ModelConfig,
    *,
    device: str | torch.device | None = None,
    for_training: bool = False,
    weights: bool = True,
) -> tuple[Any, Any]:
    """Model and processor for ``cfg``; trainable parts set up when ``for_training``.

    Inference (``for_training=False``): ``model.dtype``, ``eval()`` mode, no parameter requires grad.
    Training: float32 master weights (module docstring), ``train()`` mode; ``freeze_vision``, LoRA
    and gradient checkpointing as configured.

    ``weights=False`` reads no weights: the same model is built on the meta device (no memory), for
    the ranks that receive their shards from rank 0 (``videor1.train.distributed.wrap_model``).
    """
    from transformers import AutoModelForImageTextToText

    path = ensure_model(cfg)
    adapter = get_adapter(path)
    if cfg.family != "auto" and cfg.family != adapter.family:
        raise ValueError(f"model.family is {cfg.family!r} but {path}/config.json is a {adapter.family} model")
    dtype: torch.dtype | str = torch.float32 if for_training else _DTYPES.get(cfg.dtype, "auto")
    if weights:
        model = AutoModelForImageTextToText.from_pretrained(
            str(path), dtype=dtype, attn_implementation=cfg.attn_implementation
        )
    else:
        model = _build_on_meta(path, dtype, cfg.attn_implementation)
    processor = load_processor(path)
    if device is not None:
        model.to(device)

    if not for_training:
        model.eval()
        model.requires_grad_(False)
        return model, processor

    model.train()
    vision = adapter.vision_tower(model)
    if cfg.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x renamed it
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.lora.enabled:
        from peft import LoraConfig, get_peft_model

        targets = lora_target_modules(model, cfg)
        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()
        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora.r,
                lora_alpha=cfg.lora.alpha,
                lora_dropout=cfg.lora.dropout,
                target_modules=targets,
                bias="none",
            ),
        )
        if not cfg.lora.vision and not cfg.freeze_vision:
            vision.requires_grad_(True)
    if cfg.freeze_vision:
        for name, param in vision.named_parameters():
            if "lora_" not in name:
                param.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        "loaded %s from %s: %.2fM of %.2fM parameters trainable, float32 master weights "
        "(model.dtype=%s: checkpoints store %s)",
        adapter.family,
        path,
        trainable / 1e6,
        total / 1e6,
        cfg.dtype,
        str(storage_dtype(cfg)).removeprefix("torch."),
    )
    return model, processor
