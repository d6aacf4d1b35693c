"""Checkpoints: atomic writes with full resume state, exact resume, and plain HF model directories.

Layout (one directory per optimiser step, written to ``checkpoints/.tmp-*`` and renamed into place,
so a kill during a save leaves the previous checkpoints untouched)::

    <output_dir>/checkpoints/step-00000040/
        config.json, model.safetensors, ...   HF model (full fine-tune) in ``model.dtype`` - ``from_pretrained`` loads it
        adapter_config.json, adapter_model.safetensors   LoRA runs: the peft adapter instead
        masters/                              every trained tensor by name in float32 (the master weights;
                                              used to resume), sharded - LoRA runs, and full fine-tunes
                                              whose ``model.dtype`` is not float32
        merged/                               LoRA runs, final checkpoint only: adapter merged into the base
        tokenizer*, processor_config.json, chat_template*      the processor (with the training media budget),
        preprocessor_config.json, video_preprocessor_config.json   and its files as transformers 4.x reads them
        config.yaml                           the full videor1 Config (media budgets included)
        trainer_state.json                    step, total steps, sampler position, world size
        optimizer/                            AdamW state keyed by parameter name, sharded;
          param_groups.json                   its hyperparameters (plain JSON)
        scheduler.pt                          the LR schedule's position
        rng/rank-00000.pt ...                 Python, NumPy, torch (and CUDA) generator states per rank

``masters/`` and ``optimizer/`` are ``torch.distributed.checkpoint`` directories
(:mod:`videor1.train.sharded`): every rank writes and reads only its own FSDP2 shard, so no process
holds the whole optimiser state (66 GB at 7B). The HF files are gathered one tensor at a time and
only rank 0 keeps them, already cast to ``model.dtype`` (:func:`_gathered_state`).

Nothing read on resume can run code: the ``.pt`` files hold tensors and plain values only and are
read with ``weights_only=True`` (:func:`load_state_file`), DCP's pickled ``.metadata`` is read with
an allow-list of its own data classes, and the sharded directories hold tensors only.

The HF files are cast to ``model.dtype`` for other tools; ``masters/`` keeps the exact fp32
masters. Resuming loads the model (:func:`model_source_for_resume`: the checkpoint itself when it
is a complete float32 model, else the original ``model.path``), wraps it, overwrites the trained
tensors with their masters (:func:`load_trainable_state`), then restores optimiser, scheduler,
sampler position and RNG states (:func:`load_checkpoint`). A resume must use the same number of processes
(the sampler and the per-rank RNG states depend on it) and the same total step count (otherwise the
schedule would silently change); both are checked. Before any of that, :func:`videor1.train.resume_settings.check_resume_settings`
compares the run's settings and the training file's content hash with the checkpoint's and refuses
what would change the run unless ``train.allow_changed`` names it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn

from videor1.config import Config, ModelConfig, save_config
from videor1.models.budget import write_media_budget
from videor1.models.processor_files import write_legacy_processor_files
from videor1.train.data import data_fingerprint
from videor1.train.distributed import Dist, barrier, unwrap_model
from videor1.train.sharded import ShardedStateError, load_sharded, read_metadata, save_sharded
from videor1.utils.logging import get_logger

log = get_logger(__name__)

CHECKPOINTS = "checkpoints"
STEP_PREFIX = "step-"
TMP_PREFIX = ".tmp-"
TRAINER_STATE = "trainer_state.json"
MASTERS_DIR = "masters"
OPTIMIZER_DIR = "optimizer"
PARAM_GROUPS = "param_groups.json"
DATA_FINGERPRINT = (
    "train_file_sha256"  # trainer_state.json: videor1.train.data.data_fingerprint of the training file
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the run being resumed."""


# --------------------------------------------------------------------------------------------------


# RNG state
# --------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) generator states of this process, as tensors and plain
    values only (so :func:`load_state_file` reads them back without unpickling any object)."""
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),  # (version, tuple of ints, None or float)
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np_name, np_keys, np_pos, np_has_gauss, np_cached = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_state_file(file: Path) -> Any:
    """A checkpoint's ``.pt`` file (optimiser, scheduler, RNG states), read with ``weights_only=True``.

    These files hold tensors and plain Python values only; anything else (a pickled object whose
    ``__reduce__`` would run code) is refused before it is built, naming the file.
    """
    if not file.is_file():
        raise CheckpointError(f"{file.parent}: not a complete checkpoint (no {file.name})")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{file}: refused to load it: it holds Python objects other than tensors and plain values "
            f"({first}); this videor1 never writes any, so it was altered, comes from another tool, or "
            "from a videor1 whose RNG files held NumPy arrays. Nothing in it was run; resume from a "
            "checkpoint you trust"
        ) from None
    except (RuntimeError, EOFError) as e:
        raise CheckpointError(
            f"{file}: unreadable ({type(e).__name__}: {e}); the checkpoint is damaged"
        ) from e


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


def _gathered_state(model: nn.Module, *, dtype: torch.dtype, keep: bool) -> dict[str, torch.Tensor]:
    """The module's state dict in full on the CPU, floating tensors cast to ``dtype``, for rank 0 (``keep``).

    FSDP2 shards are gathered one tensor at a time (every rank calls; a collective per sharded
    tensor) and each is cast before the next is gathered, so rank 0 peaks at the model in ``dtype``
    plus one fp32 tensor, never the fp32 model on top of it. Without FSDP2 the ranks other than 0
    return at once. Tensors shared by several keys (tied weights) stay shared.
    """
    from torch.distributed.tensor import DTensor

    out: dict[str, torch.Tensor] = {}
    done: dict[int, torch.Tensor | None] = {}  # on every rank: a tied tensor is gathered once by all
    for key, value in model.state_dict(keep_vars=True).items():
        if id(value) not in done:
            full = value.full_tensor() if isinstance(value, DTensor) else value
            if keep:
                full = full.detach().to("cpu")
                full = full.to(dtype) if full.is_floating_point() else full
            done[id(value)] = full if keep else None
            del full
        if keep:
            out[key] = done[id(value)]
    return out


def _trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every trained parameter by name (this rank's FSDP2 shard, or the whole tensor), sharing storage."""
    return {n: p.detach() for n, p in unwrap_model(model).named_parameters() if p.requires_grad}


