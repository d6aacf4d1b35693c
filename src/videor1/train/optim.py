"""Optimiser and schedule: AdamW, the run's exact step count, warmup and decay, gradient clipping.

Departures from the reference (HF Trainer): warmup reaches the peak LR on the last warmup step
instead of starting at 0, and the schedule is always laid over the run's exact number of optimiser
steps (``max_steps``, or ``epochs`` converted with the dataset size), so a planned schedule can't
silently stop early.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from videor1.config import ConfigError, TrainConfig

# Optimiser and schedule
# --------------------------------------------------------------------------------------------------


def build_optimizer(model: nn.Module, train_cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; weight decay on matrices only (not biases or norms)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": train_cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=train_cfg.lr, betas=tuple(train_cfg.adam_betas)
    )


def global_batch_size(train_cfg: TrainConfig, world_size: int) -> int:
    """Samples per optimiser step over all ranks."""
    return train_cfg.per_device_batch_size * train_cfg.gradient_accumulation_steps * world_size


def steps_per_epoch(num_samples: int, global_batch: int) -> int:
    """Full optimiser steps in one pass (an incomplete last batch is dropped)."""
    if num_samples < global_batch:
        raise ConfigError(
            f"the dataset has {num_samples} samples, fewer than one global batch of {global_batch} "
            "(per_device_batch_size x gradient_accumulation_steps x processes)"
        )
    return num_samples // global_batch


def total_steps(train_cfg: TrainConfig, num_samples: int, world_size: int) -> int:
    """The run's exact number of optimiser steps, from ``max_steps`` or ``epochs``.

    ``epochs`` → ``ceil(epochs * steps_per_epoch)``; the schedule is laid over exactly this count.
    """
    per_epoch = steps_per_epoch(num_samples, global_batch_size(train_cfg, world_size))
    if train_cfg.max_steps is not None:
        if train_cfg.max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1, got {train_cfg.max_steps}")
        return train_cfg.max_steps
    if train_cfg.epochs is None or train_cfg.epochs <= 0:
        raise ConfigError(f"train.epochs must be > 0, got {train_cfg.epochs}")
    return max(1, math.ceil(train_cfg.epochs * per_epoch))


def warmup_steps(train_cfg: TrainConfig, total: int) -> int:
    """Warmup length in steps (``warmup_steps`` or ``round(warmup_ratio * total)``), at most ``total``."""
    steps = train_cfg.warmup_steps or round(train_cfg.warmup_ratio * total)
    if steps > total:
        raise ConfigError(f"train warmup ({steps} steps) is longer than the run ({total} steps)")
    return steps


def lr_factor(step: int, *, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak LR for the update at 0-based optimiser step ``step``.

    Warmup: ``(step + 1) / warmup`` (the peak is reached on the last warmup step; the first update is
    never at LR 0). After warmup, with progress ``p = (step - warmup) / (total - warmup)`` in
    ``[0, 1)``: constant ``1``; linear ``1 - p``; cosine ``(1 + cos(pi p)) / 2``.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return 1.0 - p
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    raise ConfigError(f"unknown schedule {schedule!r}; choose constant, linear or cosine")


def build_scheduler(
    optimizer: torch.optim.Optimizer, train_cfg: TrainConfig, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup + ``train.scheduler`` over exactly ``total`` optimiser steps (call ``step()`` after each update)."""
    warm = warmup_steps(train_cfg, total)
    schedule = train_cfg.scheduler

    def factor(step: int) -> float:
        return lr_factor(step, total=total, warmup=warm, schedule=schedule)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_gradients(model: nn.Module, max_norm: float) -> float:
    """Clip the global gradient norm to ``max_norm`` (0 = only measure it); returns the norm before clipping."""
    params = [p for p in model.parameters() if p.grad is not None]
    limit = max_norm if max_norm > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(params, limit)
    if hasattr(norm, "full_tensor"):  # DTensor under FSDP2
        norm = norm.full_tensor()
    return float(norm)


# --------------------------------------------------------------------------------------------------
