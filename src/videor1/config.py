"""Typed configuration: dataclasses are the truth, YAML is only their serialisation.

One ``Config`` holds a section per stage (``model``, ``data``, ``train``, ``sft``, ``rl``, ``eval``,
``annotate``); every command reads the sections it needs. Each field carries a one-line docstring
(the string literal after it), which ``videor1 config --explain`` prints.

Loading is strict: a key given twice in one YAML mapping, an unknown key, a wrong type, a value
outside a ``Literal``, a NaN or infinite number, or a value out of its range (``train.lr > 0``, ``train.adam_betas`` in [0, 1), counts >= 0 or
>= 1, ...) raises ``ConfigError`` naming the dotted key and the allowed values. Dotted overrides on the command line
(``rl.num_generations=8``) are parsed as YAML scalars and validated the same way. A nested section
given in part keeps its parent's defaults for the rest (``eval.sampling.max_new_tokens=8`` keeps
evaluation's temperature 0.1; see ``config_loader.from_dict``). Values that
depend on others are derived (e.g. ``RLConfig.shuffled_generations`` defaults to half of
``num_generations``), never copied between sections.

This module holds the sections, ``Config``, ``load_config`` and ``save_config``; the generic loader
(YAML, type conversion, overrides, field docs) is :mod:`videor1.config_loader`, whose public names are
importable from here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import yaml

from videor1.config_loader import ConfigError, _at_least, _require, from_dict, load_raw, to_dict
from videor1.config_loader import explain as explain  # re-exported: the loader's names stay importable here
from videor1.config_loader import explicit_section as explicit_section
from videor1.config_loader import field_docs as field_docs
from videor1.config_loader import load_dataclass as load_dataclass

PIXELS_PER_TOKEN = 28 * 28
"""The unit the reference writes its pixel budgets in (``128 * 28 * 28`` ...): the pixels of one
Qwen2.5-VL visual token. Only for writing budgets; a model's own token side is its
``VisionGeometry.pixel_factor`` (``videor1.models.adapters.get_adapter(model).geometry``)."""


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaConfig:
    """Frame and pixel budgets (Qwen2.5-VL's video rules as Video-R1 used them). Saved with every run and checkpoint.

    The media loaders (``videor1.data.media``, ``videor1.data.frames``) take it whole: these fields hold
    every default."""

    fps: float = 2.0
    """Target sampling rate in frames per second before clamping to [min_frames, max_frames]."""
    min_frames: int = 4
    """Fewest frames sampled from a video."""
    max_frames: int = 16
    """Most frames sampled from a video (also capped by the video's own frame count)."""
    nframes: int | None = None
    """Fixed frame count (overrides the fps rule); a multiple of the model's temporal patch (2), never rounded."""
    video_min_pixels: int = 128 * PIXELS_PER_TOKEN
    """Smallest area per video frame (pixels) after resizing."""
    video_max_pixels: int = 128 * PIXELS_PER_TOKEN
    """Largest area per video frame (pixels) before the reference's 5% slack rule."""
    video_total_pixels: int | None = None
    """Pixel budget for the whole clip (reference rule max(min(max, total/n*2), 1.05*min)); None = unlimited."""
    image_min_pixels: int = 4 * PIXELS_PER_TOKEN
    """Smallest image area (pixels) after resizing."""
    image_max_pixels: int = 256 * PIXELS_PER_TOKEN
    """Largest image area (pixels) after resizing."""

    def validate(self, prefix: str) -> None:
        _require(self.fps > 0, f"{prefix}.fps", self.fps, "> 0")
        _at_least(self, prefix, 1, "video_min_pixels", "video_max_pixels", "image_min_pixels")
        _at_least(self, prefix, 1, "image_max_pixels", "video_total_pixels")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ConfigError(
                f"{prefix}.min_frames ({self.min_frames}) must be >= 1 and <= "
                f"{prefix}.max_frames ({self.max_frames})"
            )
        if self.nframes is not None and self.nframes < 2:
            raise ConfigError(f"{prefix}.nframes must be >= 2 (one temporal patch), got {self.nframes}")
        if self.video_min_pixels > self.video_max_pixels:
            raise ConfigError(f"{prefix}.video_min_pixels must be <= {prefix}.video_max_pixels")
        if self.image_min_pixels > self.image_max_pixels:
            raise ConfigError(f"{prefix}.image_min_pixels must be <= {prefix}.image_max_pixels")


@dataclass
class SynthConfig:
    """Procedural temporal dataset this config owns: written into ``data.media_root`` on first use.

    Only when ``data.media_root`` is missing or empty and ``data.train_file`` is one of the files it
    writes there (``train.json``, ``train_cot.json``, ``test.json``); anything else is an error.
    """

    train: int = 256
    """Number of training items to generate."""
    test: int = 64
    """Number of held-out items to generate."""
    seed: int = 0
    """Generator seed; the same seed gives byte-identical files."""
    size: int = 112
    """Frame side in pixels."""
    frames: int = 16
    """Frames per generated video."""
    families: list[str] = field(default_factory=list)
    """Task families to include (empty = all)."""

    def validate(self, prefix: str) -> None:
        _at_least(self, prefix, 0, "train", "test", "seed")
        _require(
            self.train + self.test > 0, f"{prefix}.train + {prefix}.test", self.train + self.test, ">= 1"
        )
        _require(self.size >= 56, f"{prefix}.size", self.size, ">= 56 pixels")
        _require(
            self.frames >= 8 and self.frames % 8 == 0, f"{prefix}.frames", self.frames, "a multiple of 8"
        )


@dataclass
class DataConfig:
    """Where the records and media live, and how prompts are built."""

    train_file: str = ""
    """Training records: a Video-R1 JSON array, JSONL, parquet file or a ``datasets`` save_to_disk directory."""
    eval_file: str | None = None
    """Optional held-out file in the same schema."""
    media_root: str = "."
    """Directory that the records' ``./``-relative ``path`` fields are resolved under."""
    media: MediaConfig = field(default_factory=MediaConfig)
    """Frame and pixel budgets."""
    prompt_variant: Literal["train", "eval"] = "train"
    """Prompt wording: ``train`` (what the released Video-R1 checkpoints were trained with) or ``eval`` (the <think> variant)."""
    system_prompt: str | None = None
    """System message; None uses the chat template's default (the reference's RL setting)."""
    max_samples: int | None = None
    """Use only the first N records (smoke runs)."""
    synth: SynthConfig | None = None
    """Procedural dataset this config owns, generated into ``media_root`` on first use (see SynthConfig)."""

    def validate(self, prefix: str) -> None:
        self.media.validate(f"{prefix}.media")
        if self.synth is not None:
            self.synth.validate(f"{prefix}.synth")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"{prefix}.max_samples must be >= 1 or null, got {self.max_samples}")


@dataclass
class TinyModelConfig:
    """Architecture of a random-init tiny model built when ``model.path`` does not exist yet."""

    family: Literal["qwen2-vl", "qwen2.5-vl", "qwen3-vl"] = "qwen2.5-vl"
    """Architecture family (the real transformers class is used)."""
    tokenizer: Literal["qwen", "small"] = "small"
    """``qwen``: the real Qwen vocabulary; ``small``: a byte-level BPE trained locally (fast on CPU)."""
    vocab_size: int = 4096
    """Vocabulary size of the ``small`` tokenizer (ignored for ``qwen``)."""
    hidden_size: int = 128
    """Language model hidden size."""
    num_layers: int = 2
    """Language model layers."""
    num_heads: int = 4
    """Attention heads of the language model."""
    num_kv_heads: int = 2
    """Key/value heads of the language model."""
    intermediate_size: int = 256
    """MLP width of the language model."""
    vision_hidden_size: int = 64
    """Vision tower hidden size."""
    vision_depth: int = 2
    """Vision tower layers."""
    vision_heads: int = 4
    """Vision tower attention heads."""
    rope_theta: float | None = None
    """Language-model RoPE base; None = the tiny default of the family (see ``videor1.models.tiny``)."""
    match_position_scale: bool = True
    """Qwen3-VL: start the ViT's absolute position embedding at the scale of its patch embeddings."""
    seed: int = 0
    """Initialisation seed; the same seed gives identical weights."""

    def validate(self, prefix: str) -> None:
        _at_least(
            self, prefix, 1, "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"
        )
        _at_least(self, prefix, 1, "vision_hidden_size", "vision_depth", "vision_heads")
        _at_least(self, prefix, 0, "seed")
        _require(self.vocab_size >= 512, f"{prefix}.vocab_size", self.vocab_size, ">= 512")
        for size, heads in (("hidden_size", "num_heads"), ("vision_hidden_size", "vision_heads")):
            if getattr(self, size) % getattr(self, heads):
                raise ConfigError(f"{prefix}.{size} must be a multiple of {prefix}.{heads}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"{prefix}.num_heads must be a multiple of {prefix}.num_kv_heads")


@dataclass
class LoraConfig:
    """LoRA adapters through peft."""

    enabled: bool = False
    """Train LoRA adapters instead of full weights."""
    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """Adapter scaling numerator."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Module name suffixes that get adapters in the language model."""
    vision: bool = False
    """Also put adapters on the vision tower (otherwise it follows ``model.freeze_vision``)."""

    def validate(self, prefix: str) -> None:
        _at_least(self, prefix, 1, "r", "alpha")
        _require(0 <= self.dropout < 1, f"{prefix}.dropout", self.dropout, "in [0, 1)")


@dataclass
class ModelConfig:
    """Which checkpoint to load and how."""

    path: str = ""
    """Checkpoint directory (or hub id when a hub is reachable)."""
    family: Literal["auto", "qwen2-vl", "qwen2.5-vl", "qwen3-vl"] = "auto"
    """Model family; ``auto`` reads it from the checkpoint's config."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Dtype of inference models (the RL reference, eval) and of the weights checkpoints write; training keeps fp32 master weights."""
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    """Attention kernel."""
    freeze_vision: bool = False
    """Keep the vision tower (and merger) frozen."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA settings."""
    tiny: TinyModelConfig | None = None
    """Build a random-init tiny model at ``path`` when it does not exist yet."""

    def validate(self, prefix: str) -> None:
        self.lora.validate(f"{prefix}.lora")
        if self.tiny is not None:
            self.tiny.validate(f"{prefix}.tiny")


@dataclass
class TrainConfig:
    """Shared by SFT and RL: run directory, batch shape, optimiser, schedule, checkpoints."""

    # two ways to give the run's length: a train section must give one (never inherited from Config's)
    exclusive_keys: ClassVar[tuple[tuple[str, ...], ...]] = (("max_steps", "epochs"),)

    output_dir: str = "runs/default"
    """Run directory (config.yaml, metrics.jsonl, checkpoints/)."""
    seed: int = 0
    """Seed for data order, sampling and initialisation."""
    per_device_batch_size: int = 1
    """Questions per device per micro-batch."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimiser step."""
    max_steps: int | None = None
    """Optimiser steps; exactly one of max_steps / epochs must be set."""
    epochs: float | None = None
    """Passes over the data; converted to steps from the dataset size."""
    lr: float = 1e-6
    """Peak learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    max_grad_norm: float = 5.0
    """Clip the global gradient norm to this value (0 disables)."""
    scheduler: Literal["constant", "cosine", "linear"] = "constant"
    """Learning-rate schedule after warmup, over exactly the run's total steps."""
    warmup_steps: int = 0
    """Linear warmup steps (cannot be combined with warmup_ratio)."""
    warmup_ratio: float = 0.0
    """Warmup as a fraction of total steps (cannot be combined with warmup_steps)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Compute precision over the fp32 master weights (bf16: FSDP2 mixed precision or autocast)."""
    max_seq_len: int = 16384
    """Longest prompt + target in tokens; longer samples raise a clear error (vision tokens are never cropped)."""
    log_every: int = 1
    """Write metrics every N steps."""
    save_every: int = 0
    """Checkpoint every N steps (0 = only at the end)."""
    keep_last: int = 2
    """Keep this many step checkpoints (the final one is always kept; 0 = keep all)."""
    distributed: Literal["ddp", "fsdp2"] = "ddp"
    """Engine used under torchrun with more than one process (fsdp2 shards parameters, gradients and Adam states)."""
    collective_timeout_s: int = 1800
    """Seconds a process group collective may wait for the other ranks before the run fails; sized for a 7B checkpoint write (rank 0 writes the 16.6 GB HF model while the others wait) on slow shared storage."""
    report_to: list[Literal["tensorboard", "wandb"]] = field(default_factory=list)
    """Extra metric sinks besides metrics.jsonl."""
    num_workers: int = 0
    """DataLoader worker processes that decode media and build batches (0 = in the training process)."""
    nonfinite_skip: int = 0
    """Drop up to this many updates whose loss or gradient is NaN/inf (counted); the next one stops the run."""
    allow_changed: list[str] = field(default_factory=list)
    """Keys or sections (``rl.sampling``) a resume may change although the checkpoint's run had other values (``--allow-changed``)."""

    def validate(self, prefix: str) -> None:
        if (self.max_steps is None) == (self.epochs is None):
            raise ConfigError(
                f"set exactly one of {prefix}.max_steps and {prefix}.epochs "
                f"(got max_steps={self.max_steps}, epochs={self.epochs})"
            )
        if self.warmup_steps and self.warmup_ratio:
            raise ConfigError(f"can't provide both {prefix}.warmup_steps and {prefix}.warmup_ratio")
        _at_least(self, prefix, 1, "per_device_batch_size", "gradient_accumulation_steps", "max_steps")
        _at_least(self, prefix, 1, "max_seq_len", "log_every")
        _at_least(self, prefix, 0, "seed", "warmup_steps", "save_every", "keep_last", "num_workers")
        _at_least(self, prefix, 0, "nonfinite_skip")
        _at_least(self, prefix, 1, "collective_timeout_s")
        _at_least(self, prefix, 0, "weight_decay", "max_grad_norm")
        _require(self.lr > 0, f"{prefix}.lr", self.lr, "> 0")
        if self.epochs is not None:
            _require(self.epochs > 0, f"{prefix}.epochs", self.epochs, "> 0")
        _require(0 <= self.warmup_ratio < 1, f"{prefix}.warmup_ratio", self.warmup_ratio, "in [0, 1)")
        if len(self.adam_betas) != 2:
            raise ConfigError(f"{prefix}.adam_betas must have two values, got {self.adam_betas}")
        for i, beta in enumerate(self.adam_betas):
            _require(0 <= beta < 1, f"{prefix}.adam_betas[{i}]", beta, "in [0, 1)")


@dataclass
class SFTConfig:
    """Supervised cold start on CoT data (target = process + newline + solution)."""

    target_format: Literal["process_solution"] = "process_solution"
    """SFT target: ``process + "\\n" + solution`` (as the Video-R1 SFT script)."""
    system_prompt: str | None = "You are a helpful assistant"
    """System message used in SFT (the reference's)."""


@dataclass
class SamplingConfig:
    """Decoding settings for rollouts, evaluation and annotation."""

    temperature: float = 1.0
    """Softmax temperature; 0 = greedy (eval, annotate; refused for RL rollouts, whose groups need a spread)."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    max_new_tokens: int = 768
    """Most tokens generated per completion."""

    def validate(self, prefix: str) -> None:
        _require(self.temperature >= 0, f"{prefix}.temperature", self.temperature, ">= 0")
        _require(0 < self.top_p <= 1, f"{prefix}.top_p", self.top_p, "in (0, 1]")
        _require(self.max_new_tokens >= 1, f"{prefix}.max_new_tokens", self.max_new_tokens, ">= 1")


@dataclass
class RLConfig:
    """GRPO / T-GRPO (Video-R1's temporal GRPO, https://arxiv.org/abs/2503.21776)."""

    num_generations: int = 8
    """G: rollouts per question on the ordered clip."""
    temporal: bool = True
    """T-GRPO: also roll out on shuffled frames for video questions."""
    shuffled_generations: int | None = None
    """Rollouts on the shuffled clip; None = num_generations // 2."""
    shuffle_unit: Literal["frame", "temporal_patch"] = "frame"
    """Permute single frames (reference) or whole temporal patches (lets the ViT encoding be reused)."""
    temporal_form: Literal["reference", "advantage"] = "reference"
    """Where the temporal bonus acts: added to the rewards before normalisation (reference) or to the normalised advantages (advantage)."""
    temporal_mu: float = 0.8
    """Bonus fires when p >= mu * p_shuffled."""
    temporal_alpha: float = 0.3
    """Temporal bonus size."""
    temporal_margin: float | None = None
    """None: the reference rule (p >= mu * p_shuffled); a number d: fire only when p >= p_shuffled + d."""
    correct_threshold: float = 0.1
    """Accuracy above which a rollout counts as correct for the temporal and length bonuses."""
    length_reward: bool = True
    """Add the length bonus."""
    length_omega: float = 0.2
    """Length bonus size."""
    length_min: int = 320
    """Length window lower bound (tokens, EOS included)."""
    length_max: int = 512
    """Length window upper bound."""
    reward_mode: Literal["default", "video-r1"] = "default"
    """Reward rules: fixed (default) or the reference's exact quirks."""
    advantage: Literal["grpo", "dr-grpo"] = "grpo"
    """Std-normalised group advantages (reference) or mean-centred only (Dr.GRPO)."""
    loss_agg: Literal["seq-mean", "token-mean", "dr-grpo"] = "seq-mean"
    """Loss aggregation over tokens and sequences."""
    beta: float = 0.04
    """KL coefficient (k3 estimator to the reference model); 0 disables the reference model."""
    clip_eps_low: float = 0.2
    """Ratio clipping below 1 (only active when num_iterations > 1)."""
    clip_eps_high: float = 0.2
    """Ratio clipping above 1."""
    num_iterations: int = 1
    """Policy updates per rollout batch (reference: 1)."""
    dynamic_sampling: bool = False
    """Drop groups whose advantages are all zero and refill the batch (DAPO's dynamic sampling)."""
    max_resample_rounds: int = 3
    """Most extra rollout rounds when refilling a dynamically sampled batch."""
    max_prompt_length: int = 16384
    """Longest prompt in tokens (vision included); longer prompts raise."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Rollout decoding."""
    engine: Literal["transformers", "vllm"] = "transformers"
    """Rollout engine: the policy itself through transformers, or a colocated vLLM engine per GPU (the [gpu] extra)."""
    vllm_gpu_memory_utilization: float = 0.3
    """Share of each GPU's memory the colocated vLLM engine may take (weights + KV cache); rl.engine=vllm only."""

    @property
    def num_shuffled(self) -> int:
        return self.num_generations // 2 if self.shuffled_generations is None else self.shuffled_generations

    def validate(self, prefix: str) -> None:
        if self.num_generations < 2:
            raise ConfigError(
                f"{prefix}.num_generations must be >= 2 (a group needs a spread), got {self.num_generations}"
            )
        if not self.temporal and self.shuffled_generations is not None:
            raise ConfigError(
                f"{prefix}.shuffled_generations={self.shuffled_generations} has no effect with "
                f"{prefix}.temporal=false (plain GRPO has no shuffled group); drop it or set {prefix}.temporal=true"
            )
        if self.temporal and self.num_shuffled < 1:
            raise ConfigError(f"{prefix}.shuffled_generations must be >= 1 when {prefix}.temporal is true")
        if self.num_iterations < 1:
            raise ConfigError(f"{prefix}.num_iterations must be >= 1")
        if self.length_min > self.length_max:
            raise ConfigError(f"{prefix}.length_min must be <= {prefix}.length_max")
        _at_least(self, prefix, 1, "shuffled_generations", "max_prompt_length")
        _at_least(self, prefix, 0, "temporal_mu", "temporal_alpha", "length_omega", "length_min", "beta")
        _at_least(self, prefix, 0, "clip_eps_high", "max_resample_rounds")
        _require(0 <= self.clip_eps_low < 1, f"{prefix}.clip_eps_low", self.clip_eps_low, "in [0, 1)")
        _require(
            0 <= self.correct_threshold < 1,
            f"{prefix}.correct_threshold",
            self.correct_threshold,
            "in [0, 1)",
        )
        _require(
            0 < self.vllm_gpu_memory_utilization < 1,
            f"{prefix}.vllm_gpu_memory_utilization",
            self.vllm_gpu_memory_utilization,
            "in (0, 1)",
        )
        self.sampling.validate(f"{prefix}.sampling")
        if self.sampling.temperature == 0:
            raise ConfigError(
                f"{prefix}.sampling.temperature=0 is greedy decoding: the {self.num_generations} rollouts of a "
                "question would be identical, every group's advantages zero, and the policy would not learn; "
                "use a temperature > 0 (the reference: 1.0)"
            )


@dataclass
class EvalConfig:
    """Benchmark evaluation (Video-R1's evaluation files and decoding, with both scorings)."""

    benches: list[str] = field(default_factory=list)
    """Benchmark files (Video-R1 JSON, JSONL, parquet or a ``datasets`` directory)."""
    bench_names: list[str] = field(default_factory=list)
    """Benchmark names, one per entry of ``benches``, when they can't be recognised from the file names."""
    scoring: Literal["video-r1", "official", "both"] = "both"
    """Which scoring rules to report."""
    batch_size: int = 4
    """Questions per generation batch."""
    limit: int | None = None
    """Evaluate only the first N items (smoke runs)."""
    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=1024)
    )
    """Decoding (reference: effectively greedy)."""
    output_dir: str = "runs/eval"
    """Where predictions.jsonl and summaries are written."""
    greedy: bool = False
    """Decode with do_sample off (exact greedy) instead of the reference's temperature 0.1 / top-p 0.001."""
    task_field: str | None = None
    """Record field naming the task type (None: question_type, original_question_type, task_type, task)."""
    shuffle_frames: bool = False
    """Permute every video's frames before inference (temporal-sensitivity probe)."""
    shuffle_unit: Literal["frame", "temporal_patch"] = "frame"
    """Permute single frames or whole temporal patches when shuffle_frames is on."""
    seed: int = 0
    """Seed of the frame permutations and of sampled decoding."""
    max_error_rate: float = 0.0
    """Exit with status 1 when more than this fraction of a benchmark's items failed (media errors)."""

    def validate(self, prefix: str) -> None:
        _at_least(self, prefix, 1, "batch_size", "limit")
        _at_least(self, prefix, 0, "seed")
        _require(0 <= self.max_error_rate <= 1, f"{prefix}.max_error_rate", self.max_error_rate, "in [0, 1]")
        if self.bench_names and len(self.bench_names) != len(self.benches):
            raise ConfigError(
                f"{prefix}.bench_names has {len(self.bench_names)} names for {len(self.benches)} {prefix}.benches"
            )
        self.sampling.validate(f"{prefix}.sampling")


@dataclass
class AnnotateConfig:
    """CoT annotation with a teacher model (Video-R1 used Qwen2.5-VL-72B and kept traces scoring > 0.6)."""

    teacher: str = ""
    """Local model directory or an OpenAI-compatible base URL (http://...)."""
    api_model: str = "teacher"
    """Model name sent to an HTTP teacher."""
    threshold: float = 0.6
    """Keep a trace only if its answer scores strictly above this."""
    concurrency: int = 8
    """Concurrent requests to an HTTP teacher."""
    timeout_s: float = 120.0
    """Per-request timeout for an HTTP teacher."""
    max_retries: int = 2
    """Retries per request after a timeout or malformed reply."""
    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=512)
    )
    """Teacher decoding."""
    output: str = ""
    """Output CoT JSON file."""
    reward_mode: Literal["default", "video-r1"] = "default"
    """Accuracy-reward rules used to judge the teacher's answers."""
    image_format: Literal["jpeg", "png"] = "jpeg"
    """How frames are encoded for an HTTP teacher (base64 image_url parts)."""

    def validate(self, prefix: str) -> None:
        _require(0 <= self.threshold < 1, f"{prefix}.threshold", self.threshold, "in [0, 1)")
        _at_least(self, prefix, 1, "concurrency")
        _at_least(self, prefix, 0, "max_retries")
        _require(self.timeout_s > 0, f"{prefix}.timeout_s", self.timeout_s, "> 0")
        self.sampling.validate(f"{prefix}.sampling")


