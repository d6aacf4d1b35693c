"""What every training recipe shares: processes, model wrapping, optimiser, schedule, checkpoints, logs.

The SFT and RL recipes call these functions in the same order::

    dist = init_distributed()                                   # torchrun env -> gloo (CPU) / nccl (GPU)
    model, processor = load_model_and_processor(model_cfg, for_training=True)  # freeze ViT, LoRA
    total = total_steps(cfg.train, num_samples, dist.world_size)  # steps or epochs -> exact steps
    model = wrap_model(model, dist, cfg.train)                  # DDP or FSDP2 (single process: unchanged)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train, total)
    state = load_checkpoint(path, model=..., optimizer=..., scheduler=..., dist=dist)  # resume
    logger = RunLogger(cfg, dist, resume_step=...)              # config.yaml + metrics.jsonl (rank 0)
    ... train; logger.log(all_reduce_metrics(...)) ...
    save_checkpoint(cfg, step, model=..., processor=..., optimizer=..., scheduler=..., dist=dist,
                    train_state={...})
    cleanup_distributed()

Checkpoint layout (one directory per optimiser step, written to ``checkpoints/.tmp-*`` and renamed
into place, so a kill during a save leaves the previous checkpoints untouched)::

    <output_dir>/checkpoints/step-00000040/
        config.json, model.safetensors, ...   HF model (full fine-tune) in ``model.dtype`` - ``from_pretrained`` loads it
        adapter_config.json, adapter_model.safetensors   LoRA runs: the peft adapter instead
        trainable.safetensors                 every trained tensor by name in float32 (the master weights;
                                              used to resume) - LoRA runs, and full fine-tunes whose
                                              ``model.dtype`` is not float32
        merged/                               LoRA runs, final checkpoint only: adapter merged into the base
        tokenizer*, preprocessor_config.json, chat_template*   the processor
        config.yaml                           the full videor1 Config (media budgets included)
        trainer_state.json                    step, total steps, sampler position, world size
        optimizer.pt, scheduler.pt            full (unsharded) optimiser state, keyed by parameter name
        rng/rank-00000.pt ...                 Python, NumPy, torch (and CUDA) generator states per rank

Precision: trainable parameters are float32 master weights throughout training (bf16 compute with
``train.precision: bf16``: FSDP2's ``MixedPrecisionPolicy`` gathers them in bf16 and reduces
gradients in fp32; otherwise autocast over the fp32 parameters). The HF files a checkpoint writes are
cast to ``model.dtype`` for other tools; ``trainable.safetensors`` keeps the exact fp32 masters so a
resume continues bit for bit.

Resuming reloads the model from the checkpoint directory itself (it is an HF model), overwrites the
trained tensors with their fp32 masters (:func:`load_trainable_state`), then restores optimiser,
scheduler, sampler position and RNG states with :func:`load_checkpoint`. A resume must
use the same number of processes (the sampler and the per-rank RNG states depend on it) and the same
total step count (otherwise the schedule would silently change); both are checked.

API by concern:

- processes: ``Dist``, ``init_distributed``, ``cleanup_distributed``, ``barrier``,
  ``all_reduce_metrics`` (sum / mean / max of a dict of scalars, one collective);
- model: ``wrap_model`` (DDP or FSDP2 ``fully_shard`` per ``_no_split_modules`` block; also shards a
  frozen reference model), ``unwrap_model``, ``is_fsdp``, ``gradient_sync`` (skip the all-reduce on
  non-final micro-batches), ``full_weights`` (FSDP2: gather every shard once for generation),
  ``autocast``, ``clip_gradients``, ``peak_memory_mb``; freezing, LoRA, gradient checkpointing and
  the float32 master weights are applied by
  ``videor1.models.loading.load_model_and_processor(cfg.model, for_training=True)``;
- optimisation: ``build_optimizer``, ``global_batch_size``, ``steps_per_epoch``, ``total_steps``,
  ``warmup_steps``, ``lr_factor``, ``build_scheduler``;
- checkpoints: ``save_checkpoint``, ``load_checkpoint``, ``resolve_resume``, ``latest_checkpoint``,
  ``list_checkpoints``, ``read_trainer_state``, ``model_source_for_resume``, ``load_trainable_state``,
  ``rng_state`` / ``set_rng_state``, ``CheckpointError``;
- logging: ``RunLogger`` (rank 0: ``config.yaml``, ``metrics.jsonl``, optional TensorBoard / W&B).

Both DDP and FSDP2 run on CPU with gloo (tests launch 2 processes with torchrun) and on GPU with nccl.

Departures from the reference (HF Trainer + DeepSpeed ZeRO-3): warmup reaches the peak LR on the last
warmup step instead of starting at 0; the schedule length is always the run's exact number of
optimiser steps; FSDP2 (plain PyTorch) gives the same ZeRO-3-style sharding of parameters, gradients
and optimiser states, so DeepSpeed is not a dependency.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as torch_dist
from safetensors.torch import save_file
from torch import nn

from videor1.config import Config, ConfigError, ModelConfig, TrainConfig, save_config
from videor1.models.budget import write_media_budget
from videor1.utils.logging import get_logger
from videor1.utils.rundir import MetricsWriter

log = get_logger(__name__)

CHECKPOINTS = "checkpoints"
STEP_PREFIX = "step-"
TMP_PREFIX = ".tmp-"
TRAINER_STATE = "trainer_state.json"
TRAINABLE_FILE = "trainable.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the run being resumed."""


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


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


