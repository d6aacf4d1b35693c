"""What SFT and RL share around their steps: one run's setup, its progress bar, the optimiser update, and
the end of a step (log line, checkpoint).

:func:`start_run` does, for both recipes and in this order: processes and seeds, the training
records, the resume checkpoint, the model (read by rank 0 only, the others build it on the meta
device), the wrapper (DDP / FSDP2, which hands every rank its weights from rank 0), the exact fp32
masters of the checkpoint (each rank its shards), optimiser and schedule with the checkpoint's state, the data sampler of this
invocation's steps (checked against the checkpoint's), and the run log. On any error in between the
process group is torn down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from videor1.config import Config
from videor1.train import guards
from videor1.train.checkpoint import (
    load_checkpoint,
    load_trainable_state,
    model_source_for_resume,
    resolve_resume,
    save_due,
    save_step,
)
from videor1.train.data import StepSampler, ensure_data
from videor1.train.distributed import Dist, barrier, cleanup_distributed, init_distributed, wrap_model
from videor1.train.optim import build_optimizer, build_scheduler, clip_gradients, total_steps
from videor1.train.resume_settings import check_resume_settings
from videor1.train.runlog import RunLogger
from videor1.types import Sample
from videor1.utils.logging import make_progress
from videor1.utils.seed import seed_everything

if TYPE_CHECKING:
    from videor1.models.adapters import FamilyAdapter


@dataclass
class Run:
    """One training run in this process: what both recipes build before their first step."""

    cfg: Config
    dist: Dist
    samples: list[Sample]
    sampler: StepSampler  # this invocation's steps [start_step, end_step)
    model: nn.Module  # the trained module, DDP / FSDP2-wrapped when distributed
    policy: nn.Module  # the same module unwrapped (its config, vision tower, generate)
    processor: Any
    adapter: FamilyAdapter  # the model family: media geometry, video processor arguments
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    total_steps: int  # the run's plan (the schedule's length in steps)
    start_step: int  # 0, or the resumed checkpoint's step
    end_step: int  # where this invocation stops (``stop_at_step`` or ``total_steps``)
    logger: RunLogger
    last_checkpoint: Path | None  # the newest checkpoint written or resumed from


def start_run(
    cfg: Config,
    *,
    recipe: str,
    resume: str | None,
    stop_at_step: int | None,
    updates_per_step: int = 1,
    check_sample: Callable[[Sample], object] | None = None,
    needs_base_model: bool = False,
) -> Run:
    """Set up one run (module docstring); ``check_sample`` raises on a record the recipe cannot train on.

    ``resume``: ``None``, ``"auto"`` (newest checkpoint of ``train.output_dir``, if any) or a path.
    ``stop_at_step``: save and stop after this optimiser step while keeping the full run's schedule
    (a time-limited job; resume continues exactly).

    ``updates_per_step``: optimiser updates per step (the schedule's length is steps x updates).
    ``needs_base_model``: ``model.path`` is loaded again later (RL's reference model), so rank 0
    prepares it even when the policy comes from a checkpoint.
    """
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter
    from videor1.models.loading import ensure_model, load_model_and_processor

    t = cfg.train
    dist = init_distributed(timeout_s=t.collective_timeout_s)
    try:
        seed_everything(t.seed + dist.rank)
        samples = load_records(ensure_data(cfg.data, dist), limit=cfg.data.max_samples)
        if check_sample is not None:
            for sample in samples:
                check_sample(sample)
        total = total_steps(t, len(samples), dist.world_size)
        checkpoint = resolve_resume(resume, t.output_dir)
        check_resume_settings(cfg, checkpoint, dist, recipe=recipe)  # settings that change the run must match
        model_cfg = model_source_for_resume(cfg.model, checkpoint)
        if dist.is_main:  # a tiny model is built once, before the other ranks read it
            ensure_model(model_cfg)
            if needs_base_model:
                ensure_model(cfg.model)
        barrier(dist)
        # rank 0 reads the weights; the others build on the meta device and receive their shards
        policy, processor = load_model_and_processor(model_cfg, for_training=True, weights=dist.is_main)
        adapter = get_adapter(policy)  # before wrapping
        model = wrap_model(policy, dist, t)
        if checkpoint is not None:
            load_trainable_state(model, checkpoint)  # the exact fp32 masters, each rank its shards
        optimizer = build_optimizer(model, t)
        scheduler = build_scheduler(optimizer, t, total * updates_per_step)
        start, saved = 0, None
        if checkpoint is not None:
            saved = load_checkpoint(
                checkpoint,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                dist=dist,
                expected_total_steps=total,
            )
            start = int(saved["step"])
        end = total if stop_at_step is None else min(total, stop_at_step)
        sampler = StepSampler(
            len(samples),
            per_device=t.per_device_batch_size,
            accumulation=t.gradient_accumulation_steps,
            dist=dist,
            seed=t.seed,
            start_step=start,
            end_step=end,
        )
        if saved is not None:
            sampler.check_resume(saved["sampler"], str(checkpoint))
        logger = RunLogger(cfg, dist, resume_step=start, recipe=recipe, total_steps=total)
    except BaseException:
        cleanup_distributed()
        raise
    return Run(
        cfg=cfg,
        dist=dist,
        samples=samples,
        sampler=sampler,
        model=model,
        policy=policy,
        processor=processor,
        adapter=adapter,
        optimizer=optimizer,
        scheduler=scheduler,
        total_steps=total,
        start_step=start,
        end_step=end,
        logger=logger,
        last_checkpoint=checkpoint,
    )


def run_steps(run: Run, name: str, step: Callable[[int], dict[str, Any]], *, shown: tuple[str, ...]) -> None:
    """This invocation's steps: ``step(i)`` (0-based) trains and returns the step's metrics; each is
    logged (``shown`` on the plain line and the progress bar, drawn on rank 0) and saved when due."""
    with make_progress() as bar:
        task = bar.add_task(name, total=run.total_steps, completed=run.start_step, visible=run.dist.is_main)
        for i in range(run.start_step, run.end_step):
            record = step(i)
            values = {key: record[key] for key in shown}
            if run.logger.due(i + 1, run.end_step):
                run.logger.log(record, **values)
            if save_due(i + 1, run.end_step, run.cfg.train.save_every):
                run.last_checkpoint = save_step(run, i + 1)
            bar.update(
                task, advance=1, description=f"{name} " + "  ".join(f"{k} {v:.4g}" for k, v in values.items())
            )


def optimizer_update(run: Run, *, loss: float) -> float:
    """Clip, check for non-finite values, step optimiser and schedule; returns the gradient norm.

    ``loss`` is this rank's part of the update's loss (only its finiteness is checked).
    """
    grad_norm = clip_gradients(run.model, run.cfg.train.max_grad_norm)
    guards.check_update(
        run.model,
        run.optimizer,
        loss=loss,
        grad_norm=grad_norm,
        dist=run.dist,
        allowed_skips=run.cfg.train.nonfinite_skip,
        update=run.scheduler.last_epoch + 1,  # 1-based optimiser update, whatever the updates per step
    )
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return grad_norm


def close_run(run: Run) -> None:
    run.logger.close()
    cleanup_distributed()


def result_dir(run: Run) -> Path:
    """What ``train`` returns: the last checkpoint, or the output directory when none was written."""
    return run.last_checkpoint if run.last_checkpoint is not None else Path(run.cfg.train.output_dir)
