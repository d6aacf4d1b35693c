"""GRPO / T-GRPO recipe (``videor1 rl``): rollout → score → advantage → update → log, per step.

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
- The temporal bonus acts before normalisation (``rl.temporal_form: reference``) or on the
  normalised advantage (``advantage``), see ``videor1.algorithms.temporal.temporal_advantages``;
  it fires by the reference rule, or with ``rl.temporal_margin`` only when the ordered group beats
  the shuffled one by that margin. ``temporal/advantage_shift`` logs the mean
  ``|A_with_bonus - A_without|`` over video groups (how much the bonus moved the advantages).
- Ratio clipping with ``rl.num_iterations`` updates per rollout batch (old log-probs = the first
  pass's, exact since no update happened yet), three loss aggregations, optional Dr.GRPO
  advantages and dynamic sampling (DAPO), all in ``videor1.algorithms``. The aggregations are over
  the whole step: ``token-mean`` divides by the completion tokens of every micro-batch on every rank
  (counts all-reduced before the update), ``seq-mean`` by all their sequences.
- Precision: the policy trains float32 master weights with bf16 compute (``train.precision``); the
  reference model is loaded in ``model.dtype``. Under FSDP2 both are sharded; rollouts gather the
  policy's shards once (``full_weights``), so generation runs no collectives and ranks may
  finish their rows after different numbers of tokens.
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
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from videor1.algorithms.advantages import zero_variance_groups
from videor1.algorithms.losses import policy_loss, token_entropy, token_logprobs
from videor1.algorithms.sampling import GroupFiller
from videor1.algorithms.temporal import bonus_effect, temporal_advantages
from videor1.config import Config
from videor1.models.vision import (
    MediaFeatures,
    VisionCounter,
    encode_media,
    frame_order_to_patch_order,
    rope_positions,
    vision_is_trainable,
)
from videor1.rollout.base import RolloutEngine
from videor1.rollout.hf import HFRolloutEngine
from videor1.train import guards
from videor1.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_trainable_state,
    model_source_for_resume,
    resolve_resume,
    save_checkpoint,
)
from videor1.train.data import StepSampler, ensure_data
from videor1.train.distributed import (
    Dist,
    all_reduce_metrics,
    autocast,
    barrier,
    cleanup_distributed,
    full_weights,
    gradient_sync,
    init_distributed,
    peak_memory_mb,
    wrap_model,
)
from videor1.train.optim import build_optimizer, build_scheduler, clip_gradients, total_steps
from videor1.train.runlog import RunLogger
from videor1.types import Completion, Media, RewardBreakdown, Sample, VideoClip, VisionGeometry
from videor1.utils.logging import StepLog, get_logger, progress
from videor1.utils.seed import seed_everything

if TYPE_CHECKING:
    from videor1.models.adapters import FamilyAdapter

log = get_logger(__name__)


# --------------------------------------------------------------------------------------------------
# The things a step passes between its phases
# --------------------------------------------------------------------------------------------------


@dataclass
class Question:
    """One prompt of the step with its decoded media."""

    sample: Sample
    media: Media

    @property
    def is_video(self) -> bool:
        return isinstance(self.media, VideoClip)


@dataclass
class MicroBatch:
    """Rollouts of a few questions, everything the update needs, and their rewards."""

    questions: list[Question]
    prompts: dict[str, Any]  # collated ordered prompts (left padded) on the device
    features: MediaFeatures | None  # rollout-time vision encodings of the prompts (no grad; None: not yet)
    completions: list[list[Completion]]  # [question][G] ordered rollouts
    shuffled: list[list[Completion]]  # [question][G_s] shuffled rollouts (empty for images)
    rewards: list[RewardBreakdown] = field(default_factory=list)
    advantages: torch.Tensor | None = None  # [Q, G]
    bonus_effect: list[float] = field(default_factory=list)  # [Q] mean |A_with_bonus - A_without|
    old_logp: torch.Tensor | None = None  # [Q*G, C] first-pass log-probs
    ref_logp: torch.Tensor | None = None  # [Q*G, C]

    def subset(self, keep: list[int]) -> MicroBatch:
        """The same rollouts restricted to questions ``keep`` (prompt rows and their media pixels)."""
        if keep == list(range(len(self.questions))):
            return self
        is_video = [q.is_video for q in self.questions]
        image_keep = [sum(1 for v in is_video[:k] if not v) for k in keep if not is_video[k]]
        video_keep = [sum(1 for v in is_video[:k] if v) for k in keep if is_video[k]]
        prompts = {
            "input_ids": self.prompts["input_ids"][keep],
            "attention_mask": self.prompts["attention_mask"][keep],
        }
        for pixels, grid, chosen in (
            ("pixel_values", "image_grid_thw", image_keep),
            ("pixel_values_videos", "video_grid_thw", video_keep),
        ):
            if self.prompts.get(grid) is None or not chosen:
                continue
            sizes = self.prompts[grid].prod(-1).tolist()
            chunks = torch.split(self.prompts[pixels], sizes)
            prompts[pixels] = torch.cat([chunks[i] for i in chosen])
            prompts[grid] = self.prompts[grid][chosen]
        if self.prompts.get("second_per_grid_ts") is not None and video_keep:
            prompts["second_per_grid_ts"] = self.prompts["second_per_grid_ts"][video_keep]
        return MicroBatch(
            questions=[self.questions[k] for k in keep],
            prompts=prompts,
            features=self.features.select(image_keep, video_keep) if self.features is not None else None,
            completions=[self.completions[k] for k in keep],
            shuffled=[self.shuffled[k] for k in keep],
            rewards=[self.rewards[k] for k in keep],
        )


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
    engine: RolloutEngine
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    total_steps: int
    start_step: int
    logger: RunLogger
    counter: VisionCounter
    pad_token_id: int
    adapter: FamilyAdapter  # the policy's family: pixel factor (media sizes) and video processor kwargs


# --------------------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------------------


def setup(cfg: Config, *, resume: str | None = None) -> RLState:
    """Processes, data, policy + reference model, engine, optimiser, schedule, resume, logger."""
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter
    from videor1.models.loading import ensure_model, load_model_and_processor

    rl = cfg.rl
    dist = init_distributed()
    seed_everything(cfg.train.seed + dist.rank)

    # rank 0 prepares the (procedural) data and the tiny model; the others wait for it
    ensure_data(cfg.data, dist)
    if dist.is_main:
        ensure_model(cfg.model)
    barrier(dist)
    samples = load_records(cfg.data.train_file, limit=cfg.data.max_samples)
    if rl.temporal and not any(s.data_type == "video" for s in samples):
        log.warning(
            "rl.temporal is true but %s has no video records: this runs as plain GRPO", cfg.data.train_file
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
    model_cfg = model_source_for_resume(cfg.model, checkpoint)
    policy, processor = load_model_and_processor(model_cfg, for_training=True)
    if checkpoint is not None:
        load_trainable_state(policy, checkpoint)  # the exact fp32 masters
    adapter = get_adapter(policy)
    ref_model = None
    if rl.beta > 0:
        ref_model, _ = load_model_and_processor(cfg.model, for_training=False)
        ref_model = wrap_model(ref_model, dist, cfg.train, trainable=False)
    model = wrap_model(policy, dist, cfg.train)
    optimizer = build_optimizer(model, cfg.train)
    updates = total * rl.num_iterations
    scheduler = build_scheduler(optimizer, cfg.train, updates)
    start_step = 0
    if checkpoint is not None:
        state = load_checkpoint(
            checkpoint,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            dist=dist,
            expected_total_steps=total,
        )
        start_step = int(state["step"])
        sampler.check_resume(state.get("sampler", {}), str(checkpoint))

    tokenizer = processor.tokenizer
    eos = policy.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    if rl.engine == "vllm":
        from videor1.models.loading import storage_dtype
        from videor1.rollout.vllm import VLLMRolloutEngine

        engine: RolloutEngine = VLLMRolloutEngine(
            str(ensure_model(cfg.model)),
            eos_token_ids=eos_ids,
            suppress_token_ids=HFRolloutEngine.media_token_ids(policy),
            gpu_memory_utilization=rl.vllm_gpu_memory_utilization,
            max_model_len=rl.max_prompt_length + rl.sampling.max_new_tokens,
            dtype=storage_dtype(cfg.model),
            seed=cfg.train.seed + dist.rank,
        )
        if checkpoint is not None:
            engine.sync_weights(model)  # it loaded model.path; the policy has moved on
    else:
        engine = HFRolloutEngine(policy, eos_token_ids=eos_ids, pad_token_id=pad, tokenizer=tokenizer)
    counter = VisionCounter().install(policy)
    if ref_model is not None:
        counter.install(ref_model)
    logger = RunLogger(cfg, dist, resume_step=start_step)
    return RLState(
        cfg=cfg,
        dist=dist,
        samples=samples,
        sampler=sampler,
        model=model,
        policy=policy,
        ref_model=ref_model,
        processor=processor,
        engine=engine,
        optimizer=optimizer,
        scheduler=scheduler,
        total_steps=total,
        start_step=start_step,
        logger=logger,
        counter=counter,
        pad_token_id=pad,
        adapter=adapter,
    )


# --------------------------------------------------------------------------------------------------
# Randomness of a step
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepGenerators:
    """The randomness of one rank at one step: each generator lives on the device it draws on."""

    data: torch.Generator  # CPU: frame permutations (frames are CPU tensors), refill questions, vLLM seeds
    sampling: torch.Generator  # the policy's device: token draws


def step_generators(seed: int, step: int, rank: int, device: torch.device) -> StepGenerators:
    """Generators of one rank at one step, seeded from (seed, step, rank): a resume repeats them exactly."""
    base = ((seed * 1_000_003 + step) * 1009 + rank) * 7
    return StepGenerators(
        data=torch.Generator().manual_seed(base),
        sampling=torch.Generator(device=device).manual_seed(base + 1),
    )


# --------------------------------------------------------------------------------------------------
# Phase 1: rollout
# --------------------------------------------------------------------------------------------------


def load_questions(cfg: Config, samples: Sequence[Sample], *, geometry: VisionGeometry) -> list[Question]:
    """Each sample with its media, sized for ``geometry`` (the policy's ``FamilyAdapter.geometry``)."""
    from videor1.data.media import load_media

    return [
        Question(s, load_media(s, cfg.data.media_root, cfg.data.media, geometry=geometry)) for s in samples
    ]


def collate_prompts(
    cfg: Config,
    processor: Any,
    samples: Sequence[Sample],
    media: Sequence[Media],
    device: torch.device,
    *,
    adapter: FamilyAdapter,
) -> dict[str, Any]:
    """Left-padded prompts on ``device``; ``adapter`` is the policy's (media geometry, video kwargs)."""
    from videor1.data.collate import collate

    batch = collate(
        list(samples),
        list(media),
        processor,
        variant=cfg.data.prompt_variant,
        system_prompt=cfg.data.system_prompt,
        adapter=adapter,
    )
    prompt_len = batch["input_ids"].shape[1]
    if prompt_len > cfg.rl.max_prompt_length:
        where = ", ".join(s.source or str(s.problem_id) for s in samples)
        raise ValueError(
            f"prompt of {prompt_len} tokens exceeds rl.max_prompt_length={cfg.rl.max_prompt_length} ({where})"
        )
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}


