"""The ``videor1`` command line: one entry point, subcommands registered in ``COMMANDS``.

Each subcommand lives in ``videor1/commands/<name>.py`` and exposes ``HELP`` (one line),
``DESCRIPTION`` (the text ``videor1 <name> --help`` shows), ``configure(parser)`` and
``run(args) -> int``. Command modules import heavy libraries (torch, transformers) inside ``run`` so
that ``videor1 --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

from videor1 import __version__
from videor1.utils.logging import get_logger, set_quiet, setup_logging

# name -> module; the order here is the order --help lists them (pipeline order).
COMMANDS: dict[str, str] = {
    "demo": "videor1.commands.demo",
    "data": "videor1.commands.data",
    "model": "videor1.commands.model",
    "annotate": "videor1.commands.annotate",
    "sft": "videor1.commands.sft",
    "rl": "videor1.commands.rl",
    "eval": "videor1.commands.eval",
    "infer": "videor1.commands.infer",
    "plan": "videor1.commands.plan",
    "config": "videor1.commands.config",
    "env": "videor1.commands.env",
}

log = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videor1",
        description=(
            "Train multimodal LLMs to reason about video over time (Video-R1: SFT cold start + T-GRPO).\n"
            "Pipeline: data synth/validate -> annotate -> sft -> rl -> eval. "
            "`videor1 demo` runs all of it on CPU with a tiny model."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"videor1 {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="hide progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if importlib.util.find_spec(module_name) is None:
            p = sub.add_parser(name, help="(not yet available in this version)")
            p.set_defaults(_run=_not_available(name))
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def _not_available(name: str):
    def run(args: argparse.Namespace) -> int:
        log.error("`videor1 %s` is not yet available in this version", name)
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    if args.quiet:
        set_quiet(True)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from videor1.config import ConfigError

    try:
        return int(args._run(args) or 0)
    except ConfigError as e:
        log.error("config error: %s", e)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
