"""Phase 4 of an RL step: the policy update over this rank's micro-batches.

For each micro-batch: the prompts (left padded) are joined with their completions (right padded)
into ``G`` rows per question (:func:`build_sequences`); the vision tower runs once per question and
its encodings are repeated for the question's rows (:func:`row_features`); the reference model (once
per rollout batch) and the policy give the completion tokens' log-probs (:func:`sequence_logprobs`);
``videor1.algorithms.losses.policy_loss`` turns them and the advantages into the loss, aggregated
over the whole step (the step's completion tokens / sequences are all-reduced first) and scaled by
the world size because DDP and FSDP2 average gradients over ranks. Then clip, the non-finite guard,
one optimiser and scheduler step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from videor1.algorithms.losses import policy_loss, token_entropy, token_logprobs
from videor1.models.vision import MediaFeatures, encode_media, rope_positions, vision_is_trainable
from videor1.train import guards
from videor1.train.distributed import Dist, all_reduce_metrics, autocast, gradient_sync
from videor1.train.optim import clip_gradients
from videor1.train.rl_rollout import MicroBatch, Question, select_media
from videor1.types import Completion

if TYPE_CHECKING:
    from videor1.train.rl import RLState


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
    return select_media(features, questions, row_question)


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


@dataclass
class UpdateSums:
    """This rank's sums over the step's updates (``rl.num_iterations`` of them)."""

    loss: float = 0.0  # this rank's parts of the loss (the step's loss once summed over ranks)
    kl_sum: float = 0.0  # k3 KL summed over completion tokens
    clip_sum: float = 0.0  # clipped completion tokens
    entropy_sum: float = 0.0  # next-token entropy summed over completion tokens
    tokens: float = 0.0  # completion tokens
    grad_norm: float = 0.0  # summed over updates (the same on every rank)
    updates: int = 0
    nonfinite_skipped: int = 0  # updates dropped so far as non-finite (the same on every rank)

    def means(self, dist: Dist) -> dict[str, float]:
        """The step's metrics: loss, per-token kl / clip fraction / entropy, mean grad norm."""
        totals = all_reduce_metrics(
            {
                "loss": self.loss,
                "kl": self.kl_sum,
                "clip": self.clip_sum,
                "entropy": self.entropy_sum,
                "tokens": self.tokens,
            },
            dist,
            op="sum",
        )
        tokens, updates = max(totals["tokens"], 1.0), max(self.updates, 1)
        return {
            "loss": totals["loss"] / updates,
            "kl": totals["kl"] / tokens,
            "clip_fraction": totals["clip"] / tokens,
            "entropy": totals["entropy"] / tokens,
            "grad_norm": self.grad_norm / updates,
            "nonfinite_skipped": float(self.nonfinite_skipped),
        }


def update(state: RLState, micro_batches: list[MicroBatch], iteration: int, sums: UpdateSums) -> None:
    """One optimiser update over the step's micro-batches (loss / grad accumulation; module docstring)."""
    cfg, rl, dist = state.cfg, state.cfg.rl, state.dist
    temperature = rl.sampling.temperature if rl.sampling.temperature > 0 else 1.0
    train_vit = vision_is_trainable(state.policy)
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
        with gradient_sync(state.model, m == len(micro_batches) - 1), autocast(dist, cfg.train.precision):
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
            sums.entropy_sum += float((token_entropy(logits.detach(), temperature=temperature) * mask).sum())
        update_loss += float(s["loss"])
        sums.kl_sum += float(s["kl_sum"])
        sums.clip_sum += float(s["clip_sum"])
    grad_norm = clip_gradients(state.model, cfg.train.max_grad_norm)
    guards.check_update(
        state.model,
        state.optimizer,
        loss=update_loss,
        grad_norm=grad_norm,
        dist=dist,
        allowed_skips=cfg.train.nonfinite_skip,
        update=state.scheduler.last_epoch + 1,
    )
    sums.loss += update_loss
    sums.tokens += local["tokens"]
    sums.grad_norm += grad_norm
    sums.updates += 1
    sums.nonfinite_skipped = guards.skipped(state.optimizer)
    state.optimizer.step()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