def shuffled_clips(
    cfg: Config, questions: Sequence[Question], generator: torch.Generator, geometry: VisionGeometry
) -> list[tuple[int, Any]]:
    """``(question index, (shuffled clip, frame permutation))`` for every video question (T-GRPO only)."""
    from videor1.data.frames import shuffle_frames

    if not cfg.rl.temporal:
        return []
    return [
        (qi, shuffle_frames(q.media, generator, geometry=geometry, unit=cfg.rl.shuffle_unit))
        for qi, q in enumerate(questions)
        if q.is_video
    ]


def shuffled_video_features(
    cfg: Config,
    state: RLState,
    questions: Sequence[Question],
    prompts: dict[str, Any],
    features: MediaFeatures,
    twins: list[tuple[int, Any]],
) -> tuple[list[int], MediaFeatures, dict[str, torch.Tensor]]:
    """Encodings of each video question's shuffled twin (reused by patch, or freshly encoded).

    Returns the question indices that got a shuffled twin, their video encodings (with deepstack
    features for Qwen3-VL), and the grids / timing of those twins (``video_grid_thw``,
    ``second_per_grid_ts``).
    """
    if not twins:
        return [], MediaFeatures(), {}
    video_q = [qi for qi, _ in twins]
    video_slot = {qi: k for k, qi in enumerate(qi for qi, q in enumerate(questions) if q.is_video)}
    grids = prompts["video_grid_thw"]
    timing = prompts.get("second_per_grid_ts")
    slots = [video_slot[qi] for qi in video_q]  # collate lists videos in question order
    if cfg.rl.shuffle_unit == "temporal_patch":
        encoded = features.select([], slots).permute_videos(
            grids[slots],
            [
                frame_order_to_patch_order(perm, state.adapter.geometry.temporal_patch_size)
                for _, (_, perm) in twins
            ],
            spatial_merge_size=state.adapter.geometry.merge_size,
        )
    else:
        batch = collate_prompts(
            cfg,
            state.processor,
            [questions[qi].sample for qi in video_q],
            [clip for _, (clip, _) in twins],
            state.dist.device,
            adapter=state.adapter,
        )
        if torch.equal(batch["pixel_values_videos"], prompts["pixel_values_videos"]):
            raise AssertionError(
                "shuffled clips produced the ordered pixels: the temporal contrast would be a no-op"
            )
        with torch.no_grad():
            encoded = encode_media(state.policy, batch)
    meta = {"video_grid_thw": grids[slots]}
    if timing is not None:
        meta["second_per_grid_ts"] = timing[slots]
    return video_q, encoded, meta


