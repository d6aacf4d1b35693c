"""GRPO / T-GRPO recipe (``videor1 rl``): setup, then per step rollout → score → advantage → update → log.

What the reference does (Video-R1, https://arxiv.org/abs/2503.21776): one question per GPU; G = 8 rollouts on
the ordered video and, for videos, G/2 = 4 on one random permutation of single frames; accuracy of
both groups feeds the temporal decision (``p >= 0.8 * p̃`` → ``+0.3`` on correct ordered rollouts);
total = accuracy (+ temporal) + format (+ length); std-normalised group advantages; one update per
rollout batch with the k3 KL to a frozen reference model (β = 0.04), mean over each sequence's tokens
then over sequences. Its ViT encoded every video 18 times per step and the shuffled group was for a
long time fed the ordered video.

What we do, and why:

- Several questions per device per micro-batch (``train.per_device_batch_size``), image and video
  mixed; every rank runs the same number of micro-batches, forwards and collectives whatever its
  media, so multi-process runs never wait on a rank that had no video.
- Rollouts (``videor1.rollout.hf``) prefill each prompt once and share its KV cache across its G
  samples; the ordered and shuffled prompts go through one ``generate`` call.
- Shuffled clips come from ``videor1.data.frames.shuffle_frames`` (``rl.shuffle_unit``: ``frame`` as
  the reference, or ``temporal_patch``). With ``temporal_patch`` the shuffled group reuses the
  ordered group's ViT encodings permuted by patch (exact; ``videor1.models.vision``). Shuffled
  rollouts only feed the decision; they never enter the loss.
- Vision encodings: rollout once (no grad); policy forward once per question *with* grad (shared by
  its G sequences); reference model once. With a frozen ViT the rollout's encodings serve all three.
  ``vit_passes_per_video_question`` logs the count (reference 18; here 3, or 1 frozen, +1 for
  ``shuffle_unit=frame``).
- Rewards are components only (accuracy, format, length; the shuffled rollouts' accuracy). The
  temporal bonus is decided and placed in one function,
  ``videor1.algorithms.temporal.temporal_advantages``: before normalisation
  (``rl.temporal_form: reference``) or on the normalised advantage (``advantage``); it fires by the
  reference rule, or with ``rl.temporal_margin`` only when the ordered group beats the shuffled one
  by that margin. ``temporal/advantage_shift`` logs the mean ``|A_with_bonus - A_without|`` over
  video groups (how much the bonus moved the advantages). ``reward/total`` is the reward without
  the bonus, ``reward/temporal`` the mean bonus.
- Dynamic sampling (DAPO) keeps the groups whose *advantages* carry a signal, so under the
  ``advantage`` form a fired group whose rollouts are all correct is kept.
- A still clip (no shuffled copy differs from it) gets no shuffled group and no decision, and a
  reward scorer that raises scores 0; both are counted (``temporal/still_clips``,
  ``reward/scorer_error_rate``) and logged once, never fatal or hidden.
- Ratio clipping with ``rl.num_iterations`` updates per rollout batch (old log-probs = the first
  pass's, exact since no update happened yet), three loss aggregations, optional Dr.GRPO
  advantages and dynamic sampling (DAPO), all in ``videor1.algorithms``. The aggregations are over
  the whole step: ``token-mean`` divides by the completion tokens of every micro-batch on every rank
  (counts all-reduced before the update), ``seq-mean`` by all their sequences.
- Precision: the policy trains float32 master weights with bf16 compute (``train.precision``); the
  reference model is loaded in ``model.dtype``. Under FSDP2 both are sharded; rollouts gather the
  policy's shards once (``videor1.train.distributed.full_weights``), so generation runs no
  collectives and ranks may finish their rows after different numbers of tokens.
- Videos are passed with their real fps (``second_per_grid_ts`` from the clip's sample rate via
  collate); the reference trained assuming 2 fps.
- Qwen3-VL: positions come from the model's own ``get_rope_index`` and the reused encodings carry
  its DeepStack features (``videor1.models.vision.MediaFeatures``).
- ``rl.engine``: ``transformers`` (``videor1.rollout.hf``, the policy module itself) or ``vllm``
  (``videor1.rollout.vllm``, one colocated engine per process, GPU only). vLLM gets each prompt's
  text and its decoded frames with their real fps; the shuffled twin gets its own permuted frames;
  its prompt tokens are checked against the training forward's; the policy's weights are loaded into
  it after every update.
- Sampling is reproducible: each step draws from two generators seeded from (seed, step, rank), one
  on the CPU for frame permutations and refill questions, one on the policy's device for tokens (a
  generator must live where it samples); the data order comes from the seed, so a resumed run
  repeats an uninterrupted one.

Layout: this module is the recipe (``setup`` → ``train`` → ``save`` → ``cleanup``, the same skeleton
as ``videor1.train.sft``); ``videor1.train.rl_rollout`` holds phases 1-3 (rollout, score,
advantages, dynamic sampling) and ``videor1.train.rl_update`` phase 4 (the policy update).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from videor1.config import Config
from videor1.models.vision import VisionCounter
from videor1.rollout.base import RolloutEngine
from videor1.rollout.hf import HFRolloutEngine
from videor1.train.checkpoint import (
    check_resume_settings,
    load_checkpoint,
    load_trainable_state,
    model_source_for_resume,
    resolve_resume,
    save_due,
    save_step,
)
from videor1.train.data import StepSampler, ensure_data
from videor1.train.distributed import (
    Dist,
    all_reduce_metrics,
    barrier,
    cleanup_distributed,
    init_distributed,
    peak_memory_mb,
    wrap_model,
)
from videor1.train.optim import build_optimizer, build_scheduler, total_steps
from videor1.train.rl_rollout import MicroBatch, RolloutTally, collect_micro_batches
from videor1.train.rl_update import UpdateSums, update
from videor1.train.runlog import RunLogger
from videor1.types import Sample
from videor1.utils.logging import get_logger, progress
from videor1.utils.seed import seed_everything

if TYPE_CHECKING:
    from videor1.models.adapters import FamilyAdapter

log = get_logger(__name__)


@dataclass
class RLState:
    """What ``setup`` builds and ``train`` uses."""

    cfg: Config
    dist: Dist
    samples: list[Sample]
    sampler: StepSampler
    model: nn.Module  # possibly DDP-wrapped policy
    policy: nn.Module  # the unwrapped policy
    ref_model: nn.Module | None
    processor: Any
    adapter: FamilyAdapter  # the policy's family: pixel factor (media sizes) and video processor kwargs
    engine: RolloutEngine
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    total_steps: int  # the run's plan (the schedule's length)
    start_step: int  # 0, or the resumed checkpoint's step
    end_step: int  # where this invocation stops (``stop_at_step`` or ``total_steps``)
    logger: RunLogger
    counter: VisionCounter
    pad_token_id: int
    last_checkpoint: Path | None  # the newest checkpoint written or resumed from


# --------------------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------------------


def setup(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> RLState:
    """Processes, data, policy + reference model, engine, optimiser, schedule, resume, logger."""
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter
    from videor1.models.loading import ensure_model, load_model_and_processor

    cfg.validate(("data", "train", "rl"))
    rl = cfg.rl
    if rl.engine == "vllm":
        _require_vllm()  # before any data or model is touched
    dist = init_distributed()
    try:
        seed_everything(cfg.train.seed + dist.rank)
        # rank 0 prepares the (procedural) data and the tiny model; the others wait for it
        ensure_data(cfg.data, dist)
        if dist.is_main:
            ensure_model(cfg.model)
        barrier(dist)
        samples = load_records(cfg.data.train_file, limit=cfg.data.max_samples)
        if rl.temporal and not any(s.data_type == "video" for s in samples):
            log.warning(
                "rl.temporal is true but %s has no video records: this runs as plain GRPO",
                cfg.data.train_file,
            )
        total = total_steps(cfg.train, len(samples), dist.world_size)
        sampler = StepSampler(
            len(samples),
            per_device=cfg.train.per_device_batch_size,
            accumulation=cfg.train.gradient_accumulation_steps,
            dist=dist,
            seed=cfg.train.seed,
            start_step=0,
            end_step=total,
        )

        checkpoint = resolve_resume(resume, cfg.train.output_dir)
        check_resume_settings(cfg, checkpoint, dist, recipe="rl")  # settings that change the run must match
        policy, processor = load_model_and_processor(
            model_source_for_resume(cfg.model, checkpoint), for_training=True
        )
        if checkpoint is not None:
            load_trainable_state(policy, checkpoint)  # the exact fp32 masters
        adapter = get_adapter(policy)
        ref_model = None
        if rl.beta > 0:
            ref_model, _ = load_model_and_processor(cfg.model, for_training=False)
            ref_model = wrap_model(ref_model, dist, cfg.train, trainable=False)
        model = wrap_model(policy, dist, cfg.train)
        optimizer = build_optimizer(model, cfg.train)
        scheduler = build_scheduler(optimizer, cfg.train, total * rl.num_iterations)
        start_step = 0
        if checkpoint is not None:
            saved = load_checkpoint(
                checkpoint,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                dist=dist,
                expected_total_steps=total,
            )
            start_step = int(saved["step"])
            sampler.check_resume(saved.get("sampler", {}), str(checkpoint))

        tokenizer = processor.tokenizer
        eos = policy.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
        engine = _engine(cfg, dist, policy, model, eos_ids, pad, tokenizer, resumed=checkpoint is not None)
        counter = VisionCounter().install(policy)
        if ref_model is not None:
            counter.install(ref_model)
        end = total if stop_at_step is None else min(total, stop_at_step)
        logger = RunLogger(cfg, dist, resume_step=start_step, recipe="rl", total_steps=total)
    except BaseException:
        cleanup_distributed()
        raise
    log.info(
        "RL: %d samples, %d steps, %d questions per step, starting at step %d",
        len(samples),
        total,
        sampler.global_batch,
        start_step,
    )
    return RLState(
        cfg=cfg,
        dist=dist,
        samples=samples,
        sampler=sampler,
        model=model,
        policy=policy,
        ref_model=ref_model,
        processor=processor,
        adapter=adapter,
        engine=engine,
        optimizer=optimizer,
        scheduler=scheduler,
        total_steps=total,
        start_step=start_step,
        end_step=end,
        logger=logger,
        counter=counter,
        pad_token_id=pad,
        last_checkpoint=checkpoint,
    )


def _require_vllm() -> None:
    import importlib.util

    from videor1.config import ConfigError

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "rl.engine=vllm needs vLLM, which is not installed: pip install -e '.[gpu]' (or rl.engine=transformers)"
        )
    if not torch.cuda.is_available():
        raise ConfigError("rl.engine=vllm needs a CUDA GPU; on CPU use rl.engine=transformers")


def _engine(
    cfg: Config,
    dist: Dist,
    policy: nn.Module,
    model: nn.Module,
    eos_ids: list[int],
    pad: int,
    tokenizer: Any,
    *,
    resumed: bool,
) -> RolloutEngine:
    """The configured rollout engine: the policy itself (transformers) or a colocated vLLM engine."""
    rl = cfg.rl
    if rl.engine != "vllm":
        return HFRolloutEngine(policy, eos_token_ids=eos_ids, pad_token_id=pad, tokenizer=tokenizer)
    from videor1.models.loading import ensure_model, storage_dtype
    from videor1.rollout.vllm import VLLMRolloutEngine

    engine = VLLMRolloutEngine(
        str(ensure_model(cfg.model)),
        eos_token_ids=eos_ids,
        suppress_token_ids=HFRolloutEngine.media_token_ids(policy),
        gpu_memory_utilization=rl.vllm_gpu_memory_utilization,
        max_model_len=rl.max_prompt_length + rl.sampling.max_new_tokens,
        dtype=storage_dtype(cfg.model),
        seed=cfg.train.seed + dist.rank,
    )
    if resumed:
        engine.sync_weights(model)  # it loaded model.path; the policy has moved on
    return engine


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def train(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> Path:
    """Run (or resume) RL training; returns the last checkpoint directory.

    ``resume``: ``None``, ``"auto"`` (newest checkpoint of ``train.output_dir``, if any) or a path.
    ``stop_at_step``: save and stop after this optimiser step while keeping the full run's schedule
    (a time-limited job; resume continues exactly).
    """
    state = setup(cfg, resume=resume, stop_at_step=stop_at_step)
    try:
        for step in progress(
            range(state.start_step, state.end_step), "rl", total=state.end_step - state.start_step
        ):
            state.counter.reset()
            started = time.perf_counter()
            micro_batches, tally = collect_micro_batches(state, step)  # 1-3: rollout, score, advantages
            updating = time.perf_counter()
            lr = state.scheduler.get_last_lr()[0]  # the rate this step's (first) update uses
            sums = UpdateSums()
            for iteration in range(cfg.rl.num_iterations):
                update(state, micro_batches, iteration, sums)  # 4: the policy update
            state.engine.sync_weights(state.model)  # vLLM: load the updated policy (no-op for transformers)
            timing = {
                "rollout": tally.rollout_s,
                "score": tally.score_s,
                "update": time.perf_counter() - updating,
            }
            timing["step"] = time.perf_counter() - started
            record = step_record(state, step + 1, micro_batches, tally, sums, lr=lr, seconds=timing)  # 5: log
            if state.logger.due(step + 1, state.end_step):
                state.logger.log(record, reward=record["reward/total"], loss=record["loss"])
            if save_due(step + 1, state.end_step, cfg.train.save_every):
                state.last_checkpoint = save_step(state, step + 1)
    finally:
        cleanup(state)
    return state.last_checkpoint if state.last_checkpoint is not None else Path(cfg.train.output_dir)


def cleanup(state: RLState) -> None:
    state.counter.remove()
    state.logger.close()
    cleanup_distributed()


# --------------------------------------------------------------------------------------------------
# Phase 5: log
# --------------------------------------------------------------------------------------------------


def step_record(
    state: RLState,
    step: int,
    micro_batches: list[MicroBatch],
    tally: RolloutTally,
    sums: UpdateSums,
    *,
    lr: float,
    seconds: dict[str, float],
) -> dict[str, Any]:
    """The step's metrics over every rank: rewards, temporal decisions, update, timing and memory."""
    dist = state.dist
    totals = all_reduce_metrics(
        _rank_sums(micro_batches, tally, vit_videos=state.counter.videos), dist, op="sum"
    )

    def ratio(a: str, b: str) -> float:
        return totals[a] / totals[b] if totals[b] else float("nan")

    record: dict[str, Any] = {"step": step}
    for name in ("accuracy", "format", "length", "temporal", "total"):
        record[f"reward/{name}"] = ratio(f"sum_{name}", "n_rollouts")
    record.update(
        {
            "reward/scorer_error_rate": ratio("scorer_errors", "scored"),
            "temporal/p": ratio("sum_p", "n_decided"),
            "temporal/p_shuffled": ratio("sum_p_shuffled", "n_decided"),
            "temporal/fire_rate": ratio("n_fired", "n_decided"),
            "temporal/advantage_shift": ratio("sum_shift", "n_decided"),
            "temporal/still_clips": totals["still_clips"],
            "accuracy/ordered": ratio("sum_accuracy", "n_rollouts"),
            "accuracy/shuffled": ratio("sum_acc_shuffled", "n_shuffled"),
            "completion_length": ratio("sum_tokens", "n_rollouts"),
            "parse_failure_rate": ratio("sum_parse_failures", "n_rollouts"),
            "zero_variance_rate": ratio("n_zero_variance", "n_groups"),
            "dynamic_sampling/dropped": totals["n_dropped"],
            "vit_passes_per_video_question": ratio("vit_videos", "n_video_questions"),
        }
    )
    record.update(sums.means(dist))
    local = {f"time/{k}": v for k, v in seconds.items()}
    local["rollout_tokens_per_s"] = tally.tokens / max(tally.engine_s, 1e-9)
    record.update(all_reduce_metrics(local, dist, op="mean"))
    record["lr"] = lr
    record["peak_memory_mb"] = peak_memory_mb(dist.device)
    return record


