"""The small BPE tokenizer, the real Qwen tokenizer files, and the Qwen2-VL chat template."""

from __future__ import annotations

import pytest

from videor1.models.chat_template import qwen2_vl_chat_template
from videor1.models.tokenizer import (
    QWEN_VISION_TOKEN_IDS,
    REASONING_TAGS,
    SPECIAL_TOKENS,
    build_small_tokenizer,
    load_qwen_tokenizer,
    qwen_tokenizer_dir,
)


@pytest.fixture(scope="module")
def small():
    return build_small_tokenizer(vocab_size=4096)


def test_small_tokenizer_layout(small):
    n = len(small)
    assert n <= 4096
    reserved = SPECIAL_TOKENS + REASONING_TAGS
    # BPE vocabulary first, then the Qwen special tokens in Qwen's order, then the reasoning tags
    assert small.convert_tokens_to_ids(list(reserved)) == list(range(n - len(reserved), n))
    assert small.eos_token == "<|im_end|>"
    assert small.pad_token == "<|endoftext|>"
    assert small.bos_token is None


def test_small_tokenizer_reasoning_tags_are_single_tokens_and_survive_decoding(small):
    text = "<think>Let me think.</think>\n<answer>B</answer>"
    ids = small(text)["input_ids"]
    tokens = small.convert_ids_to_tokens(ids)
    for tag in REASONING_TAGS:
        assert tokens.count(tag) == 1
    assert small.decode(ids, skip_special_tokens=True) == text
    assert len(ids) <= 12  # 4 tags + "Let", " me", " think", "." + newline + "B"


def test_small_tokenizer_round_trips_any_text(small):
    text = "Ünïcödé ✓ 3.14 — 東京\t<|im_start|>user\nSpaces   and\r\nlines<|im_end|>"
    ids = small(text)["input_ids"]
    assert small.decode(ids) == text
    assert small.convert_tokens_to_ids("<|im_start|>") in ids
    assert small.decode(ids, skip_special_tokens=True) == text.replace("<|im_start|>", "").replace(
        "<|im_end|>", ""
    )


def test_small_tokenizer_is_deterministic_and_follows_the_corpus(small):
    again = build_small_tokenizer(vocab_size=4096)
    assert again.get_vocab() == small.get_vocab()
    other = build_small_tokenizer(["zebra zebra zebra quokka quokka"], vocab_size=300)
    assert len(other) <= 300
    assert other.convert_ids_to_tokens(other("zebra")["input_ids"]) == ["zebra"]


def test_small_tokenizer_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="vocab_size must be >= 274"):
        build_small_tokenizer(vocab_size=100)
    with pytest.raises(ValueError, match="corpus is empty"):
        build_small_tokenizer([], vocab_size=1000)


def test_qwen_tokenizer_has_qwen25_vl_vision_ids():
    assert (qwen_tokenizer_dir() / "tokenizer.json").exists()
    tok = load_qwen_tokenizer()
    for token, expected in QWEN_VISION_TOKEN_IDS.items():
        assert tok.convert_tokens_to_ids(token) == expected
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [
        151643,
        151644,
        151645,
    ]
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token == "<|endoftext|>"
    assert tok.chat_template is None
    assert tok("<think>")["input_ids"] == [151667]


CONVERSATION = [
    {
        "role": "user",
        "content": [{"type": "video"}, {"type": "text", "text": "What moves first?"}],
    }
]


def _render(template: str, messages, **kwargs) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, **kwargs)
    return rendered[0]


def test_chat_template_matches_qwen2_vl_layout():
    text = _render(qwen2_vl_chat_template(), CONVERSATION, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What moves first?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_template_system_message_image_vision_ids_and_assistant_turn():
    messages = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Q"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>x</think>\n<answer>A</answer>"}]},
    ]
    text = _render(qwen2_vl_chat_template(), messages, add_vision_id=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
        "<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>"
        "Video 1: <|vision_start|><|video_pad|><|vision_end|>Q<|im_end|>\n"
        "<|im_start|>assistant\n<think>x</think>\n<answer>A</answer><|im_end|>\n"
    )


def test_chat_template_without_default_system_and_bare_video_pad():
    text = _render(qwen2_vl_chat_template(None, wrap_video=False), CONVERSATION, add_generation_prompt=False)
    assert text == "<|im_start|>user\n<|video_pad|>What moves first?<|im_end|>\n"
