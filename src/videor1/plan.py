"""A memory plan on paper: per-GPU bytes of a training config, derived from the config and the model.

``videor1 plan --config configs/qwen2_5_vl_7b/tgrpo.yaml --gpus 8 --gpu-memory-gb 80`` prints it.
The model's shapes come from ``model.path/config.json``, or for the public checkpoints the shipped
configs name, from :mod:`videor1.models.known`; parameter counts come from building the model on
PyTorch's ``meta`` device (no memory, exact counts). Units: GPU vendors sell decimal gigabytes
("80 GB" = 80e9 B = 74.5 GiB); the plan takes ``--gpu-memory-gb`` in GB and prints GiB (2**30 B).

What is counted, per GPU, with ``N`` GPUs, ``P`` parameters, ``T`` of them trained:

resident (the whole run)
    fp32 master weights ``4P``, fp32 gradients ``4T`` and AdamW's two fp32 moments ``8T`` (each
    divided by ``N`` under FSDP2, whole under DDP; under FSDP2 the gradients are reduce-scattered
    after every micro-batch, accumulation included, so only the shard is kept); the RL reference
    model in ``model.dtype`` (``/ N`` under FSDP2).
rollout (RL, while generating)
    transformers engine: the full weights in the compute dtype (FSDP2 gathers them once for
    generation; under DDP autocast caches a bf16 copy) and the KV cache of every rollout row,
    ``rows x (prompt + max_new_tokens) x layers x 2 x kv_heads x head_dim`` in the compute dtype,
    ``rows = per_device_batch_size x (G + G_shuffled)``. vLLM engine: its reserved share
    ``rl.vllm_gpu_memory_utilization x GPU memory`` instead, during the rollout only: the engine
    sleeps (level 1: weights offloaded to host RAM, KV cache discarded) through the update; and
    while the step's media are encoded for it, the policy weights the ViT needs in the compute dtype
    (FSDP2 gathers the root group and the ViT blocks only; under DDP autocast caches the ViT's).
update (the policy forward and backward)
    FSDP2's gathered weights (the root group stays gathered between forward and backward, plus the
    current and the prefetched block) and the root group's gradients (its trained parameters only:
    none of them under LoRA, whose adapters sit in the blocks), unsharded in the compute dtype
    from the LM head's backward to the end of the backward, then copied to fp32 for the reduce-scatter
    (FSDP2's ``reduce_dtype``); activations: with gradient checkpointing each decoder layer's
    input ``rows x L x hidden`` plus one layer recomputed at a time, without it every layer's; the
    LM head over the completion, applied in chunks of ``HEAD_CHUNK_TOKENS``
    (``videor1.algorithms.losses.head_token_logprobs``): one chunk's fp32 logits and their softmax or
    gradient, ``min(chunk, rows x max_new_tokens) x vocab x 8 B``; the ViT's checkpointed block
    inputs for the videos. ``rows = per_device_batch_size x G`` (shuffled rollouts never enter the
    loss), ``L = prompt + max_new_tokens``. SFT (``rl=False``): one row per question, ``L = prompt +
    target``, logits at the ``target`` positions only (``videor1.train.sft.target_token_loss`` asks
    for no others) at 10 B an entry (bf16 logits, their fp32 log-softmax and its gradient).
    With gradient accumulation (``k`` micro-batches a step): an RL step collects all its rollouts
    before the first update, so the other ``k - 1`` micro-batches' pixel values wait in fp32; and
    under FSDP2 each group's reduce-scatter output exists beside the shard it is added to (FSDP2's
    ``foreach_reduce`` accumulates in place after the first micro-batch), the root group's the largest.

host (per node, :func:`host_plan`)
    Rank 0 alone reads the checkpoint (the other ranks build on the meta device and receive their
    shards): the fp32 policy ``4P`` or the reference ``model.dtype x P``, one after the other. With
    the vLLM engine every GPU's sleeping engine keeps its weights in host RAM during the update
    (``2P`` in bf16 per GPU on the node).

The prompt is the visual tokens at the config's largest frame budget (``max_frames`` frames, the
reference's per-frame rule with its 5% slack) plus ``prompt_text_tokens`` of text. A decoder layer's
saved activations are approximated as ``(6 hidden + 2 kv_dim + 4 intermediate)`` values per token
(inputs of the four attention projections and the MLP, its gate/up/activation outputs; flash or sdpa
attention keeps no ``L x L`` matrix). Not counted: allocator fragmentation, CUDA context (~0.5-1 GB),
NCCL buffers, the dataloader, and on CPU the ``L x L`` scores that ``sdpa``'s math kernel keeps when
a padding mask rules out its flash kernel. The plan is an estimate to size a run, not a measurement;
``tests/integration/test_plan_measured.py`` holds it within 15% of the measured per-rank peak of
live tensors for the tiny model on 2 CPU processes (FSDP2, gradient checkpointing; plain, with
gradient accumulation and with dynamic sampling).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videor1.config import Config, ConfigError, ModelConfig

if TYPE_CHECKING:
    from videor1.types import VisionGeometry

GIB = 2**30
GB = 10**9
LOGIT_CHUNK_BYTES = 8  # per entry of a head chunk: fp32 logits + their fp32 softmax (or gradient)


@dataclass(frozen=True)
class Architecture:
    """The shapes a memory plan needs."""

    params: int  # every parameter
    vision_params: int  # the vision tower (blocks, patch embedding, merger)
    root_params: int  # parameters outside every FSDP2 block (embeddings, LM head, norms, ViT stem + merger)
    largest_block: int  # parameters of the largest FSDP2 block
    vision_block_params: int  # parameters of the vision tower's FSDP2 blocks
    root_trainable: int  # trained parameters of the root group under the config's freezing / LoRA
    hidden: int
    intermediate: int
    layers: int
    kv_heads: int
    head_dim: int
    vocab: int
    vision_hidden: int
    vision_depth: int
    geometry: VisionGeometry  # the vision tower's patch, merge and temporal patch sizes
    trainable: int  # under the config's freezing / LoRA settings


def _config_dict(model_cfg: ModelConfig) -> dict[str, Any]:
    from videor1.models.known import KNOWN

    file = Path(model_cfg.path).expanduser() / "config.json"
    if file.is_file():
        return json.loads(file.read_text(encoding="utf-8"))
    if model_cfg.path in KNOWN:
        return KNOWN[model_cfg.path]
    raise ConfigError(
        f"model.path {model_cfg.path!r}: no config.json there and not one of the known checkpoints "
        f"({', '.join(sorted(KNOWN))}); point it at a local checkpoint directory"
    )


def architecture(model_cfg: ModelConfig) -> Architecture:
    """Shapes and parameter counts of ``model_cfg``'s model (built on the meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from videor1.models.adapters import get_adapter

    data = dict(_config_dict(model_cfg))
    config = AutoConfig.for_model(data.pop("model_type"), **data)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    adapter = get_adapter(model)
    vision = adapter.vision_tower(model)
    blocks = [m for m in model.modules() if type(m).__name__ in set(model._no_split_modules)]
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    params = list(model.parameters())
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    vcfg = config.vision_config
    return Architecture(
        params=sum(p.numel() for p in params),
        vision_params=sum(p.numel() for p in vision.parameters()),
        root_params=sum(p.numel() for p in params if id(p) not in in_blocks),
        largest_block=max(sum(p.numel() for p in b.parameters()) for b in blocks),
        vision_block_params=sum(
            p.numel() for b in blocks if any(b is m for m in vision.modules()) for p in b.parameters()
        ),
        root_trainable=_root_trainable(model, model_cfg, vision, in_blocks),
        hidden=text.hidden_size,
        intermediate=text.intermediate_size,
        layers=text.num_hidden_layers,
        kv_heads=text.num_key_value_heads,
        head_dim=head_dim,
        vocab=text.vocab_size,
        vision_hidden=vcfg.hidden_size,
        vision_depth=vcfg.depth,
        geometry=adapter.geometry,
        trainable=_trainable(model, model_cfg, vision),
    )


