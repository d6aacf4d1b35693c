"""Typed configuration: dataclasses are the truth, YAML is only their serialisation.

One ``Config`` holds a section per stage (``model``, ``data``, ``train``, ``sft``, ``rl``, ``eval``,
``annotate``); every command reads the sections it needs. Each field carries a one-line docstring
(the string literal after it), which ``videor1 config --explain`` prints.

Loading is strict: an unknown key, a wrong type or a value outside a ``Literal`` raises
``ConfigError`` naming the dotted key and the allowed values. Dotted overrides on the command line
(``rl.num_generations=8``) are parsed as YAML scalars and validated the same way. Values that
depend on others are derived (e.g. ``RLConfig.shuffled_generations`` defaults to half of
``num_generations``), never copied between sections.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

PIXELS_PER_TOKEN = 28 * 28
IMAGE_FACTOR = 28  # default pixels per visual token side: Qwen2/2.5-VL (14 x 2); Qwen3-VL uses 32


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-6`` as a float (YAML 1.1 requires a dot: ``1.0e-6``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the dotted key."""


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


@dataclass
class MediaConfig:
    """Frame and pixel budgets (REFERENCE §2). Saved with every run and checkpoint."""

    fps: float = 2.0
    """Target sampling rate in frames per second before clamping to [min_frames, max_frames]."""
    min_frames: int = 4
    """Fewest frames sampled from a video."""
    max_frames: int = 16
    """Most frames sampled from a video (also capped by the video's own frame count)."""
    nframes: int | None = None
    """Fixed frame count (overrides the fps rule); rounded to the nearest multiple of 2 (Python round, as the reference)."""
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
        if self.fps <= 0:
            raise ConfigError(f"{prefix}.fps must be > 0, got {self.fps}")
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
    """Procedural temporal dataset written when the configured data files do not exist yet."""

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


@dataclass
class DataConfig:
    """Where the records and media live, and how prompts are built."""

    train_file: str = ""
    """Video-R1 JSON/JSONL file with the training records."""
    eval_file: str | None = None
    """Optional held-out file in the same schema."""
    media_root: str = "."
    """Directory that the records' ``./``-relative ``path`` fields are resolved under."""
    media: MediaConfig = field(default_factory=MediaConfig)
    """Frame and pixel budgets."""
    prompt_variant: Literal["train", "eval"] = "train"
    """Which reference prompt wording to use (REFERENCE §1)."""
    system_prompt: str | None = None
    """System message; None uses the chat template's default (the reference's RL setting)."""
    max_samples: int | None = None
    """Use only the first N records (smoke runs)."""
    synth: SynthConfig | None = None
    """Generate a procedural dataset into ``media_root`` when ``train_file`` is missing."""

    def validate(self, prefix: str) -> None:
        self.media.validate(f"{prefix}.media")
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


@dataclass
class ModelConfig:
    """Which checkpoint to load and how."""

    path: str = ""
    """Checkpoint directory (or hub id when a hub is reachable)."""
    family: Literal["auto", "qwen2-vl", "qwen2.5-vl", "qwen3-vl"] = "auto"
    """Model family; ``auto`` reads it from the checkpoint's config."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Parameter dtype when loading."""
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
        if not self.path:
            raise ConfigError(f"{prefix}.path is required (a checkpoint directory or hub id)")


@dataclass
class TrainConfig:
    """Shared by SFT and RL: run directory, batch shape, optimiser, schedule, checkpoints."""

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
    """Compute precision (bf16 autocast on GPU)."""
    max_seq_len: int = 16384
    """Longest prompt + target in tokens; longer samples raise a clear error (vision tokens are never cropped)."""
    log_every: int = 1
    """Write metrics every N steps."""
    save_every: int = 0
    """Checkpoint every N steps (0 = only at the end)."""
    keep_last: int = 2
    """Keep this many step checkpoints (the final one is always kept)."""
    distributed: Literal["ddp", "fsdp2", "deepspeed"] = "ddp"
    """Engine used under torchrun with more than one process."""
    report_to: list[Literal["tensorboard", "wandb"]] = field(default_factory=list)
    """Extra metric sinks besides metrics.jsonl."""
    num_workers: int = 0
    """DataLoader worker processes that decode media and build batches (0 = in the training process)."""

    def validate(self, prefix: str) -> None:
        if (self.max_steps is None) == (self.epochs is None):
            raise ConfigError(
                f"set exactly one of {prefix}.max_steps and {prefix}.epochs "
                f"(got max_steps={self.max_steps}, epochs={self.epochs})"
            )
        if self.warmup_steps and self.warmup_ratio:
            raise ConfigError(f"can't provide both {prefix}.warmup_steps and {prefix}.warmup_ratio")
        if self.per_device_batch_size < 1:
            raise ConfigError(f"{prefix}.per_device_batch_size must be >= 1")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError(f"{prefix}.gradient_accumulation_steps must be >= 1")
        if len(self.adam_betas) != 2:
            raise ConfigError(f"{prefix}.adam_betas must have two values, got {self.adam_betas}")


@dataclass
class SFTConfig:
    """Supervised cold start on CoT data (target = process + newline + solution)."""

    target_format: Literal["process_solution"] = "process_solution"
    """SFT target: ``process + "\\n" + solution`` (REFERENCE §1)."""
    system_prompt: str | None = "You are a helpful assistant"
    """System message used in SFT (the reference's)."""


