"""vLLM engine on a GPU: it scores its own rollouts as the training forward does, ordered and shuffled.

One video question and its shuffled twin (temporal patches permuted) go to vLLM exactly as the RL
recipe sends them (``embedding_requests``: training's token ids, the step's own encodings, grids and
``second_per_grid_ts``). vLLM's per-token log-probs of its samples are compared with the training
forward's (``sequence_logprobs`` over ``build_sequences`` rows, mRoPE positions from training's
grids and intervals); the max difference is printed for each prompt. Then the sleep / wake cycle
and a weight sync.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu

MAX_LOGPROB_DIFF = 2e-3  # fp32 on both sides; differences come from kernels only


def test_vllm_logprobs_match_the_training_forward_ordered_and_shuffled(
    tiny_model_dir, real_clips, monkeypatch
):
    pytest.importorskip("vllm")
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videor1.config import MediaConfig, SamplingConfig
    from videor1.data.collate import collate
    from videor1.data.frames import shuffle_frames
    from videor1.data.media import load_video
    from videor1.models.adapters import get_adapter
    from videor1.models.vision import encode_media, frame_order_to_patch_order, rope_positions
    from videor1.rollout.hf import HFRolloutEngine
    from videor1.rollout.vllm import VLLMRolloutEngine, check_prompt_tokens, embedding_requests
    from videor1.train.rl_update import build_sequences, sequence_logprobs
    from videor1.types import Sample

    device = torch.device("cuda")
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    adapter = get_adapter(tiny_model_dir)
    budget = MediaConfig(nframes=8, video_min_pixels=16 * 784, video_max_pixels=24 * 784)
    clip = load_video(real_clips["bikes"], budget, geometry=adapter.geometry)
    sample = Sample(
        problem_id=0,
        problem="What happens?",
        data_type="video",
        problem_type="free-form",
        options=[],
        solution="<answer>bikes</answer>",
        path="bikes.mp4",
    )
    batch = collate([sample], [clip], processor, adapter=adapter)
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
    policy = (
        AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).to(device).eval()
    )
    _, order = shuffle_frames(
        clip, torch.Generator().manual_seed(0), geometry=adapter.geometry, unit="temporal_patch"
    )
    with torch.no_grad():
        ordered = encode_media(policy, batch)
        twin = ordered.permute_videos(
            batch["video_grid_thw"],
            [frame_order_to_patch_order(order, adapter.geometry.temporal_patch_size)],
            spatial_merge_size=adapter.geometry.merge_size,
        )
    rows = {  # the rollout batch of the recipe: the ordered row, then its twin
        "input_ids": batch["input_ids"].repeat(2, 1),
        "attention_mask": batch["attention_mask"].repeat(2, 1),
        "video_grid_thw": batch["video_grid_thw"].repeat(2, 1),
        "second_per_grid_ts": batch["second_per_grid_ts"].repeat(2),
    }
    media = ordered.concat(twin)
    requests = embedding_requests(rows, media, policy.config, dtype=torch.float32)

    engine = VLLMRolloutEngine(
        str(tiny_model_dir),
        eos_token_ids=[policy.config.text_config.eos_token_id],
        suppress_token_ids=HFRolloutEngine.media_token_ids(policy),
        gpu_memory_utilization=0.2,
        max_model_len=4096,
        dtype=torch.float32,
    )
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=16)
    out = engine.generate({"prompts": requests}, [4, 2], sampling, seeds=[1, 2])
    check_prompt_tokens(out.prompt_token_ids, rows, ["ordered", "shuffled"])
    for name, k, group in (("ordered", 0, out.completions[0]), ("shuffled", 1, out.completions[1])):
        one = {key: value[k : k + 1] for key, value in rows.items()}
        with torch.no_grad():
            positions, next_position = rope_positions(policy, one)
            seqs = build_sequences(one, positions, next_position, [group], pad_id=0)
            features = media.select([], [k] * len(group))
            ours, _ = sequence_logprobs(policy, seqs, features, temperature=1.0)
        theirs = torch.zeros_like(ours)
        for i, c in enumerate(group):
            assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
            theirs[i, : len(c.logprobs)] = torch.tensor(c.logprobs, device=device)
        diff = float(((ours - theirs).abs() * seqs.completion_mask).max())
        print(f"{name}: max |vLLM - training| per-token log-prob = {diff:.2e}")
        assert diff < MAX_LOGPROB_DIFF, f"{name}: vLLM's log-probs differ from training's by {diff}"

    engine.sleep()
    free_asleep = torch.cuda.mem_get_info()[0]
    engine.wake()
    assert torch.cuda.mem_get_info()[0] < free_asleep  # waking took its weights and KV cache back
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
    engine.sleep()
    engine.sync_weights(policy)  # wakes; all-zero weights: every logit ties, the first token id wins
    greedy = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=2)
    again = engine.generate({"prompts": requests[:1]}, 1, greedy)
    assert again.completions[0][0].token_ids == [0, 0]
