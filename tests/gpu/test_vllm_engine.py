"""vLLM engine on a GPU: real-fps video prompts, n samples per prompt, weight sync from the policy."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


def test_vllm_generates_and_syncs_weights(tiny_model_dir, real_clips, monkeypatch):
    pytest.importorskip("vllm")
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videor1.config import MediaConfig, SamplingConfig
    from videor1.data.frames import shuffle_frames
    from videor1.data.media import load_video
    from videor1.models.adapters import get_adapter
    from videor1.rollout.hf import HFRolloutEngine
    from videor1.rollout.vllm import VLLMRolloutEngine, vllm_prompt

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    adapter = get_adapter(tiny_model_dir)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    budget = MediaConfig(nframes=8, video_min_pixels=16 * 784, video_max_pixels=24 * 784)
    clip = load_video(real_clips["bikes"], budget, geometry=adapter.geometry)
    shuffled, _ = shuffle_frames(
        clip, torch.Generator().manual_seed(0), geometry=adapter.geometry, unit="frame"
    )
    ordered_prompt, shuffled_prompt = vllm_prompt(text, clip, adapter), vllm_prompt(text, shuffled, adapter)
    (frames, metadata), (twin_frames, _) = (
        ordered_prompt["multi_modal_data"]["video"],
        shuffled_prompt["multi_modal_data"]["video"],
    )
    assert metadata["fps"] == pytest.approx(clip.sample_fps)
    assert not (frames == twin_frames).all()

    policy = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    engine = VLLMRolloutEngine(
        str(tiny_model_dir),
        eos_token_ids=[policy.config.text_config.eos_token_id],
        suppress_token_ids=HFRolloutEngine.media_token_ids(policy),
        gpu_memory_utilization=0.2,
        max_model_len=4096,
        dtype=torch.float32,
    )
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=8)
    out = engine.generate({"prompts": [ordered_prompt, shuffled_prompt]}, [4, 2], sampling, seeds=[1, 2])
    assert [len(g) for g in out.completions] == [4, 2]
    assert out.prompt_token_ids is not None and out.prompt_token_ids[0] == out.prompt_token_ids[1]
    assert all(
        c.logprobs is not None and len(c.logprobs) == len(c.token_ids) for g in out.completions for c in g
    )

    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
    engine.sync_weights(policy)  # all-zero weights: every logit ties, the first token id wins greedily
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=2)
    again = engine.generate({"prompts": [ordered_prompt]}, 1, greedy)
    assert again.completions[0][0].token_ids == [0, 0]
