"""Model loading, the tiny-model factory and per-family hooks (Qwen2-VL, Qwen2.5-VL, Qwen3-VL).

* ``loading``: ``load_model_and_processor(cfg, device=, for_training=)`` and ``ensure_model(cfg)``
  (transformers Auto classes; dtype, attention kernel, freezing, LoRA, checkpointing from config).
* ``tiny``: ``build_tiny_model(TinyModelConfig, out_dir)``, a random-init model of the real
  architecture class saved with a full processor, loadable without project code.
* ``adapters``: ``get_adapter(model_or_config)``, what differs per family (vision tower, video
  timing kwargs, placeholder token ids, pixels per visual token).
* ``vision``: encode each prompt's media once (``encode_media``, ``MediaFeatures``), reuse it across
  rows, temporal-patch permutations and forwards; the mRoPE positions such forwards need.
* ``weights``: the plain HF weights a wrapped / sharded / LoRA policy stands for (merged adapters).
* ``known``: shapes of the public checkpoints the shipped configs name (for ``videor1 plan``).
* ``tokenizer`` / ``corpus`` / ``chat_template``: the real Qwen vocabulary or a small local BPE, and
  the Qwen2-VL chat template the tiny processors carry.

Submodules import torch and transformers; this package file imports nothing so ``videor1 --help``
stays fast.
"""