def init_distributed(device: str | None = None) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Backend: ``nccl`` when the device is CUDA, ``gloo`` otherwise. Without ``torchrun`` (or with one
    process) no process group is created. ``device`` defaults to ``cuda:<LOCAL_RANK>`` when CUDA is
    available, else ``cpu``.
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
        torch_dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        log.info("rank %d/%d joined the %s process group on %s", rank, world_size, backend, dev)
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    """Leave the process group (call once at exit, also after errors)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


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
    """
    model.to(dist.device)
    if not dist.distributed:
        return model
    engine = train_cfg.distributed
    if engine == "ddp":
        if not trainable:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None
        )
    if engine == "fsdp2":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if trainable and train_cfg.precision == "bf16"
            else MixedPrecisionPolicy()
        )
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        block_names = set(getattr(base, "_no_split_modules", None) or [])
        if not block_names:
            raise ConfigError(
                f"{type(base).__name__} lists no _no_split_modules; fsdp2 can't find its blocks"
            )
        for module in model.modules():
            if type(module).__name__ in block_names:
                fully_shard(module, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        for method in ("get_image_features", "get_video_features"):
            register_fsdp_forward_method(model, method)
        if not trainable:  # no backward will come: free the root's gathered weights after each forward too
            model.set_reshard_after_forward(True)
        return model
    raise ConfigError(f"train.distributed: unknown engine {engine!r}; choose ddp or fsdp2")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under a DDP wrapper (FSDP2 shards in place, so it is returned as is)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@contextlib.contextmanager
def gradient_sync(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on micro-batches that are not the last of an accumulation step."""
    if enabled:
        yield
    elif isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    elif is_fsdp(model):
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    else:
        yield


@contextlib.contextmanager
def full_weights(model: nn.Module) -> Iterator[None]:
    """FSDP2: gather every shard once and keep the full weights until the block ends (no-op otherwise).

    Generation runs one forward per token; with sharded weights each forward would all-gather the
    whole model, and ranks whose rows finish early would run fewer forwards than the others and hang
    the collectives. Inside this block forwards communicate nothing, so each rank can stop when its
    own rows are done. Costs one full copy of the weights in ``param_dtype`` (bf16) while it lasts.
    """
    from torch.distributed.fsdp import FSDPModule

    modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
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
# RNG state
# --------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) generator states of this process."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------


def checkpoints_dir(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / CHECKPOINTS


def checkpoint_step(path: Path) -> int:
    return int(path.name[len(STEP_PREFIX) :])


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints (``step-*`` directories with a trainer state), oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith(STEP_PREFIX) and (p / TRAINER_STATE).is_file()
    ]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def resolve_resume(resume: str | None, output_dir: str | os.PathLike) -> Path | None:
    """``None`` → start fresh; ``"auto"`` → the newest complete checkpoint of the run, if any; else a path.

    Starting fresh in an ``output_dir`` that already holds checkpoints raises: the new run would
    overwrite some of them and leave others behind, and a later ``auto`` resume could pick a stale one.
    """
    if resume is None:
        found = latest_checkpoint(output_dir)
        if found is not None:
            raise CheckpointError(
                f"{output_dir} already holds checkpoints (newest: {found.name}); pass --resume auto to "
                "continue that run, or choose a new train.output_dir (or delete the old one) to start fresh"
            )
        return None
    if resume == "auto":
        found = latest_checkpoint(output_dir)
        if found is None:
            log.info(
                "resume=auto: no checkpoint under %s yet, starting from step 0", checkpoints_dir(output_dir)
            )
        return found
    path = Path(resume)
    if not (path / TRAINER_STATE).is_file():
        raise CheckpointError(f"--resume {path}: not a complete checkpoint (no {TRAINER_STATE} in it)")
    return path


def read_trainer_state(path: str | os.PathLike) -> dict[str, Any]:
    file = Path(path) / TRAINER_STATE
    if not file.is_file():
        raise CheckpointError(f"{path}: not a complete checkpoint (no {TRAINER_STATE})")
    return json.loads(file.read_text(encoding="utf-8"))


def _full_model_state(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """Unsharded CPU state dict; a collective under FSDP2 (every rank calls, rank 0 gets the tensors)."""
    if is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return None  # save_pretrained reads the module's own state dict


def _optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    if is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(
            model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
    return optimizer.state_dict()


def save_checkpoint(cfg: Config, step: int, **kwargs: Any) -> Path:
    """:func:`write_checkpoint`; a failed write (disk full, read-only directory) raises
    :class:`CheckpointError` naming the checkpoint, and its partial temporary directory is removed."""
    from videor1.train.guards import NonFiniteError

    final_dir = checkpoints_dir(cfg.train.output_dir) / f"{STEP_PREFIX}{step:08d}"
    try:
        return write_checkpoint(cfg, step, **kwargs)
    except (CheckpointError, NonFiniteError):
        raise
    except (OSError, RuntimeError) as e:
        shutil.rmtree(final_dir.with_name(TMP_PREFIX + final_dir.name), ignore_errors=True)
        raise CheckpointError(
            f"writing checkpoint {final_dir} failed ({type(e).__name__}: {e}); check the free disk space "
            f"and write access there (the earlier checkpoints are untouched)"
        ) from e


def write_checkpoint(
    cfg: Config,
    step: int,
    *,
    model: nn.Module,
    processor: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    dist: Dist,
    train_state: dict[str, Any],
    final: bool = False,
) -> Path:
    """Write ``checkpoints/step-<step>`` atomically on every rank's behalf; returns its path.

    Every rank must call this (gathering FSDP2 shards and writing per-rank RNG states are
    collective). Files go to ``checkpoints/.tmp-step-<step>`` first; rank 0 renames the directory into
    place only after every rank finished, then prunes to ``train.keep_last`` checkpoints. For LoRA runs
    the ``final`` checkpoint also gets ``merged/``: the adapter merged into a full HF model.
    ``train_state`` (step, sampler position, ...) is stored in ``trainer_state.json``.
    """
    from videor1.train.guards import check_finite_weights

    root = checkpoints_dir(cfg.train.output_dir)
    name = f"{STEP_PREFIX}{step:08d}"
    tmp = root / f"{TMP_PREFIX}{name}"
    final_dir = root / name
    check_finite_weights(model, dist, where=str(final_dir))
    if dist.is_main:
        if tmp.exists():
            shutil.rmtree(tmp)  # left by a save that was killed
        (tmp / "rng").mkdir(parents=True)
    barrier(dist)

    model_state = _full_model_state(model)
    optim_state = _optimizer_state(model, optimizer)
    torch.save(rng_state(), tmp / "rng" / f"rank-{dist.rank:05d}.pt")
    if dist.is_main:
        from videor1.models.loading import storage_dtype

        base = unwrap_model(model)
        dtype = storage_dtype(cfg.model)
        full_state = model_state if model_state is not None else base.state_dict()
        base.save_pretrained(tmp, state_dict=_cast_floats(full_state, dtype))
        _record_dtype(tmp, dtype)
        if _is_peft(base) or dtype != torch.float32:
            # the HF files hold LoRA weights only, or weights cast to model.dtype: keep the fp32 masters
            save_file(_trainable_state(base, model_state), str(tmp / TRAINABLE_FILE))
        if processor is not None:
            write_media_budget(processor, cfg.data.media)  # plain transformers / vLLM then resize as trained
            processor.save_pretrained(tmp)
        torch.save(optim_state, tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        save_config(cfg, tmp / "config.yaml")
        if final and _is_peft(base):
            _save_merged(base, full_state, processor, tmp / "merged", dtype=dtype)
        state = {**train_state, "step": step, "world_size": dist.world_size, "saved_at": time.time()}
        # trainer_state.json marks a complete checkpoint: it is written last, then the directory is renamed.
        (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
    barrier(dist)
    if dist.is_main:
        if final_dir.exists():  # re-saving a step (e.g. after resuming from it): swap, then delete
            old = root / f"{TMP_PREFIX}old-{name}"
            os.replace(final_dir, old)
            os.replace(tmp, final_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final_dir)
        _prune(root, cfg.train.keep_last, keep=final_dir)
        log.info("saved checkpoint %s", final_dir)
    barrier(dist)
    return final_dir


def _cast_floats(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``state`` with floating tensors in ``dtype``; tensors shared by several keys (tied weights) stay shared."""
    cast: dict[tuple[int, torch.Size], torch.Tensor] = {}
    out = {}
    for key, value in state.items():
        if value.is_floating_point() and value.dtype != dtype:
            memo = (value.data_ptr(), value.shape)
            if memo not in cast:
                cast[memo] = value.to(dtype)
            value = cast[memo]
        out[key] = value
    return out


def _record_dtype(directory: Path, dtype: torch.dtype) -> None:
    """Write ``dtype`` into a saved ``config.json`` (``save_pretrained`` records the fp32 masters')."""
    file = directory / "config.json"
    if not file.is_file():  # a peft adapter directory has no model config
        return
    data = json.loads(file.read_text(encoding="utf-8"))
    name = str(dtype).removeprefix("torch.")
    for section in [data, *(v for v in data.values() if isinstance(v, dict) and "dtype" in v)]:
        section["dtype"] = name
    file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _save_merged(
    peft_model: nn.Module,
    full_state: dict[str, torch.Tensor],
    processor: Any,
    out: Path,
    *,
    dtype: torch.dtype,
) -> None:
    """Save the adapter merged into the base weights, as a plain HF model in ``dtype``.

    Works from the (gathered) state dict, so it needs no second copy of the model and also runs under
    FSDP2, where modules can't be deep-copied.
    """
    from videor1.models.weights import inference_weights

    merged = {
        name: t.to("cpu").contiguous() for name, t in inference_weights(peft_model, full_state, dtype=dtype)
    }
    peft_model.get_base_model().save_pretrained(out, state_dict=merged)
    _record_dtype(out, dtype)
    if processor is not None:
        processor.save_pretrained(out)


def _prune(root: Path, keep_last: int, *, keep: Path) -> None:
    if keep_last <= 0:
        return
    found = sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX)), key=checkpoint_step
    )
    for old in found[:-keep_last]:
        if old != keep:
            shutil.rmtree(old)
            log.info("removed old checkpoint %s (keep_last=%d)", old, keep_last)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    dist: Dist,
    expected_total_steps: int | None = None,
) -> dict[str, Any]:
    """Restore optimiser, scheduler and this rank's RNG states; returns ``trainer_state.json``.

    The model weights are not touched here: the recipe builds the model from the checkpoint directory
    (an HF model, or base + adapter for LoRA) before wrapping it. Raises :class:`CheckpointError` when
    the world size or the total step count differ from the saved run.
    """
    path = Path(path)
    state = read_trainer_state(path)
    if state.get("world_size") != dist.world_size:
        raise CheckpointError(
            f"{path}: saved by {state.get('world_size')} process(es), resumed with {dist.world_size}; "
            "resume with the same number of processes"
        )
    if expected_total_steps is not None and state.get("total_steps") != expected_total_steps:
        raise CheckpointError(
            f"{path}: the run was planned for {state.get('total_steps')} steps but this config gives "
            f"{expected_total_steps}; the LR schedule would change - keep train.max_steps/epochs and the batch shape"
        )
    optim_state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    if is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(
            model, optimizer, optim_state, options=StateDictOptions(full_state_dict=True)
        )
    else:
        optimizer.load_state_dict(optim_state)
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu", weights_only=False))
    rng_file = path / "rng" / f"rank-{dist.rank:05d}.pt"
    if not rng_file.is_file():
        raise CheckpointError(f"{path}: no RNG state for rank {dist.rank} ({rng_file})")
    set_rng_state(torch.load(rng_file, map_location="cpu", weights_only=False))
    log.info("resumed from %s (step %d)", path, state["step"])
    return state


