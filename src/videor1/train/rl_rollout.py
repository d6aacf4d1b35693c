"""Phases 1-3 of an RL step: rollout, score, advantages (with dynamic-sampling refills).

``collect_micro_batches(state, step)`` runs them for this rank's micro-batches and returns
``MicroBatch`` objects that carry everything the update (``videor1.train.rl_update``) needs:

1. **rollout** - each question's media decoded under the configured budgets; G completions per
   question and, for T-GRPO, G_s on a shuffled twin of each video, in one engine call
   (transformers: encode once, reuse the encodings, prefill once per prompt; vLLM: text + frames);
2. **score** - ``videor1.rewards.score_group``: accuracy, format, length, and the shuffled
   rollouts' accuracy (reward components only);
3. **advantages** - ``videor1.algorithms.temporal.temporal_advantages`` decides the temporal bonus
   from both groups' accuracies and places it (``rl.temporal_form``); dynamic sampling then keeps
   the groups whose advantages carry a signal, judged on exactly those advantages.

A video whose shuffled copy shows the same frames (a still clip: every frame alike, or too few
frames to permute) gets no shuffled group and no decision; it is counted (``still_clips``) and
logged once, never fatal. A reward scorer that raises scores 0, as in the reference, and is counted
(``scorer_errors``) and logged once, so a broken scorer is visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from videor1.algorithms.advantages import zero_variance_groups
from videor1.algorithms.sampling import GroupFiller
from videor1.algorithms.temporal import TemporalAdvantages, TemporalRule, temporal_advantages
from videor1.config import Config
from videor1.models.vision import MediaFeatures, encode_media, frame_order_to_patch_order
from videor1.train.distributed import autocast, full_weights
from videor1.types import Completion, Media, RewardBreakdown, Sample, VideoClip, VisionGeometry
from videor1.utils.logging import get_logger

if TYPE_CHECKING:
    from videor1.models.adapters import FamilyAdapter
    from videor1.train.rl import RLState

log = get_logger(__name__)


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
    """Rollouts of a few questions, everything the update needs, and their rewards and advantages."""

    questions: list[Question]
    prompts: dict[str, Any]  # collated ordered prompts (left padded) on the device
    features: MediaFeatures | None  # rollout-time vision encodings of the prompts (no grad; None: not yet)
    completions: list[list[Completion]]  # [question][G] ordered rollouts
    shuffled: list[list[Completion]]  # [question][G_s] shuffled rollouts (empty for images, still clips)
    rewards: list[RewardBreakdown] = field(default_factory=list)
    temporal: TemporalAdvantages | None = None  # advantages [Q, G], bonuses, shift, decision records
    old_logp: torch.Tensor | None = None  # [Q*G, C] first-pass log-probs
    ref_logp: torch.Tensor | None = None  # [Q*G, C]

    @property
    def advantages(self) -> torch.Tensor:  # [Q, G]
        assert self.temporal is not None, "advantages() has not run on this micro-batch"
        return self.temporal.advantages


@dataclass
class RolloutTally:
    """Seconds and counts of one step's rollout, score and advantage phases on this rank."""

    rollout_s: float = 0.0  # media loading, collation, encoding and generation
    engine_s: float = 0.0  # the engine's generate calls alone
    score_s: float = 0.0
    tokens: int = 0  # completion tokens generated (ordered and shuffled)
    video_questions: int = 0  # video questions rolled out (refills included)
    groups: int = 0  # groups rolled out (refills included)
    zero_variance: int = 0  # of them, groups whose rewards all tie
    dropped: int = 0  # groups dynamic sampling dropped for carrying no advantage
    still_clips: int = 0  # videos that got no shuffled twin (every frame alike)
    scorer_errors: int = 0  # completions whose reward scorer raised
    scored: int = 0  # completions scored (ordered and shuffled)


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


_warned: set[str] = set()


def _warn_once(kind: str, message: str, *args: Any) -> None:
    if kind not in _warned:
        _warned.add(kind)
        log.warning(message + " (logged once; counted in the step metrics)", *args)


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
) -> tuple[list[tuple[int, Any]], int]:
    """``(question index, (shuffled clip, frame permutation))`` per video question (T-GRPO only), and
    how many videos got none because their shuffled copy would show the same frames (still clips)."""
    from videor1.data.frames import shuffle_frames

    if not cfg.rl.temporal:
        return [], 0
    twins, still = [], 0
    for qi, q in enumerate(questions):
        if not q.is_video:
            continue
        try:
            twins.append(
                (qi, shuffle_frames(q.media, generator, geometry=geometry, unit=cfg.rl.shuffle_unit))
            )
        except ValueError as err:  # no permutation changes the clip: every frame alike, or too few
            still += 1
            _warn_once(
                "still clip",
                "%s: %s; it gets no shuffled group and no temporal decision",
                q.sample.source or q.sample.problem_id,
                err,
            )
    return twins, still


