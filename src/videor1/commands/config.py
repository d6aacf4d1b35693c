"""``videor1 config``: show, check and explain configuration files."""

from __future__ import annotations

import argparse

HELP = "check a YAML config, show it resolved, or explain every key"
DESCRIPTION = """Check a YAML config (with dotted overrides) and print the resolved result.

  videor1 config --config configs/tiny/tgrpo.yaml rl.num_generations=4
  videor1 config --explain            # every key, its type, default and meaning
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file to load")
    parser.add_argument(
        "--explain", action="store_true", help="list every key with its type, default and doc"
    )
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.lr=1e-5")


def explain_table():
    """Every key with its type, default and meaning; keys are never broken across lines."""
    from rich.table import Table

    from videor1.config import Config, explain

    table = Table(title="videor1 configuration keys")
    table.add_column("key", no_wrap=True)
    table.add_column("type", overflow="fold", max_width=18)
    table.add_column("default", overflow="fold", max_width=14)
    table.add_column("meaning", overflow="fold", ratio=1)
    for key, tp, default, doc in explain(Config):
        table.add_row(key, tp, repr(default), doc)
    return table


def run(args: argparse.Namespace) -> int:
    import yaml
    from rich.console import Console

    from videor1.config import load_config, to_dict

    if args.explain:
        Console().print(explain_table())
        return 0
    cfg = load_config(args.config, args.overrides)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")  # noqa: T201 - CLI output
    return 0
