"""vLLM rollout engine (GPU, ``pip install -e '.[gpu]'``), colocated with the policy in every process.

``vllm`` is imported only when ``VLLMRolloutEngine`` is built, so the package works without it.

Colocated: each training process (``torchrun``) owns one engine on its own GPU
(``distributed_executor_backend="external_launcher"``, tensor parallel 1, in-process with
``VLLM_ENABLE_V1_MULTIPROCESSING=0``); ``rl.vllm_gpu_memory_utilization`` caps its share of the GPU.

What vLLM sees (:func:`embedding_requests`): exactly the rows the transformers engine generates from
(``videor1.train.rl_rollout.rollout_batch``): each row's token ids as training tokenised them, and
its media as **embedding inputs**: the step's own vision encodings (the shuffled twins' included),
the grids and, for Qwen2.5-VL videos, ``second_per_grid_ts``. vLLM then runs no vision tower: the
ViT runs once per step for both engines, vLLM's mRoPE positions come from the same grids and
intervals as training's, and no vLLM-side vision cache can hold encodings from older weights.

The input contract of the pinned vLLM (0.33.0, read in its wheel's source):

- per modality one dict (``Qwen2VLMultiModalDataParser._parse_{image,video}_data`` ->
  ``DictEmbeddingItems``; needs ``enable_mm_embeds=True``, checked in
  ``InputProcessingContext.parse_mm_data``) with ``{image,video}_embeds`` ``[sum of tokens, D]``
  (tokens = grid ``t*h*w / merge**2`` per item) and ``{image,video}_grid_thw`` ``[items, 3]``; for
  Qwen2.5-VL videos also ``second_per_grid_ts`` ``[videos]``. The parser's own field list lacks it,
  but the dict is passed through whole (``DictEmbeddingItems.get_passthrough_data``) and
  ``Qwen2_5_VLMultiModalProcessor._get_mm_fields_config`` keeps it per video, so it reaches
  ``Qwen2_5_VLForConditionalGeneration.iter_mm_grid_thw`` (default 1.0 s when absent); keys outside
  that field config are dropped silently (``MultiModalKwargsItems.from_hf_inputs``). Its time axis,
  ``floor(i * (second_per_grid_t * tokens_per_second))`` in float64, is ``videor1.models.positions``'s;
- ``prompt_token_ids`` with **one** placeholder token per media item: vLLM replaces each item's
  single ``<|image_pad|>`` / ``<|video_pad|>`` by its ``t*h*w / merge**2`` tokens
  (``Qwen2_5_VLMultiModalProcessor._get_prompt_updates``, applied unconditionally by
  ``BaseMultiModalProcessor._apply_prompt_updates``; an already-expanded run would be expanded again),
  so each row's expanded runs are reduced to one token and :func:`check_prompt_tokens` verifies that
  vLLM's expanded prompt equals training's, row by row;
- Qwen3-VL: images as above (``D = hidden * (1 + deepstack layers)``, the merged tokens then each
  deepstack layer's, concatenated on the last axis). Videos are refused: 0.33 requires per-frame
  ``timestamps`` in the video dict (``Qwen3VLMultiModalDataParser.embedding_fields``) and writes the
  ``<t seconds>`` text itself around a bare video placeholder, each timestamp tokenised apart, which
  is not shown to equal training's tokenisation.

Sleep: built with ``enable_sleep_mode=True``. The recipe calls :meth:`VLLMRolloutEngine.sleep`
after the step's rollouts, before the update (``LLM.sleep(level=1)``: weights offloaded to host RAM,
KV cache freed), and :meth:`VLLMRolloutEngine.wake` before the next rollout. ``sync_weights(policy)``
after every update wakes the engine, loads the policy's weights (gathered one tensor at a time under
FSDP2, LoRA merged: ``videor1.models.weights.inference_weights``) into vLLM's model in place, and
resets the prefix cache and the multimodal (encoder) cache, both computed with the old weights.

Each prompt is sent once with ``SamplingParams(n=...)`` (vLLM shares its prefill across the ``n``
samples) and its own seed, drawn by the recipe from the step's generator, so runs are reproducible.
The media placeholder tokens get a -100 logit bias (never sampled), as in the transformers engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from videor1.config import SamplingConfig
from videor1.rollout.base import RolloutEngine, RolloutOutput
from videor1.types import Completion

NEVER = -100.0  # the most negative logit bias vLLM accepts


def _embeddings(items: list[torch.Tensor], deepstack: list[tuple[torch.Tensor, ...]]) -> list[torch.Tensor]:
    """Per item, the tensor vLLM takes as its embedding: the merged tokens ``[n, D]``, with Qwen3-VL's
    deepstack layers concatenated after them on the last axis ``[n, D * (1 + layers)]``."""
    if not deepstack:
        return items
    return [torch.cat([t, *layers], dim=-1) for t, layers in zip(items, deepstack)]


def _one_placeholder_per_item(
    ids: torch.Tensor,  # [N] a row's real tokens, placeholders expanded as training's processor wrote them
    token: Mapping[str, int],
    sizes: Mapping[str, list[int]],  # per kind, each item's token count, in order
) -> list[int]:
    """The row with each media item's run of ``n`` placeholder tokens reduced to one placeholder: the
    prompt vLLM 0.33 expects, since it always replaces each item's single target token by the item's
    ``n`` tokens (``_apply_token_matches_with_placeholders``: no check for an already-expanded run)."""
    kind_of = {v: k for k, v in token.items()}
    left = {k: list(v) for k, v in sizes.items()}
    out: list[int] = []
    tokens = ids.tolist()
    i = 0
    while i < len(tokens):
        kind = kind_of.get(tokens[i])
        if kind is None:
            out.append(tokens[i])
            i += 1
            continue
        n = left[kind].pop(0)
        if tokens[i : i + n] != [tokens[i]] * n:
            raise ValueError(f"a {kind} of {n} tokens is not one contiguous run of placeholders")
        out.append(tokens[i])
        i += n
    return out


def embedding_requests(
    batch: Mapping[str, Any],
    media: Any,
    config: Any,
    *,
    dtype: torch.dtype,
) -> list[dict[str, Any]]:
    """One vLLM request per row of a rollout batch: its token ids and its media as embedding inputs.

    ``batch``: left-padded ``input_ids`` / ``attention_mask`` ``[R, P]`` with the rows' media grids
    (``image_grid_thw`` ``[I, 3]``, ``video_grid_thw`` ``[V, 3]``, ``second_per_grid_ts`` ``[V]``) in
    row order; ``media``: their encodings (``videor1.models.vision.MediaFeatures``), in the same order;
    ``config``: the model's config (placeholder token ids, merge size). Each row takes, in order, as
    many media items as its placeholder tokens cover.
    """
    merge = int(config.vision_config.spatial_merge_size)
    token = {"image": int(config.image_token_id), "video": int(config.video_token_id)}
    qwen3 = str(getattr(config, "model_type", "")).startswith("qwen3")
    feats = {
        "image": _embeddings(media.images, media.image_deepstack),
        "video": _embeddings(media.videos, media.video_deepstack),
    }
    grids = {k: batch.get(f"{k}_grid_thw") for k in ("image", "video")}
    seconds = batch.get("second_per_grid_ts")
    for kind in ("image", "video"):
        n = 0 if grids[kind] is None else len(grids[kind])
        if n != len(feats[kind]):
            raise ValueError(f"{n} {kind} grids for {len(feats[kind])} {kind} encodings")
    cursor = {"image": 0, "video": 0}
    requests = []
    for row in range(batch["input_ids"].shape[0]):
        ids = batch["input_ids"][row][batch["attention_mask"][row].bool()]
        data: dict[str, Any] = {}
        sizes: dict[str, list[int]] = {"image": [], "video": []}
        for kind in ("image", "video"):
            want = int((ids == token[kind]).sum())
            start, covered = cursor[kind], 0
            while covered < want:
                if cursor[kind] >= len(feats[kind]):
                    raise ValueError(
                        f"row {row}: {want} {kind} placeholders, more than the batch's {kind}s cover"
                    )
                covered += int(grids[kind][cursor[kind]].prod()) // merge**2
                cursor[kind] += 1
            if covered != want:
                raise ValueError(f"row {row}: {want} {kind} placeholders, its {kind}s' grids give {covered}")
            if want == 0:
                continue
            if kind == "video" and qwen3:
                raise ValueError(
                    f"row {row}: Qwen3-VL videos cannot go to vLLM 0.33 as embeddings: its parser requires "
                    "per-frame `timestamps` and rebuilds the `<t seconds>` text itself from a bare "
                    "video placeholder (Qwen3VLMultiModalDataParser, get_video_replacement_qwen3vl); "
                    "use rl.engine=transformers for Qwen3-VL video"
                )
            items = range(start, cursor[kind])
            entry = {
                f"{kind}_embeds": torch.cat([feats[kind][i] for i in items]).detach().to("cpu", dtype),
                f"{kind}_grid_thw": grids[kind][start : cursor[kind]].detach().to("cpu", torch.int64),
            }
            if kind == "video" and seconds is not None:
                entry["second_per_grid_ts"] = torch.as_tensor(seconds[start : cursor[kind]]).to(
                    "cpu", torch.float32
                )
            data[kind] = entry
            sizes[kind] = [int(grids[kind][i].prod()) // merge**2 for i in items]
        requests.append(
            {"prompt_token_ids": _one_placeholder_per_item(ids, token, sizes), "multi_modal_data": data}
        )
    for kind in ("image", "video"):
        if cursor[kind] != len(feats[kind]):
            raise ValueError(
                f"{len(feats[kind]) - cursor[kind]} {kind} encodings left over after the last row"
            )
    return requests


def check_prompt_tokens(
    engine_ids: Sequence[Sequence[int]] | None,
    batch: Mapping[str, Any],
    names: Sequence[str],
) -> None:
    """Raise unless the engine ran each row's prompt exactly as the (left-padded) training batch holds it.

    ``names`` names each row (its record, ``(shuffled)`` for a twin) for the error.
    """
    if engine_ids is None:
        raise RuntimeError("the vLLM engine returned no prompt token ids to check against training")
    ids, mask = batch["input_ids"], batch["attention_mask"]  # [R, P]
    if len(engine_ids) != ids.shape[0]:
        raise RuntimeError(f"the vLLM engine returned {len(engine_ids)} prompts for {ids.shape[0]} rows")
    for row, name in enumerate(names):
        ours = ids[row][mask[row].bool()].tolist()
        theirs = list(engine_ids[row])
        if ours != theirs:
            first = next(
                (i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs))
            )
            raise RuntimeError(
                f"{name} (rollout row {row}): vLLM's prompt has {len(theirs)} tokens, training's "
                f"{len(ours)}, first difference at token {first}; vLLM expanded the media placeholders "
                "differently from training's processor"
            )


class VLLMRolloutEngine(RolloutEngine):
    """``generate(batch, n, sampling, seeds=...)`` with ``batch = {"prompts": embedding_requests(...)}``."""

    def __init__(
        self,
        model_path: str,
        *,
        eos_token_ids: Sequence[int],
        suppress_token_ids: Sequence[int],
        gpu_memory_utilization: float,
        max_model_len: int,
        dtype: torch.dtype,
        seed: int = 0,
    ) -> None:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process: weights can be loaded
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("rl.engine=vllm needs vLLM: pip install -e '.[gpu]'") from e
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.llm = LLM(
            model=model_path,
            dtype=str(dtype).removeprefix("torch."),
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            tensor_parallel_size=1,
            distributed_executor_backend="external_launcher" if distributed else None,
            enable_prefix_caching=True,
            enable_mm_embeds=True,  # media arrive as the step's own encodings (embedding_requests)
            enable_sleep_mode=True,  # asleep during the update (sleep / wake)
            limit_mm_per_prompt={"image": 1, "video": 1},
        )
        self.asleep = False
        self.eos_token_ids = list(eos_token_ids)
        self.logit_bias = {int(t): NEVER for t in suppress_token_ids}
        self.dtype = dtype

    def generate(
        self,
        batch: Mapping[str, Any],
        n: int | Sequence[int],
        sampling: SamplingConfig,
        *,
        seeds: Sequence[int] | None = None,
        **_: Any,
    ) -> RolloutOutput:
        from vllm import SamplingParams

        start = time.perf_counter()
        prompts = list(batch["prompts"])
        counts = [int(n)] * len(prompts) if isinstance(n, int) else [int(c) for c in n]
        if len(counts) != len(prompts):
            raise ValueError(f"n has {len(counts)} counts for {len(prompts)} prompts")
        seeds = list(seeds) if seeds is not None else [None] * len(prompts)
        params = [
            SamplingParams(
                n=c,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                stop_token_ids=self.eos_token_ids,
                logit_bias=self.logit_bias,
                seed=seed,
                logprobs=0,
            )
            for c, seed in zip(counts, seeds)
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        grouped: list[list[Completion]] = []
        tokens = 0
        for out in outputs:
            group = []
            for o in out.outputs:
                ids = list(o.token_ids)
                logprobs = [lp[t].logprob for lp, t in zip(o.logprobs or [], ids)] if o.logprobs else None
                group.append(
                    Completion(
                        text=o.text, token_ids=ids, logprobs=logprobs, finished=o.finish_reason == "stop"
                    )
                )
                tokens += len(ids)
            grouped.append(group)
        return RolloutOutput(
            completions=grouped,
            generated_tokens=tokens,
            seconds=time.perf_counter() - start,
            prompt_token_ids=[list(out.prompt_token_ids) for out in outputs],
        )

    def _model(self) -> Any:
        executor = self.llm.llm_engine.model_executor
        worker = executor.driver_worker
        for path in (("worker", "model_runner", "model"), ("model_runner", "model")):
            obj = worker
            for name in path:
                obj = getattr(obj, name, None)
            if obj is not None:
                return obj
        raise RuntimeError(
            "this vLLM version does not expose its model in-process; run with "
            "VLLM_ENABLE_V1_MULTIPROCESSING=0 so the colocated engine can take weight updates"
        )

    def sleep(self) -> None:
        """Free the GPU for the update: weights offloaded to host RAM, KV cache discarded (level 1)."""
        if not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self) -> None:
        """Weights back on the GPU and the KV cache re-allocated, before a rollout or a weight load."""
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    def sync_weights(self, model: Any) -> None:
        """Wake, load the policy's current weights (HF names, LoRA merged) into vLLM's model, and reset
        its prefix cache and multimodal cache (both computed with the old weights).

        A collective under FSDP2 (shards are gathered one tensor at a time): every rank calls it.
        """
        from videor1.models.weights import inference_weights

        self.wake()
        target = self._model()
        device = next(target.parameters()).device
        for name, tensor in inference_weights(model, dtype=self.dtype):
            target.load_weights([(name, tensor.to(device))])
        self.llm.reset_prefix_cache()
        self.llm.reset_mm_cache()
