"""Completion log-probs from a Qwen-VL forward without materialising its ``[R, T, V]`` logits.

transformers' ``...ForConditionalGeneration.forward`` ends with ``logits = self.lm_head(hidden[:,
keep])``. :func:`completion_logprobs` runs that forward with two hooks on the LM head: a pre-hook takes
the kept hidden states ``[R, C + 1, H]`` and hands the head an empty slice (so it computes ``[R, 0,
V]``), and a forward hook replaces the head's output with the chunked head's log-probs
(``videor1.algorithms.losses.head_token_logprobs``). Both run inside the model's forward, so under
FSDP2 the head's weight is the gathered one and the log-probs are the root's output (FSDP2 hooks its
backward on them as on logits); DDP and peft wrappers see an ordinary forward.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from videor1.algorithms.losses import HEAD_CHUNK_TOKENS, head_token_logprobs
from videor1.train.distributed import unwrap_model


def completion_logprobs(
    model: nn.Module,
    targets: torch.Tensor,  # [R, C] completion tokens, the last C of each row
    temperature: float,
    *,
    chunk: int = HEAD_CHUNK_TOKENS,
    **inputs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:  # [R, C] log-probs (with grad when enabled), [R, C] entropy
    """``model(**inputs, logits_to_keep=C + 1)``'s log-probs of ``targets`` and the entropy there."""
    head = unwrap_model(model).get_output_embeddings()
    if not isinstance(head, nn.Linear) or head.bias is not None:
        raise TypeError(f"the chunked LM head needs a bias-free nn.Linear head, got {type(head).__name__}")
    width = targets.shape[1]
    kept: dict[str, torch.Tensor] = {}

    def take_hidden(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        kept["hidden"] = args[0]  # [R, C + 1, H]
        return (args[0][:, :0], *args[1:])  # [R, 0, H]: the head computes no logits

    def chunked(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        hidden = kept.pop("hidden")[:, :-1]  # [R, C, H]: position t predicts completion token t
        logp, entropy = head_token_logprobs(
            hidden, module.weight, targets, temperature=temperature, chunk=chunk
        )
        kept["entropy"] = entropy  # [R, C]
        return logp.clone()  # [R, C] as the model's ``logits``; not a view (FSDP2 hooks its backward on it)

    hooks = [head.register_forward_pre_hook(take_hidden), head.register_forward_hook(chunked)]
    try:
        out = model(**inputs, logits_to_keep=width + 1)
    finally:
        for h in hooks:
            h.remove()
    return out.logits, kept["entropy"]
