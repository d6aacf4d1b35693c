"""Rollout engines behind one small interface: ``RolloutEngine.generate(batch, n, sampling)``.

``transformers`` (``hf.py``, CPU and GPU) prefills each prompt once and shares its KV cache across
the n samples; ``vllm`` (``vllm.py``, GPU, ``[gpu]`` extra) is imported lazily.
``vision.py`` holds the vision-encoding reuse (encode each video once per step).
"""

from videor1.rollout.base import RolloutEngine, RolloutOutput

__all__ = ["RolloutEngine", "RolloutOutput"]