def rollout(
    state: RLState, questions: list[Question], generators: StepGenerators
) -> tuple[MicroBatch, int, float]:
    """G rollouts per question, plus G_s on a shuffled twin of each video (one generate call)."""
    cfg = state.cfg
    prompts = collate_prompts(
        cfg,
        state.processor,
        [q.sample for q in questions],
        [q.media for q in questions],
        state.dist.device,
        adapter=state.adapter,
    )
    twins = shuffled_clips(cfg, questions, generators.data, state.adapter.geometry)
    if cfg.rl.engine == "vllm":
        return _rollout_vllm(state, questions, prompts, twins, generators)
    return _rollout_hf(state, questions, prompts, twins, generators)


def _rollout_hf(
    state: RLState,
    questions: list[Question],
    prompts: dict[str, Any],
    twins: list[tuple[int, Any]],
    generators: StepGenerators,
) -> tuple[MicroBatch, int, float]:
    """The transformers engine: encode once, reuse the encodings, prefill once per prompt."""
    cfg, rl = state.cfg, state.cfg.rl
    with full_weights(state.model), autocast(state.dist, cfg.train.precision):
        with torch.no_grad():
            features = encode_media(state.policy, prompts)
            twin_q, twin_features, twin_meta = shuffled_video_features(
                cfg, state, questions, prompts, features, twins
            )
        # the shuffled twin of question i is a copy of row i (same tokens) with permuted video encodings
        rows = list(range(len(questions))) + twin_q
        batch = {"input_ids": prompts["input_ids"][rows], "attention_mask": prompts["attention_mask"][rows]}
        if prompts.get("image_grid_thw") is not None:
            batch["image_grid_thw"] = prompts["image_grid_thw"]
        if prompts.get("video_grid_thw") is not None:
            batch["video_grid_thw"] = torch.cat(
                [prompts["video_grid_thw"], twin_meta.get("video_grid_thw", prompts["video_grid_thw"][:0])]
            )
            if prompts.get("second_per_grid_ts") is not None:
                batch["second_per_grid_ts"] = (
                    torch.cat([prompts["second_per_grid_ts"], twin_meta["second_per_grid_ts"]])
                    if twin_q
                    else prompts["second_per_grid_ts"]
                )
        counts = [rl.num_generations] * len(questions) + [rl.num_shuffled] * len(twin_q)
        out = state.engine.generate(
            batch, counts, rl.sampling, generator=generators.sampling, features=features.concat(twin_features)
        )
    shuffled: list[list[Completion]] = [[] for _ in questions]
    for qi, group in zip(twin_q, out.completions[len(questions) :]):
        shuffled[qi] = group
    mb = MicroBatch(questions, prompts, features, out.completions[: len(questions)], shuffled)
    return mb, out.generated_tokens, out.seconds


