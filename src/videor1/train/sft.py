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
  sampling fps (``second_per_grid_ts``); a micro-batch's media are encoded in one vision call
  (``videor1.models.vision.with_media_encoded``), so sharded ranks stay aligned whatever their mix.
- The collator adds explicit 3-D mRoPE ``position_ids`` (``videor1.models.positions``: Qwen's
  original rule, which the installed transformers no longer follows after a video).
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
from videor1.models.positions import rope_positions
from videor1.models.vision import with_media_encoded
from videor1.train import guards
from videor1.train.data import make_loader
from videor1.train.distributed import all_reduce_metrics, autocast, gradient_sync, peak_memory_mb
from videor1.train.run import Run, close_run, optimizer_update, result_dir, run_steps, start_run
from videor1.types import ImageInput, Sample, VideoClip
from videor1.utils.logging import get_logger

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
        inputs = dict(batch)
        inputs["position_ids"] = rope_positions(self.adapter, inputs).position_ids  # [3, B, L]
        return {"inputs": inputs, "samples": samples}


def target_token_loss(model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """Sum of next-token cross-entropy over target tokens, and their count.

    ``labels[b, t]`` is the id to predict at position t (-100 = masked); position t is predicted from
    logits at t - 1, hence the shift. Logits are computed only at the positions that predict a target
    in some row (``logits_to_keep``): the prompt and the vision tokens, most of the sequence, never
    reach the LM head. ``inputs`` must carry ``position_ids`` (``SFTCollator`` adds them), so the model
    never computes its own.
    """
    if "position_ids" not in inputs:
        raise ValueError("SFT inputs lack position_ids (videor1.models.positions.rope_positions)")
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
    """What ``setup`` builds and ``train`` uses: the run and its data loader."""

    run: Run
    loader: Iterator[dict[str, Any]]


def setup(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> SFTState:
    """The shared run setup (``videor1.train.run.start_run``) and the loader of this invocation's steps."""
    from videor1.data.prompts import sft_target

    cfg.validate(("data", "train"))
    # every record must carry a `process` (sft_target raises naming the record)
    run = start_run(cfg, recipe="sft", resume=resume, stop_at_step=stop_at_step, check_sample=sft_target)
    try:
        collator = SFTCollator(run.processor, cfg, run.adapter)
        loader = iter(make_loader(cfg, run.samples, run.sampler, collator, geometry=run.adapter.geometry))
    except BaseException:
        close_run(run)
        raise
    log.info(
        "SFT: %d samples, %d steps (%d per epoch), global batch %d, starting at step %d",
        len(run.samples),
        run.total_steps,
        run.sampler.steps_per_epoch,
        run.sampler.global_batch,
        run.start_step,
    )
    return SFTState(run, loader)


def train(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> Path:
    """Run SFT as configured; returns the last checkpoint directory.

    ``resume`` and ``stop_at_step``: see :func:`videor1.train.run.start_run`.
    """
    state = setup(cfg, resume=resume, stop_at_step=stop_at_step)
    try:
        state.run.model.train()
        run_steps(state.run, "sft", lambda step: train_step(state, step), shown=("loss", "grad_norm"))
    finally:
        close_run(state.run)
    return result_dir(state.run)


def train_step(state: SFTState, step: int) -> dict[str, Any]:
    """One optimiser step over ``gradient_accumulation_steps`` micro-batches; returns reduced metrics."""
    run = state.run
    dist, model, t = run.dist, run.model, run.cfg.train
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
                part, _ = target_token_loss(model, with_media_encoded(run.policy, inputs))
            (part * dist.world_size / n_targets).backward()
        loss_sum += float(part.detach())
        input_tokens += int(inputs["attention_mask"].sum())
        images += sum(s.data_type == "image" for s in m["samples"])
        videos += sum(s.data_type == "video" for s in m["samples"])
    lr = run.scheduler.get_last_lr()[0]
    grad_norm = optimizer_update(run, loss=loss_sum)

    elapsed = time.perf_counter() - start
    sums = all_reduce_metrics(
        {"loss_sum": loss_sum, "tokens": input_tokens, "images": images, "videos": videos}, dist
    )
    peak = all_reduce_metrics({"peak": peak_memory_mb(dist.device), "time": elapsed}, dist, op="max")
    samples = sums["images"] + sums["videos"]
    return {
        "step": step + 1,
        "epoch": (step + 1) / run.sampler.steps_per_epoch,
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
        "nonfinite_skipped": guards.skipped(run.optimizer),
    }
