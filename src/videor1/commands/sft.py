"""``videor1 sft``: supervised cold start on CoT records (see ``videor1.train.sft``)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

HELP = "supervised fine-tuning on CoT records (loss on the answer only), single process or torchrun"
DESCRIPTION = """Supervised cold start on Video-R1 CoT records (target = process + newline + solution).

The loss covers the assistant's tokens only. The same command runs in one process and under torchrun;
checkpoints land in <train.output_dir>/checkpoints/step-N (HF format, loadable by transformers).

  videor1 sft --config configs/tiny/sft.yaml                      # CPU, builds its own model + data
  videor1 sft --config configs/tiny/sft.yaml train.max_steps=8 train.lr=1e-4
  videor1 sft --config configs/tiny/sft.yaml --resume auto        # continue from the newest checkpoint
  torchrun --nproc_per_node 8 -m videor1.cli sft --config configs/qwen2_5_vl_7b/sft.yaml

One run at a time writes into train.output_dir (a second one is refused, naming the first). A resume
refuses settings that change the run unless --allow-changed names them; Ctrl-C or SIGTERM stops the
run and names the checkpoint --resume auto continues from.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, example="train.lr=1e-5 train.max_steps=10")


def add_training_arguments(parser: argparse.ArgumentParser, *, example: str) -> None:
    """The arguments of a training command (shared with ``videor1 rl``)."""
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
        "--allow-changed",
        metavar="KEY,...",
        help="resume although these settings (keys or sections, e.g. train.seed,rl.sampling) differ "
        "from the checkpoint's run; logged and recorded (train.allow_changed)",
    )
    parser.add_argument("overrides", nargs="*", help=f"dotted overrides, e.g. {example}")


def training_overrides(args: argparse.Namespace) -> list[str]:
    """The dotted overrides, with ``--allow-changed`` as ``train.allow_changed``."""
    from videor1.config import ConfigError

    overrides = list(args.overrides)
    if args.allow_changed is None:
        return overrides
    if any(o.split("=", 1)[0].strip() == "train.allow_changed" for o in overrides):
        raise ConfigError(
            "train.allow_changed is given twice: as --allow-changed and as train.allow_changed=..."
        )
    keys = [k.strip() for k in args.allow_changed.split(",") if k.strip()]
    return [*overrides, f"train.allow_changed={json.dumps(keys)}"]


def run(args: argparse.Namespace) -> int:
    from videor1.config import load_config
    from videor1.train.sft import train

    cfg = load_config(args.config, training_overrides(args))
    with stopped_by_signal(cfg.train.output_dir, "sft") as stop:
        last = train(cfg, resume=args.resume, stop_at_step=args.stop_at_step)
    if stop.status:
        return stop.status
    if int(os.environ.get("RANK", "0")) == 0:
        print(last)  # noqa: T201 - CLI output: the last checkpoint directory
    return 0


class Stop:
    """Exit status of a training run stopped by Ctrl-C or SIGTERM (0 while it was not)."""

    status = 0


@contextmanager
def stopped_by_signal(output_dir: str, recipe: str) -> Iterator[Stop]:
    """Hold the run directory's lock (``videor1.utils.runlock``) for the run's life; on Ctrl-C or SIGTERM
    say in one line which checkpoint ``--resume auto`` continues from, and set the exit status
    (shared with ``videor1 rl``)."""
    from videor1.cli import exit_status, interruption
    from videor1.train.checkpoint import latest_checkpoint
    from videor1.utils.logging import get_logger
    from videor1.utils.runlock import run_lock

    stop = Stop()
    try:
        with run_lock(output_dir, f"videor1 {recipe}"):
            yield stop
    except KeyboardInterrupt as e:
        stop.status = exit_status(e)
        if int(os.environ.get("RANK", "0")) != 0:
            return
        last = latest_checkpoint(output_dir)
        where = (
            f"the last checkpoint is {last}; `videor1 {recipe} --resume auto` (same config) continues from it"
            if last is not None
            else f"no checkpoint in {output_dir} yet; a rerun starts from step 0"
        )
        get_logger(__name__).error("%s: %s", interruption(e), where)