def _trainable(model: Any, cfg: ModelConfig, vision: Any) -> int:
    """Trained parameters under ``freeze_vision`` / LoRA, as ``load_model_and_processor`` sets them up."""
    total = sum(p.numel() for p in model.parameters())
    vision_total = sum(p.numel() for p in vision.parameters())
    if not cfg.lora.enabled:
        return total - vision_total if cfg.freeze_vision else total
    from videor1.models.loading import lora_target_modules

    modules = dict(model.named_modules())
    adapters = sum(
        cfg.lora.r * (modules[name].in_features + modules[name].out_features)
        for name in lora_target_modules(model, cfg)
    )
    full_vision = not cfg.lora.vision and not cfg.freeze_vision
    return adapters + (vision_total if full_vision else 0)


def _root_trainable(model: Any, cfg: ModelConfig, vision: Any, in_blocks: set[int]) -> int:
    """Trained parameters outside every FSDP2 block: all of them, less the ViT stem and merger under
    ``freeze_vision``; under LoRA (adapters sit in the blocks) only the ViT's when it trains in full."""
    root = sum(p.numel() for p in model.parameters() if id(p) not in in_blocks)
    root_vision = sum(p.numel() for p in vision.parameters() if id(p) not in in_blocks)
    if not cfg.lora.enabled:
        return root - root_vision if cfg.freeze_vision else root
    return root_vision if not cfg.lora.vision and not cfg.freeze_vision else 0


