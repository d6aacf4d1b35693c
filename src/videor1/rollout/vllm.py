"""vLLM rollout engine (GPU, ``pip install -e '.[gpu]'``), colocated with the policy in every process.

``vllm`` is imported only when ``VLLMRolloutEngine`` is built, so the package works without it.

Colocated: each training process (``torchrun``) owns one engine on its own GPU
(``distributed_executor_backend="external_launcher"``, tensor parallel 1, in-process with
``VLLM_ENABLE_V1_MULTIPROCESSING=0``); ``rl.vllm_gpu_memory_utilization`` caps its share of the GPU.
After every optimiser update the recipe calls ``sync_weights(policy)``: the policy's weights, gathered
one tensor at a time under FSDP2 and with LoRA merged (``videor1.models.weights.inference_weights``),
are loaded into vLLM's model in place and its prefix cache is reset (cached prompt states were
computed with the old weights).

Prompts (:func:`vllm_prompt`): the chat-templated text with its placeholders unexpanded, plus the
media as the recipe decoded them: an image, or the sampled frames with the clip's own metadata
(``fps`` = the clip's sampling rate, so vLLM's Qwen2.5-VL processor derives the same
``second_per_grid_ts`` as training, and Qwen3-VL the same timestamps) and ``do_sample_frames=False``.
The shuffled T-GRPO twin is built from the shuffled clip's own frames, so vLLM never sees the
ordered video in its place (upstream Video-R1's vLLM path gave the "shuffled" group the ordered
video). :func:`check_prompt_tokens` then compares vLLM's prompt tokens with the training forward's,
so a processor that expanded the media differently is an error, not a silent mismatch.

Each prompt is sent once with ``SamplingParams(n=...)`` (vLLM shares its prefill across the ``n``
samples) and its own seed, drawn by the recipe from the step's generator, so runs are reproducible.
The media placeholder tokens get a -100 logit bias (never sampled), as in the transformers engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from videor1.config import SamplingConfig
from videor1.rollout.base import RolloutEngine, RolloutOutput
from videor1.types import Completion, ImageInput, Media, Sample, VideoClip

if TYPE_CHECKING:
    from videor1.models.adapters import FamilyAdapter

NEVER = -100.0  # the most negative logit bias vLLM accepts


def vllm_prompt(text: str, media: Media, adapter: FamilyAdapter) -> dict[str, Any]:
    """One vLLM prompt: chat-templated text plus its decoded media (frames with their real metadata)."""
    if isinstance(media, VideoClip):
        frames = media.frames.permute(0, 2, 3, 1).contiguous().numpy()  # [T, H, W, 3] uint8
        return {
            "prompt": text,
            "multi_modal_data": {"video": (frames, adapter.video_metadata(media))},
            "mm_processor_kwargs": {"do_sample_frames": False},
        }
    if isinstance(media, ImageInput):
        from PIL import Image

        return {
            "prompt": text,
            "multi_modal_data": {"image": Image.fromarray(media.pixels.permute(1, 2, 0).numpy())},
        }
    raise TypeError(f"unsupported media {type(media).__name__}")


def check_prompt_tokens(
    engine_ids: Sequence[Sequence[int]] | None,
    prompts: Mapping[str, Any],
    samples: Sequence[Sample],
    *,
    pad_id: int,
) -> None:
    """Raise unless the engine tokenised each ordered prompt exactly as the (left-padded) training batch.

    ``engine_ids`` lists the ordered prompts first (shuffled twins, which share their tokens, may
    follow and are not compared).
    """
    if engine_ids is None:
        raise RuntimeError("the vLLM engine returned no prompt token ids to check against training")
    ids, mask = prompts["input_ids"], prompts["attention_mask"]  # [Q, P]
    for row, sample in enumerate(samples):
        ours = ids[row][mask[row].bool()].tolist()
        theirs = list(engine_ids[row])
        if ours != theirs:
            first = next(
                (i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs))
            )
            raise RuntimeError(
                f"{sample.source or sample.problem_id}: vLLM's prompt has {len(theirs)} tokens, training's "
                f"{len(ours)}, first difference at token {first}; the engine's processor expands the media "
                "differently (check the checkpoint's preprocessor/video processor files)"
            )


class VLLMRolloutEngine(RolloutEngine):
    """``generate(batch, n, sampling, seeds=...)`` with ``batch = {"prompts": [vllm_prompt(...), ...]}``."""

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
            limit_mm_per_prompt={"image": 1, "video": 1},
        )
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

    def sync_weights(self, model: Any) -> None:
        """Load the policy's current weights (HF names, LoRA merged) into vLLM's model; reset its cache.

        A collective under FSDP2 (shards are gathered one tensor at a time): every rank calls it.
        """
        from videor1.models.weights import inference_weights

        target = self._model()
        device = next(target.parameters()).device
        for name, tensor in inference_weights(model, dtype=self.dtype):
            target.load_weights([(name, tensor.to(device))])
        self.llm.reset_prefix_cache()