def _rollout_vllm(
    state: RLState,
    questions: list[Question],
    prompts: dict[str, Any],
    twins: list[tuple[int, Any]],
    generators: StepGenerators,
) -> tuple[MicroBatch, int, float]:
    """The vLLM engine: each prompt's text and decoded media; each shuffled twin with its own frames."""
    from videor1.data.collate import prompt_texts
    from videor1.rollout.vllm import check_prompt_tokens, vllm_prompt

    cfg, rl = state.cfg, state.cfg.rl
    texts = prompt_texts(
        [q.sample for q in questions],
        state.processor,
        variant=cfg.data.prompt_variant,
        system_prompt=cfg.data.system_prompt,
    )
    requests = [vllm_prompt(text, q.media, state.adapter) for text, q in zip(texts, questions)]
    requests += [vllm_prompt(texts[qi], clip, state.adapter) for qi, (clip, _) in twins]
    counts = [rl.num_generations] * len(questions) + [rl.num_shuffled] * len(twins)
    seeds = torch.randint(2**31 - 1, (len(requests),), generator=generators.data).tolist()
    out = state.engine.generate({"prompts": requests}, counts, rl.sampling, seeds=seeds)
    check_prompt_tokens(
        out.prompt_token_ids, prompts, [q.sample for q in questions], pad_id=state.pad_token_id
    )
    shuffled: list[list[Completion]] = [[] for _ in questions]
    for (qi, _), group in zip(twins, out.completions[len(questions) :]):
        shuffled[qi] = group
    # vLLM encoded the media itself; a frozen ViT's encodings are computed at the first update
    mb = MicroBatch(questions, prompts, None, out.completions[: len(questions)], shuffled)
    return mb, out.generated_tokens, out.seconds


# --------------------------------------------------------------------------------------------------
# Phase 2 + 3: score and advantages
# --------------------------------------------------------------------------------------------------


