"""Transformers rollout engine: shared prefill, correct positions, reproducible sampling."""

from __future__ import annotations

import math

import pytest
import torch

from videor1.algorithms.losses import token_logprobs
from videor1.config import SamplingConfig
from videor1.models.tiny import bare_qwen2_5_vl
from videor1.models.vision import VisionCounter, rope_positions
from videor1.rollout.hf import HFRolloutEngine, sample_next_token

VIDEO, IMAGE, VSTART, VEND, EOS, PAD = 291, 290, 292, 293, 2, 0


def tiny_vl_model(seed: int = 0):
    return bare_qwen2_5_vl(seed=seed, eos_token_id=EOS)


def video_batch(num_prompts: int = 2, frames: int = 4, seed: int = 0):
    """Left-padded prompts each holding one 4x4-patch video (frames/2 temporal patches)."""
    g = torch.Generator().manual_seed(seed)
    t, h, w = frames // 2, 4, 4
    n_tok = t * h * w // 4
    rows, lengths = [], []
    for i in range(num_prompts):
        text = torch.randint(3, 280, (3 + 2 * i,), generator=g).tolist()
        rows.append([*text[:2], VSTART, *([VIDEO] * n_tok), VEND, *text[2:]])
        lengths.append(len(rows[-1]))
    width = max(lengths)
    input_ids = torch.full((num_prompts, width), PAD)
    attention_mask = torch.zeros(num_prompts, width, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row)
        attention_mask[i, width - len(row) :] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pixel_values_videos": torch.randn(num_prompts * t * h * w, 3 * 2 * 14 * 14, generator=g),
        "video_grid_thw": torch.tensor([[t, h, w]] * num_prompts),
        "second_per_grid_ts": torch.tensor([1.0] * num_prompts),
    }


@pytest.fixture(scope="module")
def model():
    return tiny_vl_model()


def engine(model, suppress=()):
    return HFRolloutEngine(model, eos_token_ids=[EOS], pad_token_id=PAD, suppress_token_ids=list(suppress))


def test_greedy_matches_transformers_generate(model):
    batch = video_batch()
    sampling = SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=6)
    out = engine(model).generate(batch, 2, sampling)
    ref = model.generate(
        **batch,
        position_ids=rope_positions(model, batch).position_ids,  # transformers continues them +1 per token
        do_sample=False,
        max_new_tokens=6,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    for b, group in enumerate(out.completions):
        expected = ref[b, batch["input_ids"].shape[1] :].tolist()
        if EOS in expected:
            expected = expected[: expected.index(EOS) + 1]
        assert len(group) == 2
        for c in group:
            assert c.token_ids == expected


def test_sampled_logprobs_match_a_full_forward(model):
    # the recorded per-token log-probs equal a teacher-forced forward of prompt + completion
    batch = video_batch(num_prompts=1)
    sampling = SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=5)
    out = engine(model).generate(batch, 3, sampling, generator=torch.Generator().manual_seed(1))
    for c in out.completions[0]:
        ids = torch.tensor([c.token_ids])
        full = {**batch, "input_ids": torch.cat([batch["input_ids"], ids], 1)}
        full["attention_mask"] = torch.ones_like(full["input_ids"])
        full["position_ids"] = rope_positions(model, full).position_ids  # prompt and completion at once
        with torch.no_grad():
            logits = model(**full).logits[:, batch["input_ids"].shape[1] - 1 : -1]
        expected = token_logprobs(logits, ids, temperature=0.7)[0]
        torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-4, rtol=1e-4)


def test_prompt_is_prefilled_once_per_question(model):
    # 2 prompts x 4 samples: the vision tower encodes each video once, in one call
    counter = VisionCounter().install(model)
    try:
        sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=3)
        out = engine(model).generate(video_batch(), 4, sampling, generator=torch.Generator().manual_seed(0))
    finally:
        counter.remove()
    assert (counter.calls, counter.items, counter.videos) == (1, 2, 2)
    assert [len(g) for g in out.completions] == [4, 4]
    assert out.generated_tokens == sum(len(c.token_ids) for g in out.completions for c in g)


def test_per_row_counts_and_reproducible_sampling(model):
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=4)
    a = engine(model).generate(video_batch(), [3, 1], sampling, generator=torch.Generator().manual_seed(5))
    b = engine(model).generate(video_batch(), [3, 1], sampling, generator=torch.Generator().manual_seed(5))
    assert [len(g) for g in a.completions] == [3, 1]
    assert [[c.token_ids for c in g] for g in a.completions] == [
        [c.token_ids for c in g] for g in b.completions
    ]


def test_top_p_keeps_only_the_nucleus():
    # probs [0.6, 0.3, 0.1]: with top_p 0.5 only token 0 has mass-before < 0.5 -> always token 0,
    # log-prob still under the full distribution: ln 0.6
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1]])).repeat(50, 1)
    tok, lp = sample_next_token(
        logits, SamplingConfig(temperature=1.0, top_p=0.5), torch.Generator().manual_seed(0)
    )
    assert tok.tolist() == [0] * 50
    torch.testing.assert_close(lp, torch.full((50,), math.log(0.6)))
    # top_p 0.85: tokens 0 and 1 (mass before 0, 0.6), never token 2 (mass before 0.9)
    tok, _ = sample_next_token(
        logits, SamplingConfig(temperature=1.0, top_p=0.85), torch.Generator().manual_seed(0)
    )
    assert set(tok.tolist()) == {0, 1}


def test_media_placeholders_are_never_sampled(model):
    # by default the engine suppresses the config's image/video pad and vision start/end ids
    eng = HFRolloutEngine(model, eos_token_ids=[EOS], pad_token_id=PAD)
    assert sorted(eng.suppress_token_ids) == [IMAGE, VIDEO, VSTART, VEND]
    logits = torch.zeros(200, 300)
    logits[:, VIDEO] = 50.0  # the placeholder would win every draw
    tok, lp = sample_next_token(
        logits,
        SamplingConfig(temperature=1.0, top_p=1.0),
        torch.Generator().manual_seed(0),
        torch.tensor([VIDEO]),
    )
    assert VIDEO not in tok.tolist()
    # log-probs stay those of the unsuppressed distribution: ln(1 / (e^50 + 299)) ~ -50
    assert lp[0].item() == pytest.approx(-50.0, abs=1e-3)


def test_a_generator_on_another_device_than_the_logits_is_refused():
    # CUDA refuses a CPU generator for CUDA probabilities; the check names both devices (here logits on
    # the meta device stand in for a GPU)
    logits = torch.empty(2, 5, device="meta")
    with pytest.raises(ValueError, match="generator is on cpu but the logits are on meta"):
        sample_next_token(logits, SamplingConfig(temperature=1.0, top_p=1.0), torch.Generator())
