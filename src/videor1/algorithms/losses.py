"""GRPO policy loss: clipped importance ratio, k3 KL to a reference model, three aggregations.

Per completion token t of rollout i (Video-R1, https://arxiv.org/abs/2503.21776, generalised):

    ratio_it   = exp(logp_it - old_logp_it)
    surrogate  = min(ratio_it * A_i, clip(ratio_it, 1 - eps_low, 1 + eps_high) * A_i)
    d_it       = clamp(ref_logp_it - logp_it, -10, 10)
    kl_it      = exp(d_it) - d_it - 1                       (k3 estimator, >= 0)
    loss_it    = -(surrogate - beta * kl_it)

The reference makes one update per rollout batch, so ``old_logp = logp.detach()``: the ratio is
exactly 1, clipping never acts, and the gradient is ``-A * grad(logp)`` as in its
``exp(logp - logp.detach()) * A``. With several updates per rollout batch (``num_iterations > 1``)
``old_logp`` is the first pass's log-probs and the clip bounds the step (PPO).

Aggregation over the ``[N, L]`` token grid (``mask`` marks completion tokens):

- ``seq-mean`` (reference): mean over each sequence's tokens, then mean over sequences.
- ``token-mean`` (DAPO): one mean over all tokens of the batch, so long answers are not diluted.
- ``dr-grpo`` (Dr.GRPO): sum over all tokens divided by a constant ``num_seqs * max_len``
  (``max_len`` = the generation budget), removing the length bias of per-sequence means.

"The batch" is the whole optimiser step: with gradient accumulation and several processes each call
sees one micro-batch of one rank, so the caller passes the step's totals (``num_sequences``,
``num_tokens``, summed over micro-batches and ranks) and the per-call losses then add up to the
step's loss. With micro-batches of 100 and 10 completion tokens, ``token-mean`` weighs every token
``1 / 110``; a mean per micro-batch would weigh them ``0.5 / 100`` and ``0.5 / 10``.

The functions here are pure tensor maths; they return ``(loss, stats)`` where ``stats`` holds
detached scalars for logging.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossAggregation = Literal["seq-mean", "token-mean", "dr-grpo"]

KL_LOG_RATIO_CLAMP = 10.0  # the reference clamps ref - logp to [-10, 10] before exp


def k3_kl(
    logp: torch.Tensor,  # [N, L] policy log-probs of the sampled tokens
    ref_logp: torch.Tensor,  # [N, L] reference-model log-probs of the same tokens
) -> torch.Tensor:  # [N, L] per-token KL estimate, >= 0
    """Schulman's k3 estimator of KL(policy || ref): ``exp(d) - d - 1`` with ``d = ref - logp``."""
    d = (ref_logp - logp).clamp(-KL_LOG_RATIO_CLAMP, KL_LOG_RATIO_CLAMP)  # [N, L]
    return torch.exp(d) - d - 1


def aggregate(
    per_token: torch.Tensor,  # [N, L] per-token loss
    mask: torch.Tensor,  # [N, L] 1 on completion tokens, 0 on padding
    agg: LossAggregation,
    *,
    max_len: int | None = None,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
) -> torch.Tensor:  # [] scalar
    """Reduce a per-token quantity to a scalar with one of the three aggregation rules.

    ``num_sequences`` / ``num_tokens``: the optimiser step's totals over every micro-batch and rank
    (module docstring); default this call's own ``N`` and ``mask.sum()``.

    >>> short, long = torch.ones(1, 10), torch.ones(1, 100)  # loss 1 on every token
    >>> parts = [aggregate(x, torch.ones_like(x), "token-mean", num_tokens=110) for x in (short, long)]
    >>> [round(float(p), 4) for p in parts]  # 10/110 and 100/110: one weight per token
    [0.0909, 0.9091]
    """
    mask = mask.to(per_token.dtype)
    sequences = per_token.shape[0] if num_sequences is None else num_sequences
    if agg == "seq-mean":
        per_seq = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # [N]
        return per_seq.sum() / max(sequences, 1)
    if agg == "token-mean":
        tokens = mask.sum() if num_tokens is None else torch.tensor(float(num_tokens))
        return (per_token * mask).sum() / tokens.clamp(min=1)
    if agg == "dr-grpo":
        length = per_token.shape[1] if max_len is None else max_len
        return (per_token * mask).sum() / (max(sequences, 1) * length)
    raise ValueError(f"unknown loss aggregation {agg!r}; choose 'seq-mean', 'token-mean' or 'dr-grpo'")