def _save_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, directory: Path, dist: Dist) -> None:
    """AdamW state keyed by parameter name (each rank its shards) and the param groups as JSON; collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    state = get_optimizer_state_dict(model, optimizer)
    save_sharded({"state": state["state"]}, directory)
    if dist.is_main:
        (directory / PARAM_GROUPS).write_text(json.dumps(state["param_groups"], indent=1), encoding="utf-8")


class RecipeState(Protocol):
    """What a recipe's state holds that a checkpoint needs (``SFTState``, ``RLState``)."""

    cfg: Config
    dist: Dist
    model: nn.Module
    processor: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: Any  # videor1.train.data.StepSampler
    total_steps: int


def save_step(state: RecipeState, step: int) -> Path:
    """Checkpoint a recipe after optimiser step ``step`` (every rank calls it); the last step of the plan is final."""
    return save_checkpoint(
        state.cfg,
        step,
        model=state.model,
        processor=state.processor,
        optimizer=state.optimizer,
        scheduler=state.scheduler,
        dist=state.dist,
        train_state={
            "total_steps": state.total_steps,
            "sampler": state.sampler.state_dict(step),
            DATA_FINGERPRINT: data_fingerprint(state.cfg.data.train_file) if state.dist.is_main else None,
        },
        final=step == state.total_steps,
    )


def save_due(step: int, end: int, save_every: int) -> bool:
    """Checkpoint after optimiser step ``step`` (1-based): this run's last step, or every ``train.save_every``."""
    return step == end or bool(save_every and step % save_every == 0)


def save_checkpoint(cfg: Config, step: int, **kwargs: Any) -> Path:
    """:func:`write_checkpoint`; a failed write (disk full, read-only directory) raises
    :class:`CheckpointError` naming the checkpoint, and its partial temporary directory is removed."""
    from videor1.train.guards import NonFiniteError

    final_dir = checkpoints_dir(cfg.train.output_dir) / f"{STEP_PREFIX}{step:08d}"
    try:
        return write_checkpoint(cfg, step, **kwargs)
    except (CheckpointError, NonFiniteError):
        raise
    except (OSError, RuntimeError, SafetensorError) as e:  # safetensors reports a full disk as its own error
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
    from videor1.models.loading import storage_dtype

    check_finite_weights(model, dist, where=str(final_dir))
    if dist.is_main:
        if tmp.exists():
            shutil.rmtree(tmp)  # left by a save that was killed
        (tmp / "rng").mkdir(parents=True)
    barrier(dist)

    base = unwrap_model(model)
    dtype = storage_dtype(cfg.model)
    merge = final and _is_peft(base)  # merging LoRA needs the fp32 weights
    full_state = _gathered_state(base, dtype=torch.float32 if merge else dtype, keep=dist.is_main)
    if _is_peft(base) or dtype != torch.float32:
        # the HF files hold LoRA weights only, or weights cast to model.dtype: keep the fp32 masters
        save_sharded(_trainable_tensors(model), tmp / MASTERS_DIR)
    _save_optimizer(model, optimizer, tmp / OPTIMIZER_DIR, dist)
    torch.save(rng_state(), tmp / "rng" / f"rank-{dist.rank:05d}.pt")
    if dist.is_main:
        base.save_pretrained(tmp, state_dict=_cast_floats(full_state, dtype))
        _record_dtype(tmp, dtype)
        if processor is not None:
            write_media_budget(processor, cfg.data.media)  # plain transformers / vLLM then resize as trained
            processor.save_pretrained(tmp)
            write_legacy_processor_files(tmp)  # transformers 4.x / older vLLM read these
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        save_config(cfg, tmp / "config.yaml")
        if merge:
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
        write_legacy_processor_files(out)


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
    # read every small file and the optimiser's metadata before restoring anything: a refused or
    # damaged one leaves this run untouched (a damaged tensor file stops the run mid-restore)
    scheduler_state = load_state_file(path / "scheduler.pt")
    rng_file = path / "rng" / f"rank-{dist.rank:05d}.pt"
    if not rng_file.is_file():
        raise CheckpointError(f"{path}: no RNG state for rank {dist.rank} ({rng_file})")
    rng = load_state_file(rng_file)
    _load_optimizer(model, optimizer, path / OPTIMIZER_DIR)
    scheduler.load_state_dict(scheduler_state)
    set_rng_state(rng)
    log.info("resumed from %s (step %d)", path, state["step"])
    return state


