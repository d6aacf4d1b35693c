"""vLLM rollout engine (GPU, ``pip install -e '.[gpu]'``), colocated with the policy.

``vllm`` is imported only when ``VLLMRolloutEngine`` is built, so the package works without it.
Colocated: the engine lives in the training process on the same GPU (``gpu_memory_utilization``
caps its share). After every optimiser update the recipe calls ``sync_weights(policy)``, which
loads the policy's current parameters into vLLM's model in place (no checkpoint round trip).

Videos are passed as the already decoded and sampled frames (``videor1.data.media``) with their
real sampling rate (``fps`` = the clip's ``sample_fps``, so vLLM's Qwen2.5-VL processor computes the
same ``second_per_grid_ts`` as training). The shuffled T-GRPO twin is built from the shuffled
clip's own frames, so vLLM never sees the ordered video in its place (a defect of the Video-R1 code).

Each prompt is sent once with ``SamplingParams(n=...)``: vLLM's prefix cache shares the prompt's
prefill across the n samples. Log-probs are the sampled tokens' (``logprobs=0``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from videor1.config import SamplingConfig
from videor1.rollout.base import RolloutEngine, RolloutOutput
from videor1.types import Completion, ImageInput, Media, VideoClip


def vllm_prompt(text: str, media: Media) -> dict[str, Any]:
    """One vLLM prompt: chat-templated text plus its decoded media (frames with their real fps)."""
    if isinstance(media, VideoClip):
        frames = media.frames.permute(0, 2, 3, 1).numpy()  # [T, H, W, 3] uint8
        return {
            "prompt": text,
            "multi_modal_data": {"video": frames},
            "mm_processor_kwargs": {"fps": float(media.sample_fps), "do_sample_frames": False},
        }
    if isinstance(media, ImageInput):
        from PIL import Image

        return {
            "prompt": text,
            "multi_modal_data": {"image": Image.fromarray(media.pixels.permute(1, 2, 0).numpy())},
        }
    raise TypeError(f"unsupported media {type(media).__name__}")


class VLLMRolloutEngine(RolloutEngine):
    """``generate(batch, n, sampling)`` with ``batch = {"prompts": [vllm_prompt(...), ...]}``."""

    def __init__(
        self, model_path: str, *, gpu_memory_utilization: float = 0.3, dtype: str = "bfloat16", seed: int = 0
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("rl.engine=vllm needs vLLM: pip install -e '.[gpu]'") from e
        self.llm = LLM(
            model=model_path,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            seed=seed,
            enable_prefix_caching=True,
            limit_mm_per_prompt={"image": 1, "video": 1},
        )
        self.tokenizer = self.llm.get_tokenizer()

    def generate(
        self, batch: Mapping[str, Any], n: int | Sequence[int], sampling: SamplingConfig, **_: Any
    ) -> RolloutOutput:
        from vllm import SamplingParams

        start = time.perf_counter()
        prompts = list(batch["prompts"])
        counts = [int(n)] * len(prompts) if isinstance(n, int) else [int(c) for c in n]
        if len(counts) != len(prompts):
            raise ValueError(f"n has {len(counts)} counts for {len(prompts)} prompts")
        params = [
            SamplingParams(
                n=c,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                logprobs=0,
            )
            for c in counts
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
            completions=grouped, generated_tokens=tokens, seconds=time.perf_counter() - start
        )

    def sync_weights(self, model: Any) -> None:
        """Load the policy's current weights into vLLM's model (names as in the HF checkpoint)."""
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        base = getattr(base, "module", base)  # DDP
        try:  # in-process engine (colocated, VLLM_ENABLE_V1_MULTIPROCESSING=0)
            runner_model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
        except AttributeError as e:
            raise RuntimeError(
                "this vLLM version does not expose its model in-process; run with "
                "VLLM_ENABLE_V1_MULTIPROCESSING=0 so the colocated engine can take weight updates"
            ) from e
        runner_model.load_weights((name, p.detach()) for name, p in base.state_dict().items())