def _rank_sums(micro_batches: list[MicroBatch], tally: RolloutTally, *, vit_videos: int) -> dict[str, float]:
    """Sums and counts over this rank's kept groups (every rank produces the same keys; reduced by sum)."""
    sums: dict[str, float] = dict.fromkeys(
        [f"sum_{name}" for name in ("accuracy", "format", "length", "temporal", "total")]
        + ["n_rollouts", "n_decided", "n_fired", "n_shuffled", "sum_p", "sum_p_shuffled", "sum_acc_shuffled"]
        + ["sum_shift", "sum_tokens", "sum_parse_failures"],
        0.0,
    )
    for mb in micro_batches:
        assert mb.temporal is not None
        for k, (r, group) in enumerate(zip(mb.rewards, mb.completions)):
            sums["n_rollouts"] += len(group)
            sums["sum_tokens"] += sum(len(c.token_ids) for c in group)
            sums["sum_parse_failures"] += r.parse_failures
            for name in ("accuracy", "format", "length", "total"):
                sums[f"sum_{name}"] += sum(getattr(r, name))
            sums["sum_temporal"] += float(mb.temporal.bonuses[k].sum())
            record = mb.temporal.records[k]
            if record["num_shuffled"] > 0:
                sums["n_decided"] += 1
                sums["n_fired"] += float(bool(record["fired"]))
                sums["sum_p"] += record["p"]
                sums["sum_p_shuffled"] += record["p_shuffled"]
                sums["n_shuffled"] += record["num_shuffled"]
                sums["sum_acc_shuffled"] += record["p_shuffled"] * record["num_shuffled"]
                sums["sum_shift"] += float(mb.temporal.shift[k])
    sums.update(
        n_groups=float(tally.groups),
        n_zero_variance=float(tally.zero_variance),
        n_dropped=float(tally.dropped),
        still_clips=float(tally.still_clips),
        scorer_errors=float(tally.scorer_errors),
        scored=float(tally.scored),
        vit_videos=float(vit_videos),
        n_video_questions=float(tally.video_questions),
    )
    return sums
