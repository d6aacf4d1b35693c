"""``videor1 sft``: supervised cold start on CoT records (see ``videor1.train.sft``)."""

from __future__ import annotations

import argparse
import os

HELP = "supervised fine-tuning on CoT records (loss on the answer only), single process or torchrun"
DESCRIPTION = """Supervised cold start on Video-R1 CoT records (target = process + newline + solution).

The loss covers the assistant's tokens only. The same command runs in one process and under torchrun;
checkpoints land in <train.output_dir>/checkpoints/step-N (HF format, loadable by transformers).

  videor1 sft --config configs/tiny/sft.yaml                      # CPU, builds its own model + data
  videor1 sft --config configs/tiny/sft.yaml train.max_steps=8 train.lr=1e-4
  videor1 sft --config configs/tiny/sft.yaml --resume auto        # continue from the newest checkpoint
  torchrun --nproc_per_node 8 -m videor1.cli sft --config configs/qwen2_5_vl_7b/sft.yaml
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML file (see configs/)")
    parser.add_argument(
        "--resume",
        metavar="auto|PATH",
        help="continue from a checkpoint directory, or `auto` for the newest one of the run (if any)",
    )
    parser.add_argument(
        "--stop-at-step",
        type=int,
        metavar="N",
        help="save and stop after step N while keeping the full run's LR schedule (resume later)",
    )
    parser.add_argument(
        "overrides", nargs="*", help="dotted overrides, e.g. train.lr=1e-5 train.max_steps=10"
    )


def run(args: argparse.Namespace) -> int:
    from videor1.config import load_config
    from videor1.train.sft import train

    cfg = load_config(args.config, args.overrides)
    last = train(cfg, resume=args.resume, stop_at_step=args.stop_at_step)
    if int(os.environ.get("RANK", "0")) == 0:
        print(last)  # noqa: T201 - CLI output: the last checkpoint directory
    return 0