def policy_loss(
    logp: torch.Tensor,  # [N, L] current policy log-probs of the sampled tokens (with grad)
    old_logp: torch.Tensor,  # [N, L] log-probs when the rollouts were scored (no grad)
    advantages: torch.Tensor,  # [N] one advantage per rollout
    mask: torch.Tensor,  # [N, L] 1 on completion tokens
    *,
    ref_logp: torch.Tensor | None = None,  # [N, L] reference-model log-probs, None when beta == 0
    beta: float = 0.04,
    clip_eps_low: float = 0.2,
    clip_eps_high: float = 0.2,
    agg: LossAggregation = "seq-mean",
    max_len: int | None = None,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The GRPO loss (module docstring) and its logging stats.

    ``num_sequences`` / ``num_tokens`` are the step's totals (see :func:`aggregate`); the stats
    ``kl_sum`` / ``clip_sum`` are sums over this call's tokens, for exact step means.
    """
    if logp.shape != old_logp.shape or logp.shape != mask.shape:
        raise ValueError(
            f"logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and mask {tuple(mask.shape)} must match"
        )
    if advantages.shape != logp.shape[:1]:
        raise ValueError(f"advantages must be [N={logp.shape[0]}], got {tuple(advantages.shape)}")
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp (the reference model's log-probs)")

    adv = advantages.to(logp.dtype).unsqueeze(1)  # [N, 1]
    ratio = torch.exp(logp - old_logp.detach())  # [N, L]
    clipped_ratio = ratio.clamp(1 - clip_eps_low, 1 + clip_eps_high)  # [N, L]
    surrogate = torch.minimum(ratio * adv, clipped_ratio * adv)  # [N, L]
    per_token = -surrogate  # [N, L]
    kl = None
    if ref_logp is not None:
        kl = k3_kl(logp, ref_logp.detach())  # [N, L]
        if beta > 0:
            per_token = per_token + beta * kl

    totals = {"max_len": max_len, "num_sequences": num_sequences, "num_tokens": num_tokens}
    loss = aggregate(per_token, mask, agg, **totals)

    with torch.no_grad():
        m = mask.to(logp.dtype)
        n_tok = m.sum().clamp(min=1)
        # the clip is active where the clipped term is the smaller one and differs from the raw one
        clipped = ((ratio < 1 - clip_eps_low) & (adv < 0)) | (
            (ratio > 1 + clip_eps_high) & (adv > 0)
        )  # [N, L]
        kl_sum = (kl.detach() * m).sum() if kl is not None else torch.zeros((), dtype=logp.dtype)
        clip_sum = (clipped.to(m.dtype) * m).sum()
        stats = {
            "loss": loss.detach(),
            "pg_loss": aggregate(-surrogate.detach(), mask, agg, **totals),
            "clip_fraction": clip_sum / n_tok,
            "ratio_mean": (ratio.detach() * m).sum() / n_tok,
            "kl": kl_sum / n_tok,
            "kl_sum": kl_sum,
            "clip_sum": clip_sum,
        }
    return loss, stats


def token_logprobs(
    logits: torch.Tensor,  # [N, L, V] logits that predict each token in ``token_ids``
    token_ids: torch.Tensor,  # [N, L] the sampled tokens
    *,
    temperature: float = 1.0,
) -> torch.Tensor:  # [N, L] log p(token) under softmax(logits / temperature)
    """Log-prob of each chosen token (the temperature the rollouts were sampled with)."""
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logits = logits.float()
    picked = logits.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)  # [N, L]
    return picked - torch.logsumexp(logits, dim=-1)  # [N, L]


def token_entropy(
    logits: torch.Tensor,  # [N, L, V]
    *,
    temperature: float = 1.0,
) -> torch.Tensor:  # [N, L] entropy of softmax(logits / temperature) in nats
    """Entropy of the next-token distribution (a logging metric; no gradient needed)."""
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logp = F.log_softmax(logits.float(), dim=-1)  # [N, L, V]
    return -(logp.exp() * logp).sum(dim=-1)


HEAD_CHUNK_TOKENS = 1024
"""Tokens per chunk of :func:`head_token_logprobs`: the largest logits tensor it holds is
``HEAD_CHUNK_TOKENS x V`` (fp32: 0.58 GiB at Qwen2.5-VL's V = 152,064)."""


def head_token_logprobs(
    hidden: torch.Tensor,  # [N, L, H] final (normed) hidden states predicting each token in ``targets``
    weight: torch.Tensor,  # [V, H] LM head (output embedding) weight
    targets: torch.Tensor,  # [N, L] the sampled tokens
    *,
    temperature: float = 1.0,
    chunk: int = HEAD_CHUNK_TOKENS,
) -> tuple[torch.Tensor, torch.Tensor]:  # [N, L] log p(token) (with grad), [N, L] entropy (no grad)
    """:func:`token_logprobs` and :func:`token_entropy` of ``hidden @ weight.T`` without its full logits.

    The ``N * L`` tokens are cut into chunks of ``chunk``; each chunk's logits ``z`` (``[chunk, V]``)
    are computed, reduced to one log-prob and one entropy per token, and freed before the next. The
    backward is written by hand per chunk (a fused head, as Liger's linear cross-entropy): it keeps only
    the chunk's hidden states and ``logsumexp``, recomputes ``z`` and turns it in place into the
    gradient ``d logp / d z = scale * (onehot(target) - softmax(z))``, so one fp32 ``[chunk, V]``
    buffer (plus its copy in the matmul dtype under bf16) is all it holds; never ``[N, L, V]``.
    The matmuls run in the autocast dtype when autocast is on (as ``F.linear`` would), else in the
    inputs' dtype; the softmax maths is at least fp32. Entropy (``lse - sum(p * z)``) is a detached
    logging metric.
    """
    if hidden.shape[:2] != targets.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and targets {tuple(targets.shape)} must share [N, L]")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    n, length, width = hidden.shape
    flat_hidden = hidden.reshape(n * length, width)  # [N*L, H]
    flat_targets = targets.reshape(n * length)  # [N*L]
    scale = 1.0 / temperature if temperature > 0 and temperature != 1.0 else 1.0
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        compute = torch.get_autocast_dtype(device)
    else:
        compute = torch.promote_types(hidden.dtype, weight.dtype)
    logps, entropies = [], []
    for start in range(0, n * length, chunk):
        logp, entropy = _ChunkedHead.apply(
            flat_hidden[start : start + chunk], weight, flat_targets[start : start + chunk], scale, compute
        )  # [c], [c]
        logps.append(logp)
        entropies.append(entropy)
    if not logps:  # no tokens: keep the graph connected to ``hidden`` for an empty backward
        empty = hidden.sum(-1).float()  # [N, L]
        return empty, empty.detach()
    return torch.cat(logps).reshape(n, length), torch.cat(entropies).reshape(n, length)


def _scaled_logits(
    hidden: torch.Tensor,  # [c, H]
    weight: torch.Tensor,  # [V, H]
    scale: float,
    compute: torch.dtype,
) -> torch.Tensor:  # [c, V] z = scale * hidden @ weight.T, at least fp32
    with torch.autocast(hidden.device.type, enabled=False):
        z = F.linear(hidden.to(compute), weight.to(compute))  # [c, V] in the matmul dtype
    z = z.to(torch.promote_types(compute, torch.float32))  # [c, V]
    return z.mul_(scale) if scale != 1.0 else z


class _ChunkedHead(torch.autograd.Function):
    """One chunk of :func:`head_token_logprobs`: log-probs with a hand-written, recomputing backward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, scale, compute):  # [c, H], [V, H], [c]
        z = _scaled_logits(hidden, weight, scale, compute)  # [c, V]
        lse = torch.logsumexp(z, dim=-1)  # [c]
        logp = z.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - lse  # [c]
        weighted = torch.softmax(z, dim=-1).mul_(z)  # [c, V] p * z, in place
        entropy = lse - weighted.sum(-1)  # [c]
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.scale, ctx.compute = scale, compute
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp, _grad_entropy):  # grad_logp [c]
        hidden, weight, targets, lse = ctx.saved_tensors
        if grad_logp is None:
            return None, None, None, None, None
        g = grad_logp.to(lse.dtype).unsqueeze(-1)  # [c, 1]
        grad_z = _scaled_logits(hidden, weight, ctx.scale, ctx.compute)  # [c, V] z
        grad_z.sub_(lse.unsqueeze(-1)).exp_().mul_(-g)  # [c, V] -g * softmax(z)
        grad_z.scatter_add_(-1, targets.unsqueeze(-1), g)  # [c, V] g * (onehot - softmax)
        if ctx.scale != 1.0:
            grad_z.mul_(ctx.scale)  # through z = scale * logits
        grad_z = grad_z.to(ctx.compute)  # [c, V] in the matmul dtype
        grad_hidden = weight_grad = None
        if ctx.needs_input_grad[0]:
            grad_hidden = (grad_z @ weight.to(ctx.compute)).to(hidden.dtype)  # [c, H]
        if ctx.needs_input_grad[1]:
            weight_grad = (grad_z.T @ hidden.to(ctx.compute)).to(weight.dtype)  # [V, H]
        return grad_hidden, weight_grad, None, None, None
