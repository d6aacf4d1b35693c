"""``videor1 demo``: the whole pipeline on CPU with a tiny model (see ``videor1.demo.pipeline``)."""

from __future__ import annotations

import argparse

HELP = "run the whole pipeline on CPU: data -> tiny model -> SFT -> GRPO / T-GRPO -> eval -> report"
DESCRIPTION = """Train a tiny video reasoner on CPU and test T-GRPO against GRPO where frame order matters.

Generates a procedural temporal dataset (two image families, two order-dependent video families and
the shortcut-control family quarter_shortcut, whose training items give the answer away by colour
about 85% of the time and whose held-out items do not), builds a random-init tiny Qwen3-VL model,
runs answer-only SFT, then GRPO, T-GRPO with the paper's rule (bonus in the reward), T-GRPO with
the bonus in the advantage, T-GRPO with a stricter firing rule (ordered accuracy at least
shuffled + rl.margin) and the control T-GRPO with alpha = 0 (shuffled rollouts, no bonus), each
from the same SFT checkpoint with the same budget, and evaluates every
stage on held-out items with ordered and with shuffled frames. Writes <out>/report.md,
report.json and plots. A rerun resumes finished stages; --seeds adds RL seeds to a finished run.
Each stage's settings are recorded in <out>/demo_settings.json: a rerun whose settings would change
a stage it reuses (data size, families, seed, model, SFT or RL settings ...) is refused with the list
of changed keys; use another --out, or --fresh to start over.

The settings are YAML (configs/demo/full.yaml, quick.yaml; shipped inside the package too), loaded
strictly: a typo in a key is an error naming it.

  videor1 demo                          # full size (configs/demo/full.yaml), about 9 minutes on 2 cores
  videor1 demo --seeds 3                # RL variants on 3 seeds from the same SFT checkpoint (+12 min)
  videor1 demo --quick                  # toy size, well under a minute (what the tests run)
  videor1 demo --config my.yaml --out runs/demo2 --fresh
  videor1 demo sft.steps=600 rl.steps=40                # dotted overrides of the settings
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    parser.add_argument(
        "--config",
        default=None,
        metavar="full|quick|PATH",
        help="settings: a preset name or a YAML file (default: full; see configs/demo/)",
    )
    parser.add_argument("--quick", action="store_true", help="the quick preset (same as --config quick)")
    parser.add_argument(
        "--seeds", type=int, default=None, metavar="N", help="RL seeds per variant (overrides rl.seeds)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete --out first (only a demo's own output) instead of resuming",
    )
    parser.add_argument("overrides", nargs="*", help="dotted overrides of the settings, e.g. sft.steps=600")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from videor1.config import ConfigError
    from videor1.demo.pipeline import run_demo
    from videor1.demo.report import rl_rows
    from videor1.demo.settings import load_demo_settings

    if args.quick and args.config not in (None, "quick"):
        raise ConfigError(f"--quick and --config {args.config} disagree: give one of them")
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    settings = load_demo_settings("quick" if args.quick else (args.config or "full"), args.overrides)
    results = run_demo(args.out, settings=settings, fresh=args.fresh, seeds=args.seeds)
    console = Console()
    table = Table(title=f"held-out accuracy (%), {results['held_out_items']} items — {args.out}/report.md")
    for col in ("stage", "ordered frames", "shuffled frames", "ordered - shuffled", "chance"):
        table.add_column(col, justify="right")
    for row in results["_headline"]:
        table.add_row(*row)
    console.print(table)
    header, rows = rl_rows(results)
    seeds_table = Table(title="RL variants over seeds (held-out %, mean ± std)")
    for col in header:
        seeds_table.add_column(col, justify="right")
    for row in rows:
        seeds_table.add_row(*row)
    console.print(seeds_table)
    return 0
