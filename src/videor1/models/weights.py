"""The weights of the plain Hugging Face model a (possibly wrapped, sharded or LoRA) policy stands for.

Used to write a LoRA run's ``merged/`` model and to load the policy into a vLLM engine after each
update. DDP wrappers and peft prefixes are removed from the names, LoRA layers are merged
(``W + (B @ A) * alpha / r``, so the result needs no adapter) and FSDP2 shards are gathered one
tensor at a time, so the full model never has to exist twice in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def _materialize(tensor: torch.Tensor) -> torch.Tensor:
    """The full tensor of an FSDP2 shard (a collective: every rank must call it), else the tensor."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def inference_weights(
    model: torch.nn.Module, state: dict[str, torch.Tensor] | None = None, *, dtype: torch.dtype | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` of the plain HF model the policy stands for, one tensor at a time.

    Names are the HF checkpoint's (DDP and peft prefixes removed); LoRA layers come merged
    (``W + (B @ A) * alpha / r``), so the result is a model that needs no adapter. ``state`` defaults
    to the model's own state dict; under FSDP2 its shards are gathered one tensor at a time, which
    is a collective, so every rank must consume the iterator in full. Used to write the merged LoRA
    model and to load the policy's weights into a vLLM engine.
    """
    base = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    state = base.state_dict() if state is None else state
    scale, adapter = 1.0, ""
    if hasattr(base, "peft_config") and hasattr(base, "get_base_model"):
        adapter = base.active_adapter
        lora_cfg = base.peft_config[adapter]
        if getattr(lora_cfg, "use_rslora", False):
            raise ValueError("merging rsLoRA adapters is not supported (videor1 never enables it)")
        scale = lora_cfg.lora_alpha / lora_cfg.r
    for key, value in state.items():
        if ".lora_" in key or ".original_module." in key:
            continue
        tensor = _materialize(value)
        name = key.removeprefix("base_model.model.")
        if ".base_layer." in key:
            prefix = key.split(".base_layer.")[0]
            a, b = (
                state.get(f"{prefix}.lora_A.{adapter}.weight"),
                state.get(f"{prefix}.lora_B.{adapter}.weight"),
            )
            if key.endswith(".base_layer.weight") and a is not None and b is not None:
                delta = _materialize(b).float() @ _materialize(a).float()  # [out, in]
                tensor = (tensor.float() + delta * scale).to(tensor.dtype)
            name = name.replace(".base_layer.", ".")
        name = name.replace(f".modules_to_save.{adapter}.", ".")
        tensor = tensor.detach()
        yield name, tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
