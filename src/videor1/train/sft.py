"""SFT cold start: teach the model the ``<think>…</think>\\n<answer>…</answer>`` format on CoT records.

Recipe, top to bottom, the same skeleton as ``videor1.train.rl``: ``setup`` (processes, data, model,
optimiser, resume → ``SFTState``) → ``train`` (per step: micro-batches, token-weighted loss, clip,
step, log; ``save`` when due) → ``cleanup``. The same code runs in one process and under
``torchrun --nproc_per_node N`` (DDP or FSDP2, gloo on CPU, nccl on GPU).

What the reference did (Video-R1, https://arxiv.org/abs/2503.21776; an HF-Trainer-based SFT script with DeepSpeed):
1 epoch of Video-R1-COT-165k, lr 1e-6, global batch 8, bf16, gradient checkpointing, system message
"You are a helpful assistant", target ``process + "\\n" + solution``. Its loss ran over the prompt as
well: system and user text and the video/image pad tokens were all predicted. Frame/pixel budgets
lived in edited library constants and never reached the checkpoint, mRoPE assumed 2 fps in training
because ``second_per_grid_ts`` was dropped, batches held one sample per GPU, and nothing tied the LR
schedule's planned length to the steps actually run (the issue's "cosine over 65k steps, stop at
1.2k").

What we do:

- Loss on assistant tokens only (``labels`` from ``videor1.data.collate``: -100 on system, user,
  vision placeholders and padding). The loss is the mean over every target token of the global batch
  (all micro-batches, all ranks): each micro-batch contributes ``sum(token CE) * world / N_global``,
  so long and short answers weigh per token and gradient accumulation matches one big batch
  (a mean per micro-batch would weigh the tokens of short answers more).
- Several questions per device, images and videos in the same micro-batch, each video with its real
  sampling fps (``second_per_grid_ts``).
- Warmup + constant / linear / cosine over exactly the run's optimiser steps (``max_steps`` or
  ``epochs`` converted with the dataset size); resuming with a different plan is refused.
- A sample longer than ``train.max_seq_len`` raises an error naming it; nothing is cropped.
- Checkpoints are HF directories (``from_pretrained`` loads them) with optimiser, scheduler, sampler
  position, per-rank RNG states and ``config.yaml`` (media budgets included), written atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from videor1.config import Config
from videor1.train import guards
from videor1.train.checkpoint import (
    check_resume_settings,
    load_checkpoint,
    load_trainable_state,
    model_source_for_resume,
    resolve_resume,
    save_due,
    save_step,
)
from videor1.train.data import StepSampler, ensure_data, make_loader
from videor1.train.distributed import (
    Dist,
    all_reduce_metrics,
    autocast,
    barrier,
    cleanup_distributed,
    gradient_sync,
    init_distributed,
    peak_memory_mb,
    wrap_model,
)
from videor1.train.optim import build_optimizer, build_scheduler, clip_gradients, total_steps
from videor1.train.runlog import RunLogger
from videor1.types import ImageInput, Sample, VideoClip
from videor1.utils.logging import get_logger, make_progress
from videor1.utils.seed import seed_everything

if TYPE_CHECKING:
    from videor1.models.adapters import FamilyAdapter

log = get_logger(__name__)


@dataclass
class SFTCollator:
    """``[(sample, media), ...]`` → model inputs with assistant-only ``labels`` (picklable for workers).

    ``adapter`` (the model's ``FamilyAdapter``) gives the media geometry and the processor's video
    keyword arguments.
    """

    processor: Any
    cfg: Config
    adapter: FamilyAdapter

    def __call__(self, items: list[tuple[Sample, VideoClip | ImageInput]]) -> dict[str, Any]:
        from videor1.data.collate import collate
        from videor1.data.prompts import sft_target

        samples = [s for s, _ in items]
        batch = collate(
            samples,
            [m for _, m in items],
            self.processor,
            variant=self.cfg.data.prompt_variant,
            system_prompt=self.cfg.sft.system_prompt,
            targets=[sft_target(s) for s in samples],
            max_length=self.cfg.train.max_seq_len,  # raises naming the sample; nothing is cropped
            adapter=self.adapter,
        )
        return {"inputs": dict(batch), "samples": samples}


def target_token_loss(model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """Sum of next-token cross-entropy over target tokens, and their count.

    ``labels[b, t]`` is the id to predict at position t (-100 = masked); position t is predicted from
    logits at t - 1, hence the shift. Logits are computed only at the positions that predict a target
    in some row (``logits_to_keep``): the prompt and the vision tokens, most of the sequence, never
    reach the LM head.
    """
    labels = inputs["labels"]  # [B, L]
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    shift_labels = labels[:, 1:]  # [B, L-1]
    mask = shift_labels != -100  # [B, L-1]
    keep = mask.any(dim=0).nonzero().squeeze(1)  # [K] positions whose logits predict a target
    logits = model(**model_inputs, use_cache=False, logits_to_keep=keep).logits  # [B, K, V]
    kept = mask[:, keep]  # [B, K]
    picked = logits[kept].float()  # [N, V]
    loss_sum = F.cross_entropy(picked, shift_labels[:, keep][kept], reduction="sum")
    return loss_sum, int(mask.sum())


def _to_device(inputs: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


@dataclass
class SFTState:
    """What ``setup`` builds and ``train`` uses."""

    cfg: Config
    dist: Dist
    samples: list[Sample]
    sampler: StepSampler  # this invocation's steps [start_step, end_step)
    model: torch.nn.Module  # possibly DDP-wrapped
    processor: Any
    adapter: FamilyAdapter  # geometry.pixel_factor: 28 (Qwen2/2.5-VL) or 32 (Qwen3-VL)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loader: Iterator[dict[str, Any]]
    total_steps: int  # the run's plan (the schedule's length)
    start_step: int  # 0, or the resumed checkpoint's step
    end_step: int  # where this invocation stops (``stop_at_step`` or ``total_steps``)
    logger: RunLogger
    last_checkpoint: Path | None  # the newest checkpoint written or resumed from


def setup(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> SFTState:
    """Processes, data, model (from the checkpoint when resuming), wrapper, optimiser, schedule, loader, logger."""
    from videor1.data.prompts import sft_target
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter
    from videor1.models.loading import ensure_model, load_model_and_processor

    cfg.validate(("data", "train"))
    t = cfg.train
    dist = init_distributed()
    try:
        seed_everything(t.seed + dist.rank)
        train_file = ensure_data(cfg.data, dist)
        samples = load_records(train_file, limit=cfg.data.max_samples)
        for sample in samples:
            sft_target(sample)  # every record must carry a `process` (raises naming the record)
        total = total_steps(t, len(samples), dist.world_size)

        checkpoint = resolve_resume(resume, t.output_dir)
        check_resume_settings(cfg, checkpoint, dist, recipe="sft")  # settings that change the run must match
        model_cfg = model_source_for_resume(cfg.model, checkpoint)
        if dist.is_main:
            ensure_model(model_cfg)  # builds the tiny model once, before the other ranks read it
        barrier(dist)
        model, processor = load_model_and_processor(model_cfg, for_training=True)
        if checkpoint is not None:
            load_trainable_state(model, checkpoint)  # the exact fp32 masters
        adapter = get_adapter(model)  # before wrapping
        model = wrap_model(model, dist, t)
        optimizer = build_optimizer(model, t)
        scheduler = build_scheduler(optimizer, t, total)
        start = 0
        saved: dict[str, Any] = {}
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
        if checkpoint is not None:
            sampler.check_resume(saved["sampler"], str(checkpoint))
        collator = SFTCollator(processor, cfg, adapter)
        loader = iter(make_loader(cfg, samples, sampler, collator, geometry=adapter.geometry))
        logger = RunLogger(cfg, dist, resume_step=start, recipe="sft", total_steps=total)
    except BaseException:
        cleanup_distributed()
        raise
    log.info(
        "SFT: %d samples, %d steps (%d per epoch), global batch %d, starting at step %d",
        len(samples),
        total,
        sampler.steps_per_epoch,
        sampler.global_batch,
        start,
    )
    return SFTState(
        cfg=cfg,
        dist=dist,
        samples=samples,
        sampler=sampler,
        model=model,
        processor=processor,
        adapter=adapter,
        optimizer=optimizer,
        scheduler=scheduler,
        loader=loader,
        total_steps=total,
        start_step=start,
        end_step=end,
        logger=logger,
        last_checkpoint=checkpoint,
    )


def train(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> Path:
    """Run SFT as configured; returns the last checkpoint directory.

    ``resume``: ``None``, ``"auto"`` (newest checkpoint of ``train.output_dir``, if any) or a path.
    ``stop_at_step``: save and stop after this optimiser step while keeping the full run's schedule
    (a time-limited job; resume continues exactly).
    """
    state = setup(cfg, resume=resume, stop_at_step=stop_at_step)
    try:
        state.model.train()
        with make_progress() as bar:
            task = bar.add_task(
                "sft", total=state.total_steps, completed=state.start_step, visible=state.dist.is_main
            )
            for step in range(state.start_step, state.end_step):
                record = train_step(state, step)
                if state.logger.due(step + 1, state.end_step):
                    state.logger.log(record, loss=record["loss"], grad_norm=record["grad_norm"])
                bar.update(task, advance=1, description=f"sft loss {record['loss']:.4f}")
                if save_due(step + 1, state.end_step, cfg.train.save_every):
                    state.last_checkpoint = save_step(state, step + 1)
    finally:
        cleanup(state)
    return state.last_checkpoint if state.last_checkpoint is not None else Path(cfg.train.output_dir)


def cleanup(state: SFTState) -> None:
    state.logger.close()
    cleanup_distributed()


def train_step(state: SFTState, step: int) -> dict[str, Any]:
    """One optimiser step over ``gradient_accumulation_steps`` micro-batches; returns reduced metrics."""
    cfg, dist, model, optimizer, scheduler = (
        state.cfg,
        state.dist,
        state.model,
        state.optimizer,
        state.scheduler,
    )
    t = cfg.train
    start = time.perf_counter()
    micro = [next(state.loader) for _ in range(t.gradient_accumulation_steps)]
    local_targets = sum(int((m["inputs"]["labels"][:, 1:] != -100).sum()) for m in micro)
    n_targets = all_reduce_metrics({"n": local_targets}, dist)["n"]
    if n_targets == 0:
        raise ValueError(f"step {step + 1}: no target tokens in the global batch (all labels masked)")

    loss_sum, input_tokens, images, videos = 0.0, 0, 0, 0
    for i, m in enumerate(micro):
        inputs = _to_device(m["inputs"], dist.device)
        with gradient_sync(model, enabled=i == len(micro) - 1):
            with autocast(dist, t.precision):
                part, _ = target_token_loss(model, inputs)
            (part * dist.world_size / n_targets).backward()
        loss_sum += float(part.detach())
        input_tokens += int(inputs["attention_mask"].sum())
        images += sum(s.data_type == "image" for s in m["samples"])
        videos += sum(s.data_type == "video" for s in m["samples"])
    grad_norm = clip_gradients(model, t.max_grad_norm)
    guards.check_update(
        model,
        optimizer,
        loss=loss_sum,
        grad_norm=grad_norm,
        dist=dist,
        allowed_skips=t.nonfinite_skip,
        update=step + 1,
    )
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)

    elapsed = time.perf_counter() - start
    sums = all_reduce_metrics(
        {"loss_sum": loss_sum, "tokens": input_tokens, "images": images, "videos": videos}, dist
    )
    peak = all_reduce_metrics({"peak": peak_memory_mb(dist.device), "time": elapsed}, dist, op="max")
    samples = sums["images"] + sums["videos"]
    return {
        "step": step + 1,
        "epoch": (step + 1) / state.sampler.steps_per_epoch,
        "loss": sums["loss_sum"] / n_targets,
        "lr": lr,
        "grad_norm": grad_norm,
        "target_tokens": int(n_targets),
        "input_tokens": int(sums["tokens"]),
        "images": int(sums["images"]),
        "videos": int(sums["videos"]),
        "time/step": peak["time"],
        "tokens_per_s": sums["tokens"] / peak["time"],
        "samples_per_s": samples / peak["time"],
        "peak_memory_mb": peak["peak"],
        "nonfinite_skipped": guards.skipped(optimizer),
    }