@dataclass(frozen=True)
class Row:
    phase: str  # "resident", "rollout", "update"; "host" for host RAM (host_plan, not in the GPU peak)
    name: str
    bytes: int
    how: str  # the formula with its numbers


def visual_tokens(cfg: Config, arch: Architecture) -> int:
    """Visual tokens of the largest video the media budgets allow."""
    from videor1.data.frames import video_frame_max_pixels

    m, tp = cfg.data.media, arch.geometry.temporal_patch_size
    frames = m.nframes or m.max_frames
    frames -= frames % tp
    frame_pixels = video_frame_max_pixels(
        m.video_min_pixels, m.video_max_pixels, m.video_total_pixels, frames, geometry=arch.geometry
    )
    per_patch = int(frame_pixels // arch.geometry.pixel_factor**2)
    return frames // tp * per_patch


def memory_plan(
    cfg: Config,
    arch: Architecture,
    *,
    world_size: int,
    gpu_memory_gb: float,
    prompt_text_tokens: int = 256,
    rl: bool = True,
    target_tokens: int = 512,
) -> list[Row]:
    """The plan's rows (module docstring), one per memory item, for ``world_size`` GPUs.

    ``rl=False`` plans SFT: no reference model and no rollout; each row is one question with a
    ``target_tokens`` answer, the only positions whose logits are computed.
    """
    t, r = cfg.train, cfg.rl
    fsdp = t.distributed == "fsdp2" and world_size > 1
    shard = world_size if fsdp else 1
    compute = 2 if t.precision == "bf16" else 4
    stored = {"float32": 4, "bfloat16": 2, "float16": 2}.get(cfg.model.dtype, 2)
    where = f"/ {shard}" if fsdp else "(not sharded)"
    P, T = arch.params, arch.trainable
    rows = [
        Row("resident", "fp32 master weights", 4 * P // shard, f"4 B x {P:,} {where}"),
        Row("resident", "fp32 gradients", 4 * T // shard, f"4 B x {T:,} trained {where}"),
        Row("resident", "AdamW moments (fp32)", 8 * T // shard, f"2 x 4 B x {T:,} {where}"),
    ]
    frames = cfg.data.media.nframes or cfg.data.media.max_frames
    prompt = visual_tokens(cfg, arch) + prompt_text_tokens
    new = r.sampling.max_new_tokens if rl else target_tokens
    rows_policy = t.per_device_batch_size * (r.num_generations if rl else 1)
    length = prompt + new
    if rl:
        if r.beta > 0:
            rows.append(
                Row(
                    "resident",
                    f"reference model ({cfg.model.dtype})",
                    stored * P // shard,
                    f"{stored} B x {P:,} {where}",
                )
            )
        groups = r.num_generations + (r.num_shuffled if r.temporal else 0)
        rollout_rows = t.per_device_batch_size * groups
        if r.engine == "vllm":
            share = int(r.vllm_gpu_memory_utilization * gpu_memory_gb * GB)
            rows.append(
                Row(
                    "rollout",
                    "vLLM engine (weights + KV cache; asleep in the update)",
                    share,
                    f"{r.vllm_gpu_memory_utilization} x {gpu_memory_gb:g} GB",
                )
            )
            gathered = arch.root_params + arch.vision_block_params if fsdp else arch.vision_params
            rows.append(
                Row(
                    "rollout",
                    "policy weights for the encodings",
                    compute * gathered if (fsdp or compute == 2) else 0,
                    (
                        f"{compute} B x ({arch.root_params:,} root + {arch.vision_block_params:,} ViT blocks)"
                        if fsdp
                        else f"{compute} B x {arch.vision_params:,} (ViT)"
                        if compute == 2
                        else "the weights themselves"
                    ),
                )
            )
        else:
            extra = compute * P if (fsdp or compute == 2) else 0
            rows.append(
                Row(
                    "rollout",
                    "full weights for generation",
                    extra,
                    f"{compute} B x {P:,}" if extra else "the weights themselves",
                )
            )
            kv = rollout_rows * length * arch.layers * 2 * arch.kv_heads * arch.head_dim * compute
            rows.append(
                Row(
                    "rollout",
                    "KV cache",
                    kv,
                    f"{rollout_rows} rows x ({prompt} + {new}) tokens x {arch.layers} layers x 2 x {arch.kv_heads} x "
                    f"{arch.head_dim} x {compute} B",
                )
            )
    if fsdp:
        gathered = compute * (arch.root_params + 2 * arch.largest_block)
        rows.append(
            Row(
                "update",
                "gathered shards (root + 2 blocks)",
                gathered,
                f"{compute} B x ({arch.root_params:,} + 2 x {arch.largest_block:,})",
            )
        )
        rows.append(
            Row(
                "update",
                "root group's gradients (unsharded)",
                compute * arch.root_trainable,
                f"{compute} B x {arch.root_trainable:,} trained",
            )
        )
        rows.append(
            Row(
                "update",
                "root reduce-scatter buffer (fp32)",
                4 * arch.root_trainable,
                f"4 B x {arch.root_trainable:,} trained",
            )
        )
    per_layer = (6 * arch.hidden + 2 * arch.kv_heads * arch.head_dim + 4 * arch.intermediate) * compute
    if cfg.model.gradient_checkpointing:
        boundary = rows_policy * length * arch.hidden * compute * arch.layers
        rows.append(
            Row(
                "update",
                "checkpointed layer inputs",
                boundary,
                f"{rows_policy} rows x {length} x {arch.hidden} x {compute} B x {arch.layers} layers",
            )
        )
        rows.append(
            Row(
                "update",
                "one layer recomputed",
                rows_policy * length * per_layer,
                f"{rows_policy} x {length} x {per_layer:,} B",
            )
        )
    else:
        rows.append(
            Row(
                "update",
                "activations, every layer",
                rows_policy * length * per_layer * arch.layers,
                f"{rows_policy} x {length} x {per_layer:,} B x {arch.layers}",
            )
        )
    if rl:
        from videor1.algorithms.losses import HEAD_CHUNK_TOKENS

        chunk = min(HEAD_CHUNK_TOKENS, rows_policy * new)
        rows.append(
            Row(
                "update",
                "LM head, one chunk",
                chunk * arch.vocab * LOGIT_CHUNK_BYTES,
                f"{chunk} tokens x {arch.vocab:,} x {LOGIT_CHUNK_BYTES} B",
            )
        )
    else:
        rows.append(
            Row(
                "update",
                "logits",
                rows_policy * new * arch.vocab * 10,
                f"{rows_policy} x {new} target positions x {arch.vocab:,} x 10 B",
            )
        )
    g = arch.geometry
    frame_pixels = (visual_tokens(cfg, arch) // max(frames // g.temporal_patch_size, 1)) * g.pixel_factor**2
    patches = t.per_device_batch_size * frames * frame_pixels // g.patch_size**2
    vit_layers = arch.vision_depth if cfg.model.gradient_checkpointing else 4 * arch.vision_depth
    rows.append(
        Row(
            "update",
            "ViT activations",
            patches * arch.vision_hidden * compute * vit_layers,
            f"{patches:,} patches x {arch.vision_hidden} x {compute} B x {vit_layers}",
        )
    )
    waiting = t.gradient_accumulation_steps - 1
    if rl and waiting:
        rows.append(
            Row(
                "update",
                "the step's other micro-batches (pixel values, fp32)",
                waiting * patches * g.patch_size**2 * 3 * 4,
                f"{waiting} x {patches:,} patches x {g.patch_size**2 * 3} x 4 B, held until their update",
            )
        )
    if fsdp and waiting:
        rows.append(
            Row(
                "update",
                "reduce-scatter output beside the accumulated shard",
                4 * arch.root_trainable // shard,
                f"4 B x {arch.root_trainable:,} / {shard} (the root group's, the largest)",
            )
        )
    return rows


def peak(rows: list[Row]) -> int:
    """GPU bytes: resident plus the larger of the rollout and update phases (``host`` rows are host RAM)."""
    phase = {p: sum(r.bytes for r in rows if r.phase == p) for p in ("resident", "rollout", "update")}
    return phase["resident"] + max(phase["rollout"], phase["update"])


def gib(n: int) -> float:
    return n / GIB


def host_plan(cfg: Config, arch: Architecture, *, gpus_per_node: int, rl: bool = True) -> list[Row]:
    """Host RAM per node (module docstring): rank 0's load, and the sleeping vLLM engines' weights."""
    P = arch.params
    stored = {"float32": 4, "bfloat16": 2, "float16": 2}.get(cfg.model.dtype, 2)
    load = 4 * P
    how = f"4 B x {P:,} (fp32 policy; the reference, {stored} B each, is read after it)"
    rows = [Row("host", "rank 0 reads the checkpoint", load, how)]
    if rl and cfg.rl.engine == "vllm":
        rows.append(
            Row(
                "host",
                "sleeping vLLM engines' weights",
                2 * P * gpus_per_node,
                f"2 B x {P:,} x {gpus_per_node} GPUs",
            )
        )
    return rows


def host_peak(rows: list[Row]) -> int:
    """Loading comes before training: the larger of the two."""
    return max((r.bytes for r in rows), default=0)