@dataclass
class SamplingConfig:
    """Decoding settings for rollouts, evaluation and annotation."""

    temperature: float = 1.0
    """Softmax temperature (0 = greedy)."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    max_new_tokens: int = 768
    """Most tokens generated per completion."""

    def validate(self, prefix: str) -> None:
        if self.temperature < 0:
            raise ConfigError(f"{prefix}.temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"{prefix}.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"{prefix}.max_new_tokens must be >= 1")


@dataclass
class RLConfig:
    """GRPO / T-GRPO (REFERENCE §4)."""

    num_generations: int = 8
    """G: rollouts per question on the ordered clip."""
    temporal: bool = True
    """T-GRPO: also roll out on shuffled frames for video questions."""
    shuffled_generations: int | None = None
    """Rollouts on the shuffled clip; None = num_generations // 2."""
    shuffle_unit: Literal["frame", "temporal_patch"] = "frame"
    """Permute single frames (reference) or whole temporal patches (lets the ViT encoding be reused)."""
    temporal_form: Literal["reference", "advantage"] = "reference"
    """Where the temporal bonus acts: added to rewards before normalisation (reference) or kept in the advantage."""
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
    """Drop groups whose rewards are all equal and refill the batch."""
    max_resample_rounds: int = 3
    """Most extra rollout rounds when refilling a dynamically sampled batch."""
    max_prompt_length: int = 16384
    """Longest prompt in tokens (vision included); longer prompts raise."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Rollout decoding."""
    engine: Literal["transformers", "vllm"] = "transformers"
    """Rollout engine (vllm needs the [gpu] extra)."""

    @property
    def num_shuffled(self) -> int:
        return self.num_generations // 2 if self.shuffled_generations is None else self.shuffled_generations

    def validate(self, prefix: str) -> None:
        if self.num_generations < 2:
            raise ConfigError(
                f"{prefix}.num_generations must be >= 2 (a group needs a spread), got {self.num_generations}"
            )
        if self.temporal and self.num_shuffled < 1:
            raise ConfigError(f"{prefix}.shuffled_generations must be >= 1 when {prefix}.temporal is true")
        if self.num_iterations < 1:
            raise ConfigError(f"{prefix}.num_iterations must be >= 1")
        if self.length_min > self.length_max:
            raise ConfigError(f"{prefix}.length_min must be <= {prefix}.length_max")
        self.sampling.validate(f"{prefix}.sampling")


@dataclass
class EvalConfig:
    """Benchmark evaluation (REFERENCE §5)."""

    benches: list[str] = field(default_factory=list)
    """Benchmark JSON files."""
    bench_name: str | None = None
    """Benchmark name when it can't be recognised from the file name."""
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


@dataclass
class AnnotateConfig:
    """CoT annotation with a teacher model (REFERENCE §4, last paragraph)."""

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

    def validate(self, sections: tuple[str, ...] = ("data", "train", "rl")) -> Config:
        """Cross-field checks for the sections a command uses; returns self."""
        for name in sections:
            section = getattr(self, name)
            check = getattr(section, "validate", None)
            if check is not None:
                check(name)
        return self


# --------------------------------------------------------------------------------------------------
# Generic (de)serialisation
# --------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        return f"list[{_type_name(inner)}]"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one YAML value to the annotated type; raise ConfigError naming ``key``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{key}: {value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: null is not allowed (expected {_type_name(tp)})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not a {_type_name(tp)}")
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list ({_type_name(tp)}), got {value!r}")
        return [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys raise, missing keys take defaults."""
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise ConfigError(f"unknown config key {dotted!r}; {cls.__name__} accepts: {', '.join(names)}")
        kwargs[key] = _convert(value, hints[key], dotted)
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML-ready) view of a config dataclass."""
    return dataclasses.asdict(obj)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML file into ``Config`` and apply dotted ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = _yaml_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML: {e}") from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
        data = loaded
    for item in overrides or []:
        _apply_override(data, item)
    try:
        return from_dict(Config, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None


def load_dataclass(cls: type, path: str | Path, overrides: list[str] | None = None) -> Any:
    """Load a YAML mapping into any config dataclass ``cls``, as strictly as ``load_config``.

    Unknown keys, wrong types and dotted overrides (``key=value``) behave as for ``Config``; errors
    name the file and the dotted key.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = _yaml_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping")
    for item in overrides or []:
        _apply_override(data, item)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None


def _apply_override(data: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {item!r}: empty key component")
    value = _yaml_load(raw) if raw.strip() else ""
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def save_config(cfg: Config, path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field (used by ``videor1 config --explain``)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = nxt.value.value.strip()
    return docs


def explain(cls: type = Config, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """Rows of (dotted key, type, default, doc) for every leaf field."""
    rows = []
    hints = get_type_hints(cls)
    docs = field_docs(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        default = getattr(instance, f.name)
        nested = [a for a in (get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
        if nested:
            rows.extend(explain(nested[0], key))
        else:
            rows.append((key, _type_name(tp), default, docs.get(f.name, "")))
    return rows