def shuffled_video_features(
    state: RLState,
    questions: Sequence[Question],
    prompts: dict[str, Any],
    features: MediaFeatures,
    twins: list[tuple[int, Any]],
) -> tuple[MediaFeatures, dict[str, torch.Tensor]]:
    """Encodings of each shuffled twin (reused by temporal patch, or freshly encoded) and their grids /
    timing (``video_grid_thw``, ``second_per_grid_ts``)."""
    cfg = state.cfg
    if not twins:
        return MediaFeatures(), {}
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
        with torch.no_grad():
            encoded = encode_media(state.policy, batch)
    meta = {"video_grid_thw": grids[slots]}
    if timing is not None:
        meta["second_per_grid_ts"] = timing[slots]
    return encoded, meta


def rollout(
    state: RLState, questions: list[Question], generators: StepGenerators
) -> tuple[MicroBatch, int, float, int]:
    """G rollouts per question, plus G_s on a shuffled twin of each video (one generate call).

    Returns the micro-batch, completion tokens generated, engine seconds and the still-clip count.
    """
    cfg = state.cfg
    prompts = collate_prompts(
        cfg,
        state.processor,
        [q.sample for q in questions],
        [q.media for q in questions],
        state.dist.device,
        adapter=state.adapter,
    )
    twins, still = shuffled_clips(cfg, questions, generators.data, state.adapter.geometry)
    run = _rollout_vllm if cfg.rl.engine == "vllm" else _rollout_hf
    mb, tokens, seconds = run(state, questions, prompts, twins, generators)
    return mb, tokens, seconds, still


def _rollout_hf(
    state: RLState,
    questions: list[Question],
    prompts: dict[str, Any],
    twins: list[tuple[int, Any]],
    generators: StepGenerators,
) -> tuple[MicroBatch, int, float]:
    """The transformers engine: encode once, reuse the encodings, prefill once per prompt."""
    cfg, rl = state.cfg, state.cfg.rl
    twin_q = [qi for qi, _ in twins]
    with full_weights(state.model), autocast(state.dist, cfg.train.precision):
        with torch.no_grad():
            features = encode_media(state.policy, prompts)
            twin_features, twin_meta = shuffled_video_features(state, questions, prompts, features, twins)
        # the shuffled twin of question i is a copy of row i (same tokens) with its own video encodings
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
    """Reward components of every group (``videor1.rewards.score_group``); scorer errors logged once."""
    from videor1.rewards import score_group

    rl = cfg.rl
    mb.rewards = [
        score_group(
            [c.text for c in group],
            q.sample.solution,
            q.sample.problem_type,
            lengths=[len(c.token_ids) for c in group],
            shuffled_completions=[c.text for c in shuffled],
            mode=rl.reward_mode,
            length_reward=rl.length_reward,
            omega=rl.length_omega,
            length_min=rl.length_min,
            length_max=rl.length_max,
            correct_threshold=rl.correct_threshold,
        )
        for q, group, shuffled in zip(mb.questions, mb.completions, mb.shuffled)
    ]
    for q, r in zip(mb.questions, mb.rewards):
        if r.scorer_errors:
            _warn_once(
                "scorer", "%s: the reward scorer raised (%s); scored 0", q.sample.source, r.scorer_error
            )


def temporal_rule(cfg: Config) -> TemporalRule | None:
    """The configured decision rule; None for plain GRPO."""
    rl = cfg.rl
    if not rl.temporal:
        return None
    return TemporalRule(rl.temporal_mu, rl.temporal_alpha, rl.correct_threshold, rl.temporal_margin)


def advantages(cfg: Config, mb: MicroBatch) -> None:
    """T-GRPO (or GRPO) advantages of every group, from rewards without bonus and both accuracies."""
    mb.temporal = temporal_advantages(
        torch.tensor([r.total for r in mb.rewards]),  # [Q, G]
        torch.tensor([r.accuracy for r in mb.rewards]),  # [Q, G]
        [r.shuffled_accuracy for r in mb.rewards],
        rule=temporal_rule(cfg),
        form=cfg.rl.temporal_form,
        kind=cfg.rl.advantage,
    )


def select_media(
    features: MediaFeatures, questions: Sequence[Question], picks: Sequence[int]
) -> MediaFeatures:
    """The encodings of questions ``picks`` (repeats allowed), in that order.

    ``features`` lists images and videos apart, each in question order; a question's slot is its
    index among the questions of its own kind.
    """
    slot, counts = [], {False: 0, True: 0}
    for q in questions:
        slot.append(counts[q.is_video])
        counts[q.is_video] += 1
    return features.select(
        [slot[k] for k in picks if not questions[k].is_video],
        [slot[k] for k in picks if questions[k].is_video],
    )


