"""Rollout engines behind one small interface: ``RolloutEngine.generate(batch, n, sampling)``.

``transformers`` (``hf.py``, CPU and GPU) prefills each prompt once and shares its KV cache across
the n samples; ``vllm`` (``vllm.py``, GPU, ``[gpu]`` extra) is imported lazily. Encoding media once
and reusing it (``encode_media``, ``MediaFeatures``) is model code: ``videor1.models.vision``.
"""

from videor1.rollout.base import RolloutEngine, RolloutOutput

__all__ = ["RolloutEngine", "RolloutOutput"]
