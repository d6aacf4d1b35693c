"""Non-finite guards: a NaN or infinite loss or gradient never reaches the weights or a checkpoint.

Both recipes call :func:`check_update` between ``clip_gradients`` and ``optimizer.step()``. A finite
update passes. A non-finite one (loss or global gradient norm NaN/inf on any rank) is either dropped,
when ``train.nonfinite_skip`` still allows it (every gradient is set to None, so AdamW leaves every
parameter and its moments untouched, and ``nonfinite_skipped`` counts it), or stops the run with
:class:`NonFiniteError` naming the update, the values and the settings to change.
:func:`check_finite_weights` runs before every checkpoint save, so a run whose optimiser itself
overflowed the weights (a huge ``train.lr``) never writes them.

The decision is all-reduced, so every rank skips or stops together.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import nn

from videor1.train.distributed import Dist, all_reduce_metrics

_SKIPPED: weakref.WeakKeyDictionary[torch.optim.Optimizer, int] = weakref.WeakKeyDictionary()


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss, gradient or weight."""


def skipped(optimizer: torch.optim.Optimizer) -> int:
    """Updates of ``optimizer`` dropped so far as non-finite."""
    return _SKIPPED.get(optimizer, 0)


def check_update(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    loss: float,
    grad_norm: float,
    dist: Dist,
    allowed_skips: int,
    update: int,
) -> bool:
    """True when update ``update`` (1-based) may be applied; False when it was dropped; raises when it may not.

    Call after the backward passes and gradient clipping, before ``optimizer.step()``.
    """
    bad = all_reduce_metrics(
        {"bad": float(not (math.isfinite(loss) and math.isfinite(grad_norm)))}, dist, "max"
    )
    if not bad["bad"]:
        return True
    count = skipped(optimizer) + 1
    if count > allowed_skips:
        raise NonFiniteError(
            f"update {update}: the loss is {loss} and the gradient norm {grad_norm} (not finite); stopped "
            f"before applying it, nothing non-finite was saved. Lower train.lr, keep train.max_grad_norm > 0, "
            f"or let train.nonfinite_skip (now {allowed_skips}) drop isolated bad updates"
        )
    for param in model.parameters():
        param.grad = None
    _SKIPPED[optimizer] = count
    return False


def check_finite_weights(model: nn.Module, dist: Dist, where: str) -> None:
    """Raise :class:`NonFiniteError` (on every rank) when any parameter holds a NaN or an infinity."""
    bad = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            local = param.to_local() if hasattr(param, "to_local") else param  # FSDP2 shards
            if not bool(torch.isfinite(local).all()):
                bad.append(name)
    if all_reduce_metrics({"bad": float(bool(bad))}, dist, "max")["bad"]:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteError(
            f"{where}: refusing to save non-finite weights ({shown or 'on another rank'}); lower train.lr"
        )