def subset(state: RLState, mb: MicroBatch, keep: list[int]) -> MicroBatch:
    """The same rollouts restricted to questions ``keep``: their prompts collated again (the processor
    lays out the pixels), their encodings, rewards and advantage rows."""
    if keep == list(range(len(mb.questions))):
        return mb
    questions = [mb.questions[k] for k in keep]
    features = None if mb.features is None else select_media(mb.features, mb.questions, keep)
    temporal = None
    if mb.temporal is not None:
        rows = torch.tensor(keep)
        t = mb.temporal
        temporal = TemporalAdvantages(
            t.advantages[rows], t.bonuses[rows], t.shift[rows], [t.records[k] for k in keep]
        )
    return MicroBatch(
        questions=questions,
        prompts=collate_prompts(
            state.cfg,
            state.processor,
            [q.sample for q in questions],
            [q.media for q in questions],
            state.dist.device,
            adapter=state.adapter,
        ),
        features=features,
        completions=[mb.completions[k] for k in keep],
        shuffled=[mb.shuffled[k] for k in keep],
        rewards=[mb.rewards[k] for k in keep],
        temporal=temporal,
    )


# --------------------------------------------------------------------------------------------------
# All three for this rank's micro-batches
# --------------------------------------------------------------------------------------------------


def collect_micro_batches(state: RLState, step: int) -> tuple[list[MicroBatch], RolloutTally]:
    """Rollout + score + advantages for this rank's questions (with dynamic-sampling refills).

    Without dynamic sampling the result is exactly ``gradient_accumulation_steps`` micro-batches of
    ``per_device_batch_size`` questions. With it, kept groups stay in the micro-batch they were rolled
    out in (a subset of it), so the number of pieces may differ between ranks; the update runs all
    but the last piece without gradient sync, so the collective sequence is still identical.
    """
    cfg, dist = state.cfg, state.dist
    generators = step_generators(cfg.train.seed, step, dist.rank, dist.device)
    tally = RolloutTally()

    def run(indices: list[int]) -> MicroBatch:
        t0 = time.perf_counter()
        samples = [state.samples[i] for i in indices]
        questions = load_questions(cfg, samples, geometry=state.adapter.geometry)
        mb, tokens, seconds, still = rollout(state, questions, generators)
        t1 = time.perf_counter()
        score(cfg, mb)
        advantages(cfg, mb)
        tally.rollout_s += t1 - t0
        tally.score_s += time.perf_counter() - t1
        tally.engine_s += seconds
        tally.tokens += tokens
        tally.still_clips += still
        tally.video_questions += sum(q.is_video for q in questions)
        tally.groups += len(questions)
        tally.zero_variance += int(zero_variance_groups(torch.tensor([r.total for r in mb.rewards])).sum())
        tally.scorer_errors += sum(r.scorer_errors for r in mb.rewards)
        tally.scored += sum(len(r.accuracy) + len(r.shuffled_accuracy) for r in mb.rewards)
        return mb

    micro_batches = [run(indices) for indices in state.sampler.step_micro_batches(step)]
    if cfg.rl.dynamic_sampling:
        micro_batches = refill(state, micro_batches, run, generators.data, tally)
    return micro_batches, tally


def refill(
    state: RLState,
    micro_batches: list[MicroBatch],
    run: Callable[[list[int]], MicroBatch],
    generator: torch.Generator,
    tally: RolloutTally,
) -> list[MicroBatch]:
    """Dynamic sampling: drop groups without advantage signal, roll out random questions until the batch is full."""
    rl, per_mb = state.cfg.rl, state.cfg.train.per_device_batch_size
    target = sum(len(mb.questions) for mb in micro_batches)
    filler: GroupFiller[tuple[int, int]] = GroupFiller(target=target)  # (micro-batch, question) pairs
    pool = list(micro_batches)
    for m, mb in enumerate(pool):
        filler.add([(m, k) for k in range(len(mb.questions))], mb.advantages)
    for _ in range(rl.max_resample_rounds):
        if filler.full:
            break
        pool.append(run(torch.randint(len(state.samples), (per_mb,), generator=generator).tolist()))
        filler.add([(len(pool) - 1, k) for k in range(len(pool[-1].questions))], pool[-1].advantages)
    tally.dropped = filler.dropped
    chosen: dict[int, list[int]] = {}
    for m, k in filler.batch():
        chosen.setdefault(m, []).append(k)
    return [subset(state, pool[m], sorted(ks)) for m, ks in sorted(chosen.items())]
