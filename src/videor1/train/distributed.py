"""Processes and model wrapping: what runs the same recipe on 1 CPU, 2 CPU processes or 8 GPUs.

- processes: ``Dist`` (rank, world size, device), ``init_distributed`` (the process group ``torchrun``
  describes: gloo on CPU, nccl on GPU), ``cleanup_distributed``, ``barrier``, ``all_reduce_metrics``
  (sum / mean / max of a dict of scalars in one collective), ``any_rank`` (a decision agreed by all);
- model: ``wrap_model`` (DDP, or FSDP2 ``fully_shard`` per ``_no_split_modules`` block; also shards a
  frozen reference model; the weights come from rank 0, the other ranks build on the meta device),
  ``unwrap_model``, ``gradient_sync`` (DDP: skip the all-reduce on non-final
  micro-batches; FSDP2: reduce-scatter every micro-batch), ``full_weights`` (FSDP2: gather every shard,
  or a submodule's, once for generation or encoding), ``autocast``, ``peak_memory_mb``.

Precision: trainable parameters are float32 master weights throughout training (loaded so by
``videor1.models.loading.load_model_and_processor(..., for_training=True)``); with
``train.precision: bf16`` the compute is bf16: FSDP2's ``MixedPrecisionPolicy`` gathers the
parameters in bf16 and reduces gradients in fp32, otherwise autocast runs over the fp32 parameters.

Both DDP and FSDP2 run on CPU with gloo (tests launch 2 processes with torchrun) and on GPU with
nccl; FSDP2 (plain PyTorch) gives the ZeRO-3-style sharding of parameters, gradients and optimiser
states the reference got from DeepSpeed, so DeepSpeed is not a dependency.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import torch
import torch.distributed as torch_dist
from torch import nn

from videor1.config import ConfigError, TrainConfig
from videor1.utils.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Dist:
    """Where this process sits: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None, *, timeout_s: int | None = None) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Backend: ``nccl`` when the device is CUDA, ``gloo`` otherwise. Without ``torchrun`` (or with one
    process) no process group is created. ``device`` defaults to ``cuda:<LOCAL_RANK>`` when CUDA is
    available, else ``cpu``. ``timeout_s`` (``train.collective_timeout_s``) bounds every collective's
    wait for the other ranks; ``None`` keeps torch's default (10 minutes).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not torch_dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        timeout = None if timeout_s is None else timedelta(seconds=timeout_s)
        torch_dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=timeout)
        log.info("rank %d/%d joined the %s process group on %s", rank, world_size, backend, dev)
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    """Leave the process group (call once at exit, also after errors)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def any_rank(flag: bool, dist: Dist) -> bool:
    """True on every rank when ``flag`` is true on some rank (one all-reduce): a decision all ranks
    take together, so they run the same collectives afterwards."""
    return bool(all_reduce_metrics({"flag": float(flag)}, dist, op="max")["flag"])


def barrier(dist: Dist) -> None:
    if dist.distributed:
        torch_dist.barrier()


def all_reduce_metrics(
    values: dict[str, float], dist: Dist, op: Literal["sum", "mean", "max"] = "sum"
) -> dict[str, float]:
    """Reduce scalar metrics over ranks in one collective (every rank must call it with the same keys)."""
    if not values:
        return {}
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.distributed:
        if torch_dist.get_backend() == "nccl":
            t = t.to(dist.device)
        reduce_op = torch_dist.ReduceOp.MAX if op == "max" else torch_dist.ReduceOp.SUM
        torch_dist.all_reduce(t, op=reduce_op)
        if op == "mean":
            t = t / dist.world_size
    return dict(zip(keys, t.cpu().tolist()))


# --------------------------------------------------------------------------------------------------
# Model preparation and wrapping
# --------------------------------------------------------------------------------------------------


def wrap_model(model: nn.Module, dist: Dist, train_cfg: TrainConfig, *, trainable: bool = True) -> nn.Module:
    """Move the model to ``dist.device`` and wrap it for ``train.distributed`` when world_size > 1.

    ``ddp``: ``DistributedDataParallel`` (gradients all-reduced); a frozen model (``trainable=False``,
    the RL reference) is only moved. ``fsdp2``: ``fully_shard`` on every block listed in the HF model's
    ``_no_split_modules`` (decoder layers, ViT blocks), then on the root; the root's
    ``get_image_features`` / ``get_video_features`` are registered as forward methods, so encoding
    media outside the model's forward (``videor1.models.vision.encode_media``) gathers the root's
    shards (patch embedding, merger) like a forward does. A trainable model with
    ``precision: bf16`` gets ``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)`` over its
    fp32 masters; a frozen one keeps its own dtype.

    Rank-0 loading: with more than one process, rank 0's weights are the model's. The other ranks
    build it on the meta device (``load_model_and_processor(..., weights=False)``: no host memory)
    and receive them after wrapping: under FSDP2 ``set_model_state_dict(full_state_dict=True,
    broadcast_from_rank0=True)`` broadcasts one tensor at a time and each rank keeps its shard, so a
    rank's host peak is its shard plus one full tensor; under DDP the wrapper's own broadcast at
    construction does it (a frozen model is broadcast here). Buffers outside the state dict (rotary
    frequencies) are broadcast too, and tied weights are re-tied after leaving the meta device.
    """
    if not dist.distributed:
        model.to(dist.device)
        return model
    engine = train_cfg.distributed
    if engine not in ("ddp", "fsdp2"):
        raise ConfigError(f"train.distributed: unknown engine {engine!r}; choose ddp or fsdp2")
    if dist.is_main:
        model.to(dist.device)
    tied = _tied_like_rank0(model, dist)
    if engine == "ddp":
        _materialise(model, dist.device, tied)
        if not trainable:
            _broadcast_from_rank0(itertools.chain(model.parameters(), model.buffers()))
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(  # broadcasts rank 0's parameters and buffers
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None
        )
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    source = model.state_dict() if dist.is_main else {}  # rank 0's full weights (references, no copy)
    mp = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if trainable and train_cfg.precision == "bf16"
        else MixedPrecisionPolicy()
    )
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    block_names = set(getattr(base, "_no_split_modules", None) or [])
    if not block_names:
        raise ConfigError(f"{type(base).__name__} lists no _no_split_modules; fsdp2 can't find its blocks")
    for module in model.modules():
        if type(module).__name__ in block_names:
            fully_shard(module, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    for method in ("get_image_features", "get_video_features"):
        register_fsdp_forward_method(model, method)
    if not trainable:  # no backward will come: free the root's gathered weights after each forward too
        model.set_reshard_after_forward(True)
    _materialise(model, dist.device, tied)
    set_model_state_dict(
        model, source, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    )
    del source
    _broadcast_from_rank0(model.buffers())
    return model


def _shared_parameters(model: nn.Module) -> list[list[str]]:
    """Names of the parameters that share one tensor (tied weights), in groups."""
    by_tensor: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(param), []).append(name)
    return sorted(names for names in by_tensor.values() if len(names) > 1)


def _share(model: nn.Module, groups: list[list[str]]) -> None:
    """Make exactly ``groups`` share a parameter: untie every other pair, tie each group to its first name."""
    params = dict(model.named_parameters(remove_duplicate=False))
    for names in _shared_parameters(model):
        for name in names[1:]:
            old = params[name]
            _set_parameter(model, name, nn.Parameter(torch.empty_like(old), requires_grad=old.requires_grad))
    for names in groups:
        for name in names[1:]:
            _set_parameter(model, name, params[names[0]])


def _set_parameter(model: nn.Module, name: str, param: nn.Parameter) -> None:
    owner, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(owner) if owner else model, leaf, param)


def _tied_like_rank0(model: nn.Module, dist: Dist) -> list[list[str]]:
    """Rank 0's tied parameters; a rank built on the meta device is tied the same way (``from_pretrained``
    unties a pair the config ties when the checkpoint holds both with different values)."""
    groups = [_shared_parameters(model) if dist.is_main else None]
    torch_dist.broadcast_object_list(groups, src=0)
    if not dist.is_main and _shared_parameters(model) != groups[0]:
        if not any(t.is_meta for t in model.parameters()):
            raise RuntimeError("this rank's model ties other weights than rank 0's; load the same model")
        _share(model, groups[0])
    return groups[0]


def _materialise(model: nn.Module, device: torch.device, tied: list[list[str]]) -> None:
    """Give a model built on the meta device uninitialised storage on ``device`` (its shards only,
    once FSDP2 has sharded it), tied like rank 0's (``to_empty`` makes a new tensor per name)."""
    if not any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
        return
    model.to_empty(device=device)
    if _shared_parameters(model) != tied:
        _share(model, tied)


