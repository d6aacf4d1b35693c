"""RL steps on a GPU: the transformers engine samples on CUDA, and the colocated vLLM engine trains T-GRPO.

Skipped without a CUDA GPU (and, for vLLM, without the [gpu] extra). ``tests/integration/test_rl_vllm_wiring.py``
covers the vLLM path's logic on CPU with a stand-in engine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu


GPU = ("train.precision=bf16", "model.dtype=bfloat16", "rl.sampling.max_new_tokens=8")


def test_transformers_engine_samples_on_cuda(tmp_path, tiny_rl_config):
    # a CPU generator for CUDA probabilities used to crash torch.multinomial on the first token
    from videor1.train.rl import train
    from videor1.utils.rundir import read_metrics

    train(tiny_rl_config(tmp_path, *GPU))
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]


def test_two_tgrpo_steps_on_vllm_shuffle_the_twins_and_sync_weights(tmp_path, tiny_rl_config, monkeypatch):
    pytest.importorskip("vllm")
    from transformers import AutoModelForImageTextToText

    import videor1.rollout.vllm as vllm_module
    from videor1.train.rl import train

    sent: list[list[dict]] = []
    real_generate = vllm_module.VLLMRolloutEngine.generate
    engines: list = []

    def spy(self, batch, n, sampling, **kwargs):
        if self not in engines:
            engines.append(self)
        sent.append(list(batch["prompts"]))
        return real_generate(self, batch, n, sampling, **kwargs)

    monkeypatch.setattr(vllm_module.VLLMRolloutEngine, "generate", spy)
    final = train(tiny_rl_config(tmp_path, *GPU, "rl.engine=vllm", "rl.vllm_gpu_memory_utilization=0.2"))
    twins_checked = 0
    for requests in sent:
        ordered = [r for r in requests[:4] if "video" in r["multi_modal_data"]]
        for plain, twin in zip(ordered, requests[4:]):
            (a, meta_a), (b, meta_b) = plain["multi_modal_data"]["video"], twin["multi_modal_data"]["video"]
            assert not np.array_equal(a, b) and meta_a["fps"] == meta_b["fps"]
            twins_checked += 1
    assert twins_checked > 0
    # weights synced: vLLM's lm_head is the final policy's (in the engine's bf16)
    (engine,) = engines
    policy = AutoModelForImageTextToText.from_pretrained(str(final), dtype=torch.bfloat16)
    vllm_params = dict(engine._model().named_parameters())
    head = next(v for k, v in vllm_params.items() if k.endswith("lm_head.weight"))
    torch.testing.assert_close(head.cpu(), policy.lm_head.weight.detach(), rtol=0, atol=0)