def score(cfg: Config, mb: MicroBatch) -> None:
    mb.rewards = [
        _score_group(cfg, q, group, shuffled)
        for q, group, shuffled in zip(mb.questions, mb.completions, mb.shuffled)
    ]


def _score_group(
    cfg: Config, q: Question, group: list[Completion], shuffled: list[Completion]
) -> RewardBreakdown:
    from videor1.rewards import score_group

    rl = cfg.rl
    return score_group(
        [c.text for c in group],
        q.sample.solution,
        q.sample.problem_type,
        lengths=[len(c.token_ids) for c in group],
        shuffled_completions=[c.text for c in shuffled] if rl.temporal else None,
        is_video=q.is_video,
        mode=rl.reward_mode,
        length_reward=rl.length_reward,
        mu=rl.temporal_mu,
        alpha=rl.temporal_alpha,
        omega=rl.length_omega,
        length_min=rl.length_min,
        length_max=rl.length_max,
        correct_threshold=rl.correct_threshold,
        margin=rl.temporal_margin,
    )


def advantages(cfg: Config, mb: MicroBatch) -> None:
    totals = torch.tensor([r.total for r in mb.rewards])  # [Q, G]
    bonuses = torch.tensor([r.temporal for r in mb.rewards])  # [Q, G]
    form, kind = cfg.rl.temporal_form, cfg.rl.advantage
    mb.advantages = temporal_advantages(totals - bonuses, bonuses, form=form, kind=kind)
    mb.bonus_effect = bonus_effect(totals - bonuses, bonuses, form=form, kind=kind).tolist()


# --------------------------------------------------------------------------------------------------
# Phase 4: update
# --------------------------------------------------------------------------------------------------


@dataclass
class Sequences:
    """Prompt + completion rows of one micro-batch, G rows per question."""

    input_ids: torch.Tensor  # [R, P + C]
    attention_mask: torch.Tensor  # [R, P + C]
    position_ids: torch.Tensor  # [3, R, P + C]
    completion_ids: torch.Tensor  # [R, C]
    completion_mask: torch.Tensor  # [R, C]
    question: list[int]  # [R] question index of each row


def build_sequences(
    prompts: dict[str, Any],
    positions: torch.Tensor,
    next_position: torch.Tensor,
    completions: list[list[Completion]],
    pad_id: int,
) -> Sequences:
    """Left-padded prompts (``[Q, P]``, positions ``[3, Q, P]``) joined with right-padded completions."""
    question = [qi for qi, group in enumerate(completions) for _ in group]
    rows = [c.token_ids for group in completions for c in group]
    width = max(len(r) for r in rows)
    device = prompts["input_ids"].device
    comp = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)  # [R, C]
    comp_mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)  # [R, C]
    for i, ids in enumerate(rows):
        comp[i, : len(ids)] = torch.tensor(ids, device=device)
        comp_mask[i, : len(ids)] = 1
    index = torch.tensor(question, device=device)
    comp_pos = (next_position[index][:, None] + torch.arange(width, device=device)).expand(
        3, -1, -1
    )  # [3, R, C]
    return Sequences(
        input_ids=torch.cat([prompts["input_ids"][index], comp], dim=1),
        attention_mask=torch.cat([prompts["attention_mask"][index], comp_mask], dim=1),
        position_ids=torch.cat([positions[:, index], comp_pos], dim=2),
        completion_ids=comp,
        completion_mask=comp_mask,
        question=question,
    )


def row_features(
    features: MediaFeatures, questions: list[Question], row_question: list[int]
) -> MediaFeatures:
    """Per-row encodings (each question's media repeated for its rows, sharing one encode)."""
    slot, n_img, n_vid = [], 0, 0
    for q in questions:
        slot.append(n_vid if q.is_video else n_img)
        n_vid, n_img = n_vid + q.is_video, n_img + (not q.is_video)
    images = [slot[qi] for qi in row_question if not questions[qi].is_video]
    videos = [slot[qi] for qi in row_question if questions[qi].is_video]
    return features.select(images, videos)


