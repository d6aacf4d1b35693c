"""``videor1 rl``: GRPO / T-GRPO training (``videor1.train.rl``)."""

from __future__ import annotations

import argparse

from videor1.commands.sft import add_training_arguments, stopped_by_signal, training_overrides

HELP = "reinforcement learning with GRPO or T-GRPO (temporal contrast on shuffled frames)"
DESCRIPTION = """Train a policy with GRPO or T-GRPO (Video-R1, https://arxiv.org/abs/2503.21776) from a YAML config.

Each step rolls out G completions per question (and G/2 on shuffled frames for videos when
rl.temporal is true), scores them, computes group advantages and updates the policy. The run
directory (train.output_dir) gets config.yaml, metrics.jsonl and checkpoints/step-*.

  videor1 rl --config configs/tiny/tgrpo.yaml                 # CPU, tiny model, procedural data
  videor1 rl --config configs/tiny/tgrpo.yaml --resume auto   # continue from the newest checkpoint
  torchrun --nproc_per_node 8 -m videor1.cli rl --config configs/qwen2_5_vl_7b/tgrpo.yaml \\
      rl.temporal_form=advantage rl.shuffle_unit=temporal_patch

One run at a time writes into train.output_dir (a second one is refused, naming the first). A resume
refuses settings that change the run unless --allow-changed names them; Ctrl-C or SIGTERM stops the
run and names the checkpoint --resume auto continues from.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, example="rl.num_generations=4")


def run(args: argparse.Namespace) -> int:
    from videor1.config import load_config
    from videor1.train.rl import train

    cfg = load_config(args.config, training_overrides(args))
    with stopped_by_signal(cfg.train.output_dir, "rl") as stop:
        final = train(cfg, resume=args.resume, stop_at_step=args.stop_at_step)
    if stop.status:
        return stop.status
    print(f"final checkpoint: {final}")  # noqa: T201 - CLI output
    return 0