def _broadcast_from_rank0(tensors: Iterable[torch.Tensor]) -> None:
    with torch.no_grad():
        for tensor in tensors:
            torch_dist.broadcast(tensor.data, src=0)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under a DDP wrapper (FSDP2 shards in place, so it is returned as is)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def gradient_sync(model: nn.Module, enabled: bool) -> Iterator[None]:
    """DDP: skip the gradient all-reduce on micro-batches that are not the last of an accumulation
    step (``no_sync``; each rank keeps its full local gradients, as DDP always holds them).

    FSDP2 reduce-scatters every micro-batch whatever ``enabled`` says, and each rank accumulates only
    its shard of the gradients (in ``reduce_dtype``, fp32). Disabling FSDP2's sync
    (``set_requires_gradient_sync(False)``) would keep every layer's unsharded gradient between
    micro-batches: the whole model's gradients on each rank (about 31 GiB in fp32 at 7B), the memory
    sharding exists to save; the extra reduce-scatters cost communication instead.
    """
    if enabled or not isinstance(model, nn.parallel.DistributedDataParallel):
        yield
    else:
        with model.no_sync():
            yield


@contextlib.contextmanager
def full_weights(model: nn.Module, within: nn.Module | None = None) -> Iterator[None]:
    """FSDP2: gather every shard once and keep the full weights until the block ends (no-op otherwise).

    Generation runs one forward per token; with sharded weights each forward would all-gather the
    whole model, and ranks whose rows finish early would run fewer forwards than the others and hang
    the collectives. Inside this block forwards communicate nothing, so each rank can stop when its
    own rows are done. Costs one full copy of the weights in ``param_dtype`` (bf16) while it lasts.
    ``within`` (a submodule, e.g. the vision tower) gathers only the root group and the blocks inside
    it: enough to run that submodule, at the cost of those weights only.
    """
    from torch.distributed.fsdp import FSDPModule

    inside = None if within is None else {id(m) for m in within.modules()}
    modules = [
        m
        for i, m in enumerate(model.modules())
        if isinstance(m, FSDPModule) and (inside is None or i == 0 or id(m) in inside)
    ]
    if not modules:
        yield
        return
    # FSDP2 picks its root (and sets up its streams) at the first forward; generation may come first
    modules[0]._get_fsdp_state()._lazy_init()
    for m in modules:
        m.unshard()
        m.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        root = modules[0]
        for m in modules:
            if m is not root:  # the root never reshards after forward (FSDP2's default for it)
                m.set_reshard_after_forward(True, recurse=False)
            m.reshard()


def autocast(dist: Dist, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast when ``precision: bf16`` (fp32 weights stay the optimiser's master copy)."""
    return torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process in MiB: CUDA allocator peak on GPU, peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


# --------------------------------------------------------------------------------------------------