@dataclass
class Config:
    """Every section; a command reads the ones it needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Model to load."""
    data: DataConfig = field(default_factory=DataConfig)
    """Records, media and prompts."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=1))
    """Optimisation and checkpoints (SFT and RL)."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """SFT-specific settings."""
    rl: RLConfig = field(default_factory=RLConfig)
    """RL-specific settings."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation settings."""
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    """Annotation settings."""

    def validate(
        self, sections: tuple[str, ...] = ("model", "data", "train", "rl", "eval", "annotate")
    ) -> Config:
        """Range and cross-field checks of ``sections`` (``load_config`` runs them all); returns self."""
        for name in sections:
            section = getattr(self, name)
            check = getattr(section, "validate", None)
            if check is not None:
                check(name)
        return self


# --------------------------------------------------------------------------------------------------
# Loading and saving (the generic loader is videor1.config_loader)
# --------------------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML file into ``Config``, apply dotted ``key=value`` overrides, check every section.

    A ``model.path`` given as an override names a model the file does not own: the file's
    ``model.tiny`` (build a random-init model when the path is missing) is then dropped, so a
    mistyped checkpoint path is an error instead of a fresh random model. Override ``model.tiny.*``
    too to keep it.
    """
    data = load_raw(path, overrides)
    keys = [item.split("=", 1)[0].strip() for item in overrides or []]
    model = data.get("model")
    if "model.path" in keys and not any(k.startswith("model.tiny") for k in keys) and isinstance(model, dict):
        if model.get("tiny") is not None:
            logging.getLogger("videor1.config").info(
                "model.path is given on the command line: the config's model.tiny does not apply to it"
            )
            model["tiny"] = None
    try:
        return from_dict(Config, data).validate()
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None


def save_config(cfg: Config, path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
