"""Model loading, the tiny-model factory and per-family hooks (Qwen2-VL, Qwen2.5-VL, Qwen3-VL)."""