def sequence_logprobs(
    model: nn.Module, seqs: Sequences, features: MediaFeatures, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs ``[R, C]`` of the completion tokens and their logits ``[R, C, V]`` (completion positions only)."""
    width = seqs.completion_ids.shape[1]
    out = model(
        input_ids=seqs.input_ids,
        attention_mask=seqs.attention_mask,
        position_ids=seqs.position_ids,
        mm_encoder_outputs=features.as_encoder_outputs(),
        logits_to_keep=width + 1,
        use_cache=False,
    )
    logits = out.logits[:, :-1]  # [R, C, V]
    return token_logprobs(logits, seqs.completion_ids, temperature=temperature), logits


def update(state: RLState, micro_batches: list[MicroBatch], iteration: int, stats: dict[str, float]) -> None:
    """One optimiser update over the step's micro-batches (loss / grad accumulation).

    The loss aggregations divide by the step's totals over every micro-batch and rank (completion
    tokens, sequences), all-reduced first; each rank's backward is scaled by the world size because
    DDP and FSDP2 average gradients over ranks. ``stats`` gets step totals (sums over this rank's
    tokens of kl / clipped / entropy, and its part of the loss) that ``train`` all-reduces.
    """
    cfg, rl, dist = state.cfg, state.cfg.rl, state.dist
    temperature = rl.sampling.temperature if rl.sampling.temperature > 0 else 1.0
    train_vit = vision_is_trainable(state.policy)
    n_mb = len(micro_batches)
    local = {
        "sequences": sum(len(g) for mb in micro_batches for g in mb.completions),
        "tokens": sum(len(c.token_ids) for mb in micro_batches for g in mb.completions for c in g),
    }
    step_totals = all_reduce_metrics(local, dist, op="sum")
    update_loss = 0.0  # this rank's part of this update's loss
    for m, mb in enumerate(micro_batches):
        positions, next_position = rope_positions(state.policy, mb.prompts)
        seqs = build_sequences(mb.prompts, positions, next_position, mb.completions, state.pad_token_id)
        if not train_vit and mb.features is None:  # vLLM rollouts: encode the frozen ViT's inputs once
            with torch.no_grad(), autocast(dist, cfg.train.precision):
                mb.features = encode_media(state.policy, mb.prompts)
        if rl.beta > 0 and mb.ref_logp is None:
            with torch.no_grad(), autocast(dist, cfg.train.precision):
                ref_feats = encode_media(state.ref_model, mb.prompts) if train_vit else mb.features
                mb.ref_logp, _ = sequence_logprobs(
                    state.ref_model, seqs, row_features(ref_feats, mb.questions, seqs.question), temperature
                )
        with gradient_sync(state.model, m == n_mb - 1), autocast(dist, cfg.train.precision):
            feats = encode_media(state.policy, mb.prompts) if train_vit else mb.features
            logp, logits = sequence_logprobs(
                state.model, seqs, row_features(feats, mb.questions, seqs.question), temperature
            )
            if iteration == 0:
                mb.old_logp = logp.detach()
            loss, s = policy_loss(
                logp,
                mb.old_logp,
                mb.advantages.flatten().to(logp.device),
                seqs.completion_mask,
                ref_logp=mb.ref_logp,
                beta=rl.beta,
                clip_eps_low=rl.clip_eps_low,
                clip_eps_high=rl.clip_eps_high,
                agg=rl.loss_agg,
                max_len=rl.sampling.max_new_tokens,
                num_sequences=step_totals["sequences"],
                num_tokens=step_totals["tokens"],
            )
            (loss * dist.world_size).backward()
        with torch.no_grad():
            mask = seqs.completion_mask.float()
            entropy_sum = (token_entropy(logits.detach(), temperature=temperature) * mask).sum()
        update_loss += float(s["loss"])
        for key, value in (("loss", s["loss"]), ("kl_sum", s["kl_sum"]), ("clip_sum", s["clip_sum"])):
            stats[key] = stats.get(key, 0.0) + float(value)
        stats["entropy_sum"] = stats.get("entropy_sum", 0.0) + float(entropy_sum)
    stats["tokens"] = stats.get("tokens", 0.0) + float(local["tokens"])
    grad_norm = clip_gradients(state.model, cfg.train.max_grad_norm)
    stats["grad_norm"] = stats.get("grad_norm", 0.0) + grad_norm
    guards.check_update(
        state.model,
        state.optimizer,
        loss=update_loss,
        grad_norm=grad_norm,
        dist=dist,
        allowed_skips=cfg.train.nonfinite_skip,
        update=state.scheduler.last_epoch + 1,
    )
    stats["nonfinite_skipped"] = guards.skipped(state.optimizer)
    state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)


def update_stats(stats: dict[str, float], dist: Dist, iterations: int) -> dict[str, float]:
    """Step means of the update's sums: loss (summed over ranks), per-token kl / clip / entropy."""
    totals = all_reduce_metrics(
        {k: stats[k] for k in ("loss", "kl_sum", "clip_sum", "entropy_sum", "tokens")}, dist, op="sum"
    )
    tokens = max(totals["tokens"], 1.0)
    return {
        "loss": totals["loss"] / iterations,
        "kl": totals["kl_sum"] / tokens,
        "clip_fraction": totals["clip_sum"] / tokens,
        "entropy": totals["entropy_sum"] / tokens,
        "grad_norm": stats["grad_norm"] / iterations,  # the same on every rank
        "nonfinite_skipped": stats["nonfinite_skipped"],  # the same on every rank
    }


