"""``videor1 demo``: the whole pipeline on CPU with a tiny model (see ``videor1.demo.pipeline``)."""

from __future__ import annotations

import argparse

HELP = "run the whole pipeline on CPU: data -> tiny model -> SFT -> GRPO / T-GRPO -> eval -> report"
DESCRIPTION = """Train a tiny video reasoner on CPU and show what T-GRPO does.

Generates a procedural temporal dataset, builds a random-init tiny Qwen2.5-VL model, runs SFT on the
templated CoT traces (the image records first, then all), then GRPO and T-GRPO from the same SFT
checkpoint with the same budget, and evaluates base / SFT / GRPO / T-GRPO on held-out items with
ordered and with shuffled frames.
Writes <out>/report.md, report.json and plots. A rerun resumes finished stages.

  videor1 demo                     # full size, about 8 minutes on 2 cores
  videor1 demo --quick             # toy size, under a minute (what the tests run)
  videor1 demo --out runs/demo2 --fresh
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    parser.add_argument("--quick", action="store_true", help="toy sizes: the same path in under a minute")
    parser.add_argument("--fresh", action="store_true", help="delete --out first instead of resuming")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from videor1.demo.pipeline import run_demo

    results = run_demo(args.out, quick=args.quick, fresh=args.fresh)
    table = Table(title=f"held-out accuracy (%), {results['held_out_items']} items — {args.out}/report.md")
    for col in ("stage", "ordered frames", "shuffled frames", "ordered - shuffled", "chance"):
        table.add_column(col, justify="right")
    for row in results["_headline"]:
        table.add_row(*row)
    Console().print(table)
    return 0
