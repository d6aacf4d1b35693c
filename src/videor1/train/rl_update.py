"""Phases 4 and 5 of an RL step: log-prob caches, then the policy update over this rank's batches.

For each batch the prompts (left padded) are joined with their completions (right padded) into
``G`` rows per question (:func:`sequences`). Before the update, :func:`logprob_caches` computes the
rows' log-probs that stay fixed during it (no grad): the reference model's (``rl.beta > 0``) and,
when the step makes several updates, the policy's own before the first. :func:`update` then runs the
policy forward with grad (the vision tower once per question, its encodings repeated for the
question's rows), ``videor1.algorithms.losses.policy_loss`` over the whole step's tokens or
sequences (counts all-reduced first), scaled by the world size because DDP and FSDP2 average
gradients over ranks; then one optimiser update (``videor1.train.run.optimizer_update``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from videor1.algorithms.losses import policy_loss
from videor1.models.vision import (
    MediaFeatures,
    continuation_positions,
    encode_media,
    rope_positions,
    vision_is_trainable,
)
from videor1.train.distributed import all_reduce_metrics, autocast, gradient_sync
from videor1.train.head import completion_logprobs
from videor1.train.rl_rollout import select_media
from videor1.train.rl_types import LogProbCache, Question, RLState, TrainBatch, UpdateStats
from videor1.train.run import optimizer_update
from videor1.types import Completion


def logprob_caches(
    state: RLState, batches: Sequence[TrainBatch], seqs: Sequence[Sequences]
) -> list[LogProbCache]:
    """The reference model's log-probs (``rl.beta > 0``) and, with ``rl.num_iterations > 1``, the
    policy's before the first update, for every batch's rows (no grad)."""
    run, rl = state.run, state.run.cfg.rl
    train_vit = vision_is_trainable(run.policy)
    temperature = _temperature(state)
    caches = []
    with torch.no_grad(), autocast(run.dist, run.cfg.train.precision):
        for batch, seq in zip(batches, seqs):
            ref = old = None
            if rl.beta > 0:
                assert state.ref_model is not None
                ref = _logprobs(state.ref_model, batch, seq, temperature, encode=train_vit)[0]
            if rl.num_iterations > 1:
                old = _logprobs(run.model, batch, seq, temperature, encode=train_vit, vision=run.policy)[0]
            caches.append(LogProbCache(reference=ref, old=old))
    return caches


def update(
    state: RLState,
    batches: Sequence[TrainBatch],
    seqs: Sequence[Sequences],
    caches: Sequence[LogProbCache],
) -> UpdateStats:
    """One optimiser update over the step's batches (gradient accumulation; module docstring)."""
    run, rl = state.run, state.run.cfg.rl
    dist = run.dist
    train_vit = vision_is_trainable(run.policy)
    temperature = _temperature(state)
    local = {
        "sequences": sum(s.completion_ids.shape[0] for s in seqs),
        "tokens": sum(_tokens(s) for s in seqs),
    }
    step_totals = all_reduce_metrics(local, dist, op="sum")
    loss_sum = kl_sum = clip_sum = entropy_sum = 0.0
    for m, (batch, seq, cache) in enumerate(zip(batches, seqs, caches)):
        with gradient_sync(run.model, m == len(batches) - 1), autocast(dist, run.cfg.train.precision):
            logp, entropy = _logprobs(run.model, batch, seq, temperature, encode=train_vit, vision=run.policy)
            loss, s = policy_loss(
                logp,
                logp.detach() if cache.old is None else cache.old,
                batch.advantages.values.flatten().to(logp.device),
                seq.completion_mask,
                ref_logp=cache.reference,
                beta=rl.beta,
                clip_eps_low=rl.clip_eps_low,
                clip_eps_high=rl.clip_eps_high,
                agg=rl.loss_agg,
                max_len=rl.sampling.max_new_tokens,
                num_sequences=step_totals["sequences"],
                num_tokens=step_totals["tokens"],
            )
            (loss * dist.world_size).backward()
        entropy_sum += float((entropy * seq.completion_mask).sum())
        loss_sum += float(s["loss"])
        kl_sum += float(s["kl_sum"])
        clip_sum += float(s["clip_sum"])
    grad_norm = optimizer_update(run, loss=loss_sum)
    return UpdateStats(loss_sum, kl_sum, clip_sum, entropy_sum, int(local["tokens"]), grad_norm)


def sequences(state: RLState, batch: TrainBatch) -> Sequences:
    """The batch's prompt + completion rows with their mRoPE positions (``videor1.models.positions``),
    which the policy and reference forwards pass explicitly."""
    prompts = batch.rollouts.prompts
    positions, next_position = rope_positions(state.run.policy, prompts)
    return build_sequences(prompts, positions, next_position, batch.rollouts.ordered, state.pad_token_id)


def _logprobs(
    model: nn.Module,
    batch: TrainBatch,
    seq: Sequences,
    temperature: float,
    *,
    encode: bool,
    vision: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model``'s completion log-probs ``[R, C]`` and entropy ``[R, C]``; its vision tower (``vision``'s, when
    ``model`` is a wrapper) encodes the prompts' media when ``encode``, else the rollout's encodings serve."""
    r = batch.rollouts
    features = encode_media(vision if vision is not None else model, r.prompts) if encode else r.features
    return sequence_logprobs(model, seq, row_features(features, r.questions, seq.question), temperature)


def _temperature(state: RLState) -> float:
    sampling = state.run.cfg.rl.sampling
    return sampling.temperature if sampling.temperature > 0 else 1.0


def _tokens(seq: Sequences) -> int:
    return int(seq.completion_mask.sum())


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
    prompts: Mapping[str, Any],
    positions: torch.Tensor,
    next_position: torch.Tensor,
    completions: Sequence[list[Completion]],
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
    comp_pos = continuation_positions(next_position[index], width)  # [3, R, C]
    return Sequences(
        input_ids=torch.cat([prompts["input_ids"][index], comp], dim=1),
        attention_mask=torch.cat([prompts["attention_mask"][index], comp_mask], dim=1),
        position_ids=torch.cat([positions[:, index], comp_pos], dim=2),
        completion_ids=comp,
        completion_mask=comp_mask,
        question=question,
    )


def row_features(
    features: MediaFeatures, questions: Sequence[Question], row_question: list[int]
) -> MediaFeatures:
    """Per-row encodings (each question's media repeated for its rows, sharing one encode)."""
    return select_media(features, questions, row_question)


def sequence_logprobs(
    model: nn.Module, seqs: Sequences, features: MediaFeatures, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs ``[R, C]`` of the completion tokens and the entropy ``[R, C]`` there, from the LM
    head applied in chunks (``videor1.train.head``): no ``[R, C, V]`` logits are kept."""
    return completion_logprobs(
        model,
        seqs.completion_ids,
        temperature,
        input_ids=seqs.input_ids,
        attention_mask=seqs.attention_mask,
        position_ids=seqs.position_ids,
        mm_encoder_outputs=features.as_encoder_outputs(),
        use_cache=False,
    )