# --------------------------------------------------------------------------------------------------
# Phase 5: log
# --------------------------------------------------------------------------------------------------


def step_metrics(micro_batches: list[MicroBatch], *, zero_variance: int, groups: int) -> dict[str, float]:
    """Sums and counts over this rank's groups (every rank produces the same keys; reduced by sum)."""
    sums: dict[str, float] = {
        "n_rollouts": 0.0,
        "n_groups": float(groups),
        "n_zero_variance": float(zero_variance),
        "n_video": 0.0,
        "n_shuffled": 0.0,
        "n_fired": 0.0,
        "sum_p": 0.0,
        "sum_p_shuffled": 0.0,
        "sum_acc_shuffled": 0.0,
        "sum_bonus_effect": 0.0,
        "sum_tokens": 0.0,
        "sum_parse_failures": 0.0,
    }
    for name in ("accuracy", "format", "length", "temporal", "total"):
        sums[f"sum_{name}"] = 0.0
    for mb in micro_batches:
        for k, (q, r, group) in enumerate(zip(mb.questions, mb.rewards, mb.completions)):
            sums["n_rollouts"] += len(group)
            sums["sum_tokens"] += sum(len(c.token_ids) for c in group)
            sums["sum_parse_failures"] += r.parse_failures
            for name in ("accuracy", "format", "length", "temporal", "total"):
                sums[f"sum_{name}"] += sum(getattr(r, name))
            rec = r.temporal_record
            if q.is_video and rec.get("num_shuffled", 0) > 0:
                sums["n_video"] += 1
                sums["n_fired"] += float(bool(rec["fired"]))
                sums["sum_p"] += rec["p"]
                sums["sum_p_shuffled"] += rec["p_shuffled"]
                sums["n_shuffled"] += rec["num_shuffled"]
                sums["sum_acc_shuffled"] += rec["p_shuffled"] * rec["num_shuffled"]
                sums["sum_bonus_effect"] += mb.bonus_effect[k]
    return sums


def finish_metrics(totals: dict[str, float]) -> dict[str, float]:
    def ratio(a: str, b: str) -> float:
        return totals[a] / totals[b] if totals[b] else float("nan")

    out = {
        f"reward/{name}": ratio(f"sum_{name}", "n_rollouts")
        for name in ("accuracy", "format", "length", "temporal", "total")
    }
    out.update(
        {
            "temporal/p": ratio("sum_p", "n_video"),
            "temporal/p_shuffled": ratio("sum_p_shuffled", "n_video"),
            "temporal/fire_rate": ratio("n_fired", "n_video"),
            "temporal/advantage_shift": ratio("sum_bonus_effect", "n_video"),
            "accuracy/ordered": ratio("sum_accuracy", "n_rollouts"),
            "accuracy/shuffled": ratio("sum_acc_shuffled", "n_shuffled"),
            "completion_length": ratio("sum_tokens", "n_rollouts"),
            "parse_failure_rate": ratio("sum_parse_failures", "n_rollouts"),
            "zero_variance_rate": ratio("n_zero_variance", "n_groups"),
        }
    )
    return out


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def collect_micro_batches(state: RLState, step: int) -> tuple[list[MicroBatch], dict[str, float]]:
    """Rollout + score + advantages for this rank's questions (with dynamic-sampling refills).

    Without dynamic sampling the result is exactly ``gradient_accumulation_steps`` micro-batches of
    ``per_device_batch_size`` questions. With it, kept groups stay in the micro-batch they were rolled
    out in (a subset of it), so the number of pieces may differ between ranks; ``update`` runs all
    but the last piece without gradient sync, so the collective sequence is still identical.
    """
    cfg, rl, dist = state.cfg, state.cfg.rl, state.dist
    generators = step_generators(cfg.train.seed, step, dist.rank, dist.device)
    t = {"rollout": 0.0, "score": 0.0, "tokens": 0.0, "rollout_engine": 0.0, "video_questions": 0.0}

    def run(idx: list[int]) -> MicroBatch:
        t0 = time.perf_counter()
        questions = load_questions(cfg, [state.samples[i] for i in idx], geometry=state.adapter.geometry)
        mb, tokens, seconds = rollout(state, questions, generators)
        t1 = time.perf_counter()
        score(cfg, mb)
        t["rollout"] += t1 - t0
        t["score"] += time.perf_counter() - t1
        t["tokens"] += tokens
        t["rollout_engine"] += seconds
        t["video_questions"] += sum(q.is_video for q in mb.questions)
        return mb

    micro_batches = [run(indices) for indices in state.sampler.step_micro_batches(step)]
    rewards = torch.tensor([r.total for mb in micro_batches for r in mb.rewards])  # [Q, G]
    t["n_groups"] = float(rewards.shape[0])
    t["n_zero"] = float(zero_variance_groups(rewards).sum())
    if rl.dynamic_sampling:
        micro_batches = refill(state, micro_batches, run, generators.data, t)
    for mb in micro_batches:
        advantages(cfg, mb)
    return micro_batches, t


