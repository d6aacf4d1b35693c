"""Transformers rollout engine: prefill each prompt once, share its KV cache across the n samples.

``model.generate(num_return_sequences=G)`` copies every prompt G times before the prefill, so the
vision tower and the prompt's attention run G times. Here:

1. The prompts' media are encoded once (``vision.encode_media``) unless encodings are passed in
   (the shuffled T-GRPO group reuses the ordered group's, permuted).
2. The batch of (left-padded) prompts is prefilled once with explicit 3-D mRoPE positions
   (``videor1.models.positions``), and every decoded token continues them; the model never computes
   its own.
3. The KV cache rows are re-indexed so that prompt row b appears ``n[b]`` times (a gather along
   the batch axis, no recomputation), and a sampling loop runs over all rows.
4. Rows that emitted EOS leave the cache (``batch_select_indices``), so long stragglers don't
   pay for finished rows.

Sampling: the media placeholder tokens (image/video pad, vision start/end) are never sampled (a
completion holding one would be read as a media slot by the training forward), then temperature
scaling, nucleus (top-p) truncation and a multinomial draw from the step's ``torch.Generator``
(reproducible; it must live on the logits' device, which is checked). The recorded log-prob of each token is taken under the
temperature-scaled *untruncated* distribution, the same quantity the trainer recomputes with
``algorithms.losses.token_logprobs(..., temperature=T)``. Temperature 0 means greedy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import DynamicCache

from videor1.config import SamplingConfig
from videor1.models.vision import MediaFeatures, continuation_positions, encode_media, rope_positions
from videor1.rollout.base import RolloutEngine, RolloutOutput
from videor1.types import Completion


def sample_next_token(
    logits: torch.Tensor,  # [R, V] next-token logits
    sampling: SamplingConfig,
    generator: torch.Generator | None = None,
    suppress: torch.Tensor | None = None,  # [S] token ids that are never drawn
) -> tuple[torch.Tensor, torch.Tensor]:  # token [R], logprob [R]
    """One sampling step (module docstring); returns the tokens and their log-probs.

    The log-probs are under the temperature-scaled distribution before suppression and top-p.
    """
    if generator is not None and generator.device != logits.device:
        raise ValueError(
            f"the sampling generator is on {generator.device} but the logits are on {logits.device}; "
            "create it with torch.Generator(device=logits.device)"
        )
    logits = logits.float()
    allowed = (
        logits
        if suppress is None or suppress.numel() == 0
        else logits.index_fill(-1, suppress, float("-inf"))
    )
    if sampling.temperature == 0:
        token = allowed.argmax(dim=-1)  # [R]
        logp = torch.log_softmax(logits, dim=-1)  # [R, V]
        return token, logp.gather(-1, token[:, None]).squeeze(-1)
    logp = torch.log_softmax(logits / sampling.temperature, dim=-1)  # [R, V]
    probs = torch.softmax(allowed / sampling.temperature, dim=-1)  # [R, V]
    if sampling.top_p < 1.0:
        sorted_probs, sorted_idx = probs.sort(dim=-1, descending=True)  # [R, V]
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # [R, V] mass of strictly better tokens
        sorted_probs = sorted_probs.masked_fill(mass_before >= sampling.top_p, 0.0)  # keeps the top token
        probs = torch.zeros_like(probs).scatter(-1, sorted_idx, sorted_probs)  # [R, V]
    token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # [R]
    return token, logp.gather(-1, token[:, None]).squeeze(-1)


class HFRolloutEngine(RolloutEngine):
    """Colocated transformers engine: generates with the policy module itself."""

    def __init__(
        self,
        model: Any,
        *,
        eos_token_ids: Sequence[int],
        pad_token_id: int,
        tokenizer: Any = None,
        suppress_token_ids: Sequence[int] | None = None,
    ) -> None:
        if not eos_token_ids:
            raise ValueError("eos_token_ids is empty; the model's generation_config names no EOS token")
        self.model = model
        self.eos_token_ids = list(eos_token_ids)
        self.pad_token_id = int(pad_token_id)
        self.tokenizer = tokenizer
        if suppress_token_ids is None:
            suppress_token_ids = self.media_token_ids(model)
        self.suppress_token_ids = list(suppress_token_ids)

    @staticmethod
    def media_token_ids(model: Any) -> list[int]:
        """The media placeholder ids a completion must never contain (image/video pad, vision start/end)."""
        cfg = model.config
        names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
        return [getattr(cfg, n) for n in names if getattr(cfg, n, None) is not None]

    @torch.no_grad()
    def generate(
        self,
        batch: Mapping[str, Any],
        n: int | Sequence[int],
        sampling: SamplingConfig,
        *,
        generator: torch.Generator | None = None,
        features: MediaFeatures | None = None,
        **_: Any,
    ) -> RolloutOutput:
        """Sample ``n`` completions per prompt row; ``features`` skips the vision tower."""
        start = time.perf_counter()
        model = self.model
        input_ids = batch["input_ids"]  # [B, P]
        attention_mask = batch["attention_mask"]  # [B, P]
        num_prompts = input_ids.shape[0]
        counts = [int(n)] * num_prompts if isinstance(n, int) else [int(c) for c in n]
        if len(counts) != num_prompts:
            raise ValueError(f"n has {len(counts)} counts for {num_prompts} prompts")
        device = input_ids.device

        was_training = model.training
        model.eval()
        try:
            if features is None:
                features = encode_media(model, batch)
            position_ids, next_position = rope_positions(model, batch)  # [3, B, P], [B]
            cache = DynamicCache(config=model.config.get_text_config())
            out = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
                mm_encoder_outputs=features.as_encoder_outputs(),
                logits_to_keep=1,
            )
            # share the prompt: row b of the cache is gathered counts[b] times
            rows = torch.repeat_interleave(
                torch.arange(num_prompts, device=device), torch.tensor(counts, device=device)
            )  # [R]
            cache.batch_select_indices(rows)
            logits = out.logits[:, -1][rows]  # [R, V]
            mask = attention_mask[rows]  # [R, P]
            next_pos = next_position[rows]  # [R]
            completions = self._decode_loop(cache, logits, mask, next_pos, sampling, generator)
        finally:
            model.train(was_training)

        grouped: list[list[Completion]] = []
        i = 0
        for c in counts:
            grouped.append(completions[i : i + c])
            i += c
        generated = sum(len(c.token_ids) for c in completions)
        return RolloutOutput(
            completions=grouped, generated_tokens=generated, seconds=time.perf_counter() - start
        )

    def _decode_loop(
        self,
        cache: DynamicCache,
        logits: torch.Tensor,  # [R, V]
        mask: torch.Tensor,  # [R, P]
        next_pos: torch.Tensor,  # [R]
        sampling: SamplingConfig,
        generator: torch.Generator | None,
    ) -> list[Completion]:
        """Sample until every row emitted EOS or ``max_new_tokens``; one device->host sync per token.

        Tokens, log-probs, lengths and EOS flags stay on the device (written by index, never by
        boolean mask) and are read back once after the loop; the only read inside it is the number
        of rows that just finished, which decides whether to stop or drop rows from the cache.
        """
        num_rows, steps = logits.shape[0], sampling.max_new_tokens
        device = logits.device
        eos = torch.tensor(self.eos_token_ids, device=device)
        tokens = torch.zeros(num_rows, steps, dtype=torch.long, device=device)  # [R, S]
        logps = torch.zeros(num_rows, steps, dtype=torch.float32, device=device)  # [R, S]
        lengths = torch.zeros(num_rows, dtype=torch.long, device=device)  # [R]
        finished = torch.zeros(num_rows, dtype=torch.bool, device=device)  # [R]
        active = torch.arange(num_rows, device=device)  # [A] rows still generating
        suppress = torch.tensor(self.suppress_token_ids, dtype=torch.long, device=device)
        for step in range(steps):
            token, logp = sample_next_token(logits, sampling, generator, suppress)  # [A], [A]
            tokens[active, step] = token
            logps[active, step] = logp.float()
            lengths[active] = step + 1
            done = torch.isin(token, eos)  # [A]
            finished[active] = done
            if step == steps - 1:
                break
            num_done = int(done.sum())  # the loop's one device->host sync
            if num_done == token.shape[0]:
                break
            if num_done:
                # rows still going, in order (a stable sort puts False first), without nonzero()'s sync
                keep = torch.argsort(done.to(torch.int8), stable=True)[: token.shape[0] - num_done]  # [A']
                cache.batch_select_indices(keep)
                active, token, mask, next_pos = active[keep], token[keep], mask[keep], next_pos[keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)  # [A, P + step + 1]
            out = self.model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=continuation_positions(next_pos, 1, start=step),  # [3, A, 1]
                past_key_values=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1]  # [A, V]
        token_rows, logp_rows = tokens.tolist(), logps.tolist()
        return [
            Completion(
                text=self._decode(token_rows[r][:n]),
                token_ids=token_rows[r][:n],
                logprobs=logp_rows[r][:n],
                finished=bool(f),
            )
            for r, (n, f) in enumerate(zip(lengths.tolist(), finished.tolist()))
        ]

    def _decode(self, ids: list[int]) -> str:
        if self.tokenizer is None:
            return ""
        return self.tokenizer.decode(ids, skip_special_tokens=True)