def _load_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, directory: Path) -> None:
    """Restore :func:`_save_optimizer`'s state into ``optimizer`` (each rank reads its shards); collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    file = directory / PARAM_GROUPS
    if not file.is_file():
        raise CheckpointError(
            f"{directory.parent}: not a complete checkpoint (no {OPTIMIZER_DIR}/{PARAM_GROUPS})"
        )
    try:
        groups = json.loads(file.read_text(encoding="utf-8"))
        for group in groups:
            group["betas"] = tuple(group["betas"])  # JSON has no tuples; AdamW keeps them as one
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(
            f"{file}: unreadable ({type(e).__name__}: {e}); the checkpoint is damaged"
        ) from None
    with _sharded_errors():
        read_metadata(directory)
    current = get_optimizer_state_dict(model, optimizer)  # this rank's state tensors (created if new)
    if [g.get("params") for g in groups] != [g["params"] for g in current["param_groups"]]:
        raise CheckpointError(
            f"{file}: the optimiser's parameters differ from this model's; resume with the same "
            "model.lora / model.freeze_vision settings"
        )
    with _sharded_errors():
        load_sharded({"state": current["state"]}, directory)
    set_optimizer_state_dict(model, optimizer, {"state": current["state"], "param_groups": groups})


@contextlib.contextmanager
def _sharded_errors() -> Iterator[None]:
    try:
        yield
    except ShardedStateError as e:
        raise CheckpointError(str(e)) from None


def model_source_for_resume(model_cfg: ModelConfig, checkpoint: Path | None) -> ModelConfig:
    """The model section to load from when resuming.

    A checkpoint with ``masters/`` (LoRA, or weights stored in a dtype other than
    float32) resumes from the original ``model.path``, whose trained tensors
    :func:`load_trainable_state` then overwrites with the exact fp32 masters. Any other checkpoint
    is a complete float32 model: load the checkpoint directory itself.
    """
    import dataclasses

    if checkpoint is None or (checkpoint / MASTERS_DIR).is_dir():
        return model_cfg
    if model_cfg.lora.enabled:
        raise CheckpointError(f"{checkpoint}: LoRA run but no {MASTERS_DIR}/ in the checkpoint")
    rounded = _non_fp32_weights(checkpoint)
    if rounded:
        raise CheckpointError(
            f"{checkpoint}: no {MASTERS_DIR}/ (the fp32 master weights) and its model weights are "
            f"{rounded}, not float32: resuming would continue from rounded weights. Resume from a "
            "complete checkpoint"
        )
    return dataclasses.replace(model_cfg, path=str(checkpoint), tiny=None)


def _non_fp32_weights(checkpoint: Path) -> str:
    """The non-float32 floating dtypes of a checkpoint's ``model*.safetensors`` (read from the headers), or ''."""
    from safetensors import safe_open

    found = set()
    for file in checkpoint.glob("model*.safetensors"):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():
                dtype = f.get_slice(name).get_dtype()
                if dtype in ("BF16", "F16", "F8_E4M3", "F8_E5M2"):
                    found.add(dtype)
    return ", ".join(sorted(found))


def _is_peft(model: nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def load_trainable_state(model: nn.Module, checkpoint: Path) -> None:
    """Overwrite every trainable tensor with its fp32 master from the checkpoint's ``masters/``.

    Call it on the wrapped model: under FSDP2 each rank reads only its own shards. Written by LoRA
    runs (the peft adapter file is for users; this holds adapters and a fully trained ViT, if any)
    and by full fine-tunes whose HF files were cast to a ``model.dtype`` other than float32. Those
    resume from the original ``model.path`` plus these masters (:func:`model_source_for_resume`), so
    frozen weights are the original ones too. A float32 full fine-tune has none: the model was
    loaded from the checkpoint itself.
    """
    directory = checkpoint / MASTERS_DIR
    if not directory.is_dir():
        if _is_peft(unwrap_model(model)):
            raise CheckpointError(f"{checkpoint}: LoRA run but no {MASTERS_DIR}/ in the checkpoint")
        return
    params = _trainable_tensors(model)
    with _sharded_errors():
        saved = set(read_metadata(directory).state_dict_metadata)
    if saved != set(params):
        missing, extra = sorted(set(params) - saved), sorted(saved - set(params))
        raise CheckpointError(
            f"{directory}: trainable parameters differ from this model's (missing {missing[:3]}, "
            f"unexpected {extra[:3]}); resume with the same model.lora / model.freeze_vision settings"
        )
    with torch.no_grad(), _sharded_errors():
        load_sharded(params, directory)


# --------------------------------------------------------------------------------------------------
