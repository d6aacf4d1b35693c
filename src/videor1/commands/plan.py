"""``videor1 plan``: per-GPU memory of a training config, on paper (``videor1.plan``)."""

from __future__ import annotations

import argparse

HELP = (
    "per-GPU memory plan of a training config (parameters, gradients, Adam, reference, activations, KV cache)"
)
DESCRIPTION = """Estimate per-GPU memory of an SFT or RL config before renting the GPUs.

Reads the model's shapes from model.path/config.json (or, for the public checkpoints the shipped
configs name, their published config), counts parameters exactly on PyTorch's meta device, and
derives every item from the config: fp32 master weights, gradients and AdamW moments (sharded by
FSDP2), the reference model, the rollout phase (full weights for generation and the KV cache, or
vLLM's share) and the update phase (gathered shards, checkpointed activations, completion logits,
ViT). The peak is the resident memory plus the larger phase. Sizes are GiB (2**30 B); GPU memory is
given in vendor GB (10**9 B: "80 GB" = 74.5 GiB). Host RAM per node is printed below the table.

  videor1 plan --config configs/qwen2_5_vl_7b/tgrpo.yaml --gpus 8 --gpu-memory-gb 80
  videor1 plan --config configs/qwen2_5_vl_7b/tgrpo.yaml --gpus 4 train.per_device_batch_size=2
  videor1 plan --config configs/qwen2_5_vl_7b/sft.yaml --gpus 8
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file (SFT or RL)")
    parser.add_argument("--gpus", type=int, default=8, help="processes, one per GPU (default 8)")
    parser.add_argument(
        "--gpu-memory-gb",
        type=float,
        default=80.0,
        help="memory of one GPU in GB as sold, 10**9 B (default 80 = 74.5 GiB)",
    )
    parser.add_argument(
        "--gpus-per-node", type=int, default=None, help="GPUs in one machine (default: min(--gpus, 8))"
    )
    parser.add_argument(
        "--prompt-text-tokens",
        type=int,
        default=256,
        help="text tokens of a prompt besides the visual ones (default 256)",
    )
    parser.add_argument(
        "--recipe",
        choices=("auto", "sft", "rl"),
        default="auto",
        help="auto: rl when the file name has grpo in it",
    )
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.per_device_batch_size=2")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from videor1.config import ConfigError, load_config
    from videor1.plan import GB, architecture, gib, host_peak, host_plan, memory_plan, peak

    per_node = min(args.gpus, 8) if args.gpus_per_node is None else args.gpus_per_node
    if args.gpus < 1 or args.gpu_memory_gb <= 0 or args.prompt_text_tokens < 0 or per_node < 1:
        raise ConfigError(
            "--gpus and --gpus-per-node must be >= 1, --gpu-memory-gb > 0 and --prompt-text-tokens >= 0"
        )
    cfg = load_config(args.config, args.overrides)
    rl = "grpo" in Path(args.config).name if args.recipe == "auto" else args.recipe == "rl"
    arch = architecture(cfg.model)
    rows = memory_plan(
        cfg,
        arch,
        world_size=args.gpus,
        gpu_memory_gb=args.gpu_memory_gb,
        prompt_text_tokens=args.prompt_text_tokens,
        rl=rl,
    )
    capacity = gib(int(args.gpu_memory_gb * GB))
    title = (
        f"{args.config}: {arch.params / 1e9:.2f}B parameters ({arch.trainable / 1e9:.2f}B trained), "
        f"{args.gpus} x {args.gpu_memory_gb:g} GB ({capacity:.1f} GiB), {cfg.train.distributed}, "
        f"{cfg.train.precision}"
    )
    table = Table(title=title)
    for col, justify in (("phase", "left"), ("item", "left"), ("GiB", "right"), ("how", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for row in rows:
        table.add_row(row.phase, row.name, f"{gib(row.bytes):.2f}", row.how)
    total = peak(rows)
    verdict = "fits" if gib(total) <= capacity else "does NOT fit"
    table.add_row(
        "peak",
        "resident + larger phase",
        f"{gib(total):.2f}",
        f"{verdict} in {capacity:.1f} GiB ({args.gpu_memory_gb:g} GB)",
    )
    console = Console(width=160)
    console.print(table)
    host = host_plan(cfg, arch, gpus_per_node=per_node, rl=rl)
    for row in host:
        console.print(f"host RAM, {row.name}: {gib(row.bytes):.1f} GiB ({row.bytes / GB:.1f} GB) = {row.how}")
    most = host_peak(host)
    console.print(
        f"host RAM per node ({per_node} GPUs), peak: {gib(most):.1f} GiB ({most / GB:.1f} GB), "
        "besides the OS, dataloaders and media decoding"
    )
    return 0