def refill(
    state: RLState, micro_batches: list[MicroBatch], run: Any, generator: torch.Generator, t: dict[str, float]
) -> list[MicroBatch]:
    """Dynamic sampling: drop zero-variance groups, roll out random questions until the batch is full."""
    rl, per_mb = state.cfg.rl, state.cfg.train.per_device_batch_size
    target = sum(len(mb.questions) for mb in micro_batches)
    filler: GroupFiller[tuple[int, int]] = GroupFiller(target=target)  # (micro-batch, question) pairs
    pool = list(micro_batches)

    def offer(m: int) -> None:
        mb = pool[m]
        filler.add([(m, k) for k in range(len(mb.questions))], torch.tensor([r.total for r in mb.rewards]))

    for m in range(len(pool)):
        offer(m)
    for _ in range(rl.max_resample_rounds):
        if filler.full:
            break
        pool.append(run(torch.randint(len(state.samples), (per_mb,), generator=generator).tolist()))
        offer(len(pool) - 1)
    t["n_groups"], t["n_zero"] = float(filler.seen), float(filler.dropped)
    chosen: dict[int, list[int]] = {}
    for m, k in filler.batch():
        chosen.setdefault(m, []).append(k)
    return [pool[m].subset(sorted(ks)) for m, ks in sorted(chosen.items())]


def train(cfg: Config, *, resume: str | None = None) -> Path:
    """Run (or resume) RL training; returns the final checkpoint directory."""
    cfg.validate(("data", "train", "rl"))
    state = setup(cfg, resume=resume)
    dist, rl = state.dist, cfg.rl
    final = None
    step_log = StepLog("rl", state.total_steps, state.start_step)
    try:
        for step in progress(
            range(state.start_step, state.total_steps), "rl", total=state.total_steps - state.start_step
        ):
            state.counter.reset()
            t_start = time.perf_counter()
            micro_batches, timing = collect_micro_batches(state, step)  # rollout + score + advantage
            t_update = time.perf_counter()
            lr = state.scheduler.get_last_lr()[0]  # the rate this step's (first) update uses
            stats: dict[str, float] = {}
            for iteration in range(rl.num_iterations):
                update(state, micro_batches, iteration, stats)
            state.engine.sync_weights(state.model)  # vLLM: load the updated policy (no-op for transformers)
            now = time.perf_counter()
            sums = step_metrics(
                micro_batches, zero_variance=int(timing["n_zero"]), groups=int(timing["n_groups"])
            )
            sums.update(vit_videos=float(state.counter.videos), n_video_questions=timing["video_questions"])
            reduced = all_reduce_metrics(sums, dist, op="sum")
            record = {"step": step + 1, **finish_metrics(reduced)}
            record["vit_passes_per_video_question"] = (
                reduced["vit_videos"] / reduced["n_video_questions"]
                if reduced.get("n_video_questions")
                else float("nan")
            )
            record.update(update_stats(stats, dist, rl.num_iterations))
            local = all_reduce_metrics(
                {
                    "time/rollout": timing["rollout"],
                    "time/score": timing["score"],
                    "time/update": now - t_update,
                    "time/step": now - t_start,
                    "rollout_tokens_per_s": timing["tokens"] / max(timing["rollout_engine"], 1e-9),
                },
                dist,
                op="mean",
            )
            record.update(local)
            record["lr"] = lr
            record["peak_memory_mb"] = peak_memory_mb(dist.device)
            if (step + 1) % cfg.train.log_every == 0 or step + 1 == state.total_steps:
                state.logger.log(record)
                if dist.is_main:
                    step_log(step + 1, reward=record["reward/total"], loss=record["loss"])
            is_last = step + 1 == state.total_steps
            if is_last or (cfg.train.save_every and (step + 1) % cfg.train.save_every == 0):
                final = save_checkpoint(
                    cfg,
                    step + 1,
                    model=state.model,
                    processor=state.processor,
                    optimizer=state.optimizer,
                    scheduler=state.scheduler,
                    dist=dist,
                    train_state={
                        "total_steps": state.total_steps,
                        "sampler": state.sampler.state_dict(step + 1),
                    },
                    final=is_last,
                )
    finally:
        state.counter.remove()
        state.logger.close()
        cleanup_distributed()
    if final is None:  # resumed at the last step: nothing left to run
        final = latest_checkpoint(cfg.train.output_dir)
    return final