def model_source_for_resume(model_cfg: ModelConfig, checkpoint: Path | None) -> ModelConfig:
    """The model section to load from when resuming.

    A checkpoint with ``trainable.safetensors`` (LoRA, or weights stored in a dtype other than
    float32) resumes from the original ``model.path``, whose trained tensors
    :func:`load_trainable_state` then overwrites with the exact fp32 masters. Any other checkpoint
    is a complete float32 model: load the checkpoint directory itself.
    """
    import dataclasses

    if checkpoint is None or (checkpoint / TRAINABLE_FILE).is_file():
        return model_cfg
    if model_cfg.lora.enabled:
        raise CheckpointError(f"{checkpoint}: LoRA run but no {TRAINABLE_FILE} in the checkpoint")
    return dataclasses.replace(model_cfg, path=str(checkpoint), tiny=None)


def _is_peft(model: nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _trainable_state(model: nn.Module, full_state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    source = full_state if full_state is not None else dict(model.named_parameters())
    return {n: source[n].detach().to("cpu").contiguous() for n in names}


def load_trainable_state(model: nn.Module, checkpoint: Path) -> None:
    """Overwrite every trainable tensor with its fp32 master from the checkpoint's ``trainable.safetensors``.

    Written by LoRA runs (the peft adapter file is for users; this holds adapters and a fully
    trained ViT, if any) and by full fine-tunes whose HF files were cast to a ``model.dtype`` other
    than float32. Those resume from the original ``model.path`` plus this file
    (:func:`model_source_for_resume`), so frozen weights are the original ones too. A float32 full
    fine-tune has no such file: the model was loaded from the checkpoint itself.
    """
    from safetensors.torch import load_file

    file = checkpoint / TRAINABLE_FILE
    if not file.is_file():
        if _is_peft(model):
            raise CheckpointError(f"{checkpoint}: LoRA run but no {TRAINABLE_FILE} in the checkpoint")
        return
    saved = load_file(str(file))
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(saved) != expected:
        missing, extra = sorted(expected - set(saved)), sorted(set(saved) - expected)
        raise CheckpointError(
            f"{file}: trainable parameters differ from this model's (missing {missing[:3]}, "
            f"unexpected {extra[:3]}); resume with the same model.lora / model.freeze_vision settings"
        )
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------


class RunLogger:
    """Rank 0 writes ``config.yaml`` and one ``metrics.jsonl`` line per call; optional TensorBoard / W&B.

    On resume, lines after the resumed step are dropped first so the file never repeats a step.
    Other ranks hold a disabled logger (``log`` is a no-op there), so recipes call it unconditionally.
    """

    def __init__(self, cfg: Config, dist: Dist, *, resume_step: int = 0) -> None:
        self.enabled = dist.is_main
        out = Path(cfg.train.output_dir)
        self.metrics = MetricsWriter(out / "metrics.jsonl", enabled=self.enabled)
        self._tb = None
        self._wandb = None
        if not self.enabled:
            return
        save_config(cfg, out / "config.yaml")
        self.metrics.truncate_after_step(resume_step)
        if "tensorboard" in cfg.train.report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError(
                    "train.report_to has tensorboard but it is not installed: pip install tensorboard"
                ) from e
            self._tb = SummaryWriter(log_dir=str(out / "tensorboard"))
        if "wandb" in cfg.train.report_to:
            try:
                import wandb
            except ImportError as e:
                raise ConfigError(
                    "train.report_to has wandb but it is not installed: pip install wandb"
                ) from e
            from videor1.config import to_dict

            self._wandb = wandb.init(dir=str(out), config=to_dict(cfg), resume="allow")

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.metrics.write(record)
        step = int(record.get("step", 0))
        scalars = {k: v for k, v in record.items() if isinstance(v, int | float) and k != "step"}
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
