"""Phase 1 of an RL step: rollouts of one micro-batch of questions (``videor1.train.rl`` runs the step).

:func:`rollout` collates the ordered prompts, draws a shuffled twin of each video (T-GRPO), encodes
the media once and generates G completions per question and G_s per twin in one engine call. Both
engines generate from one batch (:func:`rollout_batch`) and reuse its encodings (a twin's are the
ordered clip's permuted by temporal patch, or its own frames encoded): the transformers engine as
``mm_encoder_outputs``, vLLM as embedding inputs beside the same token ids, grids and
``second_per_grid_ts``. A video no permutation changes (a still clip) gets no twin; the reason is
returned, never fatal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from videor1.models.adapters import core_model
from videor1.models.vision import MediaFeatures, encode_media, frame_order_to_patch_order
from videor1.rollout.base import RolloutOutput
from videor1.train.distributed import autocast, full_weights
from videor1.train.rl_types import Question, RLState, Rollouts, ShuffledTwin, StepGenerators
from videor1.types import Completion, Media, Sample, VisionGeometry

if TYPE_CHECKING:
    from videor1.config import Config
    from videor1.train.run import Run


def rollout(state: RLState, questions: Sequence[Question], generators: StepGenerators) -> Rollouts:
    """G rollouts per question, plus G_s on a shuffled twin of each video (one generate call)."""
    run, rl = state.run, state.run.cfg.rl
    prompts = collate_prompts(run, [q.sample for q in questions], [q.media for q in questions])
    twins, still = shuffled_twins(run.cfg, questions, generators.data, run.adapter.geometry)
    counts = [rl.num_generations] * len(questions) + [rl.num_shuffled] * len(twins)
    with autocast(run.dist, run.cfg.train.precision), torch.no_grad():
        with rollout_weights(run):
            features = encode_media(run.policy, prompts)
            batch, media = rollout_batch(state, questions, prompts, features, twins)
            if rl.engine != "vllm":
                out = state.engine.generate(
                    batch, counts, rl.sampling, generator=generators.sampling, features=media
                )
        if rl.engine == "vllm":
            out = _generate_vllm(state, questions, twins, batch, media, counts, generators)
    shuffled: list[list[Completion]] = [[] for _ in questions]
    for twin, group in zip(twins, out.completions[len(questions) :]):
        shuffled[twin.question] = group
    return Rollouts(
        questions=tuple(questions),
        prompts=prompts,
        features=features,
        ordered=tuple(out.completions[: len(questions)]),
        shuffled=tuple(shuffled),
        still_clips=tuple(still),
        tokens=out.generated_tokens,
        engine_seconds=out.seconds,
    )


def rollout_weights(run: Run) -> contextlib.AbstractContextManager:
    """The policy weights a rollout gathers under FSDP2 (:func:`full_weights`): the transformers engine
    generates with the policy, so all of them; vLLM has its own copy and gets the step's encodings, so
    only the root group and the vision tower's blocks (at 7B 3.5 GB in bf16 beside vLLM's share, not
    the whole 16.6 GB model), released before vLLM generates."""
    within = run.adapter.vision_tower(run.policy) if run.cfg.rl.engine == "vllm" else None
    return full_weights(run.model, within=within)


def join_rollout(run: Run) -> None:
    """What :func:`rollout` communicates, without rolling out: a rank whose batch is already full joins
    a refill round that other ranks need (under FSDP2, :func:`rollout_weights` all-gathers the same
    shards; what runs inside it communicates nothing)."""
    with rollout_weights(run):
        pass


def load_questions(cfg: Config, samples: Sequence[Sample], *, geometry: VisionGeometry) -> list[Question]:
    """Each sample with its media, sized for ``geometry`` (the policy's ``FamilyAdapter.geometry``)."""
    from videor1.data.media import load_media

    return [
        Question(s, load_media(s, cfg.data.media_root, cfg.data.media, geometry=geometry)) for s in samples
    ]


def collate_prompts(run: Run, samples: Sequence[Sample], media: Sequence[Media]) -> dict[str, Any]:
    """Left-padded generation prompts on the policy's device, sized by the policy's adapter."""
    from videor1.data.collate import collate

    cfg = run.cfg
    batch = collate(
        list(samples),
        list(media),
        run.processor,
        variant=cfg.data.prompt_variant,
        system_prompt=cfg.data.system_prompt,
        adapter=run.adapter,
    )
    prompt_len = batch["input_ids"].shape[1]
    if prompt_len > cfg.rl.max_prompt_length:
        where = ", ".join(s.source or str(s.problem_id) for s in samples)
        raise ValueError(
            f"prompt of {prompt_len} tokens exceeds rl.max_prompt_length={cfg.rl.max_prompt_length} ({where})"
        )
    return {k: (v.to(run.dist.device) if torch.is_tensor(v) else v) for k, v in batch.items()}


def shuffled_twins(
    cfg: Config, questions: Sequence[Question], generator: torch.Generator, geometry: VisionGeometry
) -> tuple[list[ShuffledTwin], list[str]]:
    """A shuffled twin of each video question (T-GRPO only), and why each still clip got none."""
    from videor1.data.frames import shuffle_frames

    if not cfg.rl.temporal:
        return [], []
    twins, still = [], []
    for qi, q in enumerate(questions):
        if not q.is_video:
            continue
        try:
            clip, order = shuffle_frames(q.media, generator, geometry=geometry, unit=cfg.rl.shuffle_unit)
        except ValueError as err:  # no permutation changes the clip: every frame alike, or too few
            still.append(f"{q.sample.source or q.sample.problem_id}: {err}")
            continue
        twins.append(ShuffledTwin(qi, clip, order))
    return twins, still


def rollout_batch(
    state: RLState,
    questions: Sequence[Question],
    prompts: dict[str, Any],
    features: MediaFeatures,
    twins: Sequence[ShuffledTwin],
) -> tuple[dict[str, Any], MediaFeatures]:
    """The rows every engine generates from, and their media encodings, in row order.

    Rows: the ordered prompts, then one copy of its question's prompt row per shuffled twin. Media:
    the ordered prompts' images and videos, then each twin's video (its encodings from
    :func:`_twin_encodings`) with its question's grid and ``second_per_grid_ts``. Both engines
    generate from exactly this batch, so the shuffled group is built once, the same way for both.
    """
    rows = list(range(len(questions))) + [t.question for t in twins]
    batch = {k: prompts[k][rows] for k in ("input_ids", "attention_mask")}
    for key in ("image_grid_thw", "video_grid_thw", "second_per_grid_ts"):
        if prompts.get(key) is not None:
            batch[key] = prompts[key]
    twin_features = MediaFeatures()
    if twins:
        video_slot = _slots(questions)
        slots = [video_slot[t.question] for t in twins]  # collate lists videos in question order
        twin_features = _twin_encodings(state, questions, prompts, features, twins, slots)
        batch["video_grid_thw"] = torch.cat([prompts["video_grid_thw"], prompts["video_grid_thw"][slots]])
        if prompts.get("second_per_grid_ts") is not None:
            batch["second_per_grid_ts"] = torch.cat(
                [prompts["second_per_grid_ts"], prompts["second_per_grid_ts"][slots]]
            )
    return batch, features.concat(twin_features)


def _twin_encodings(
    state: RLState,
    questions: Sequence[Question],
    prompts: dict[str, Any],
    features: MediaFeatures,
    twins: Sequence[ShuffledTwin],
    slots: list[int],
) -> MediaFeatures:
    """Each twin's video encodings: the ordered clip's permuted by temporal patch (exact, as the ViT
    attends within a patch), or its shuffled frames encoded afresh (``rl.shuffle_unit=frame``)."""
    run = state.run
    geometry = run.adapter.geometry
    if run.cfg.rl.shuffle_unit == "temporal_patch":
        return features.select([], slots).permute_videos(
            prompts["video_grid_thw"][slots],
            [frame_order_to_patch_order(t.frame_order, geometry.temporal_patch_size) for t in twins],
            spatial_merge_size=geometry.merge_size,
        )
    batch = collate_prompts(run, [questions[t.question].sample for t in twins], [t.clip for t in twins])
    return encode_media(run.policy, batch)


def _generate_vllm(
    state: RLState,
    questions: Sequence[Question],
    twins: Sequence[ShuffledTwin],
    batch: dict[str, Any],
    media: MediaFeatures,
    counts: list[int],
    generators: StepGenerators,
) -> RolloutOutput:
    """The vLLM engine: the same rollout batch as the transformers engine (``batch``, ``media``: see
    :func:`rollout_batch`), sent as token ids plus the step's own vision encodings (embedding inputs),
    so vLLM never runs its own vision tower."""
    from videor1.models.loading import storage_dtype
    from videor1.rollout.vllm import check_prompt_tokens, embedding_requests

    run = state.run
    config = core_model(run.policy).config
    requests = embedding_requests(batch, media, config, dtype=storage_dtype(run.cfg.model))
    seeds = torch.randint(2**31 - 1, (len(requests),), generator=generators.data).tolist()
    out = state.engine.generate({"prompts": requests}, counts, run.cfg.rl.sampling, seeds=seeds)
    names = [q.sample.source or str(q.sample.problem_id) for q in questions]
    names += [f"{names[t.question]} (shuffled)" for t in twins]
    check_prompt_tokens(out.prompt_token_ids, batch, names)
    return out


def _slots(questions: Sequence[Question]) -> list[int]:
    """Each question's index among the questions of its own media kind (how collate lists media)."""
    slot, counts = [], {False: 0, True: 0}
    for q in questions:
        slot.append(counts[q.is_video])
        counts[q.is_video] += 1
    return slot


def select_media(
    features: MediaFeatures, questions: Sequence[Question], picks: Sequence[int]
) -> MediaFeatures:
    """The encodings of questions ``picks`` (repeats allowed), in that order."""
    slot = _slots(questions)
    return features.select(
        [slot[k] for k in picks if not questions[k].is_video],
        [slot[k] for k in picks if questions[k].is_video],
    )
