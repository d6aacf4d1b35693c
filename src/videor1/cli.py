"""The ``videor1`` command line: one entry point, subcommands registered in ``COMMANDS``.

Each subcommand lives in ``videor1/commands/<name>.py`` and exposes ``HELP`` (one line),
``DESCRIPTION`` (the text ``videor1 <name> --help`` shows), ``configure(parser)`` and
``run(args) -> int``. Command modules import heavy libraries (torch, transformers) inside ``run`` so
that ``videor1 --help`` stays instant.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Sequence

from videor1 import __version__
from videor1.utils.logging import get_logger, quiet_third_party, set_quiet, setup_logging

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
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="hide progress bars (also transformers' and datasets')"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error instead of one message"
    )
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
        quiet_third_party()
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM takes the Ctrl-C path
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt as e:
        log.error("%s", interruption(e))
        return exit_status(e)
    except Exception as e:
        kind = user_error_kind(e)
        if kind is None or args.debug:
            raise
        log.error("%s: %s", kind, e)
        log.info("(run with --debug for the traceback)")
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        # Free what the command built now, not during interpreter shutdown: an FSDP2 model's device
        # meshes keep the gloo process group alive past destroy_process_group, and that group's
        # threads torn down at shutdown abort the process (seen in 1 of 4-8 two-process runs).
        gc.collect()


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's preemption, ``kill``, torchrun stopping its workers), raised like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def interruption(error: KeyboardInterrupt) -> str:
    """``"terminated (SIGTERM)"`` or ``"interrupted"``: how a command's stop line starts."""
    return "terminated (SIGTERM)" if isinstance(error, Terminated) else "interrupted"


def exit_status(error: KeyboardInterrupt) -> int:
    """128 + the signal number, as a shell reports it: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + (signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT)


# (module, class name, what the one-line message calls it): errors a user causes and can fix. Looked up
# only in modules already imported, so the CLI never imports torch just to classify an error.
USER_ERRORS: tuple[tuple[str, str, str], ...] = (
    ("videor1.config", "ConfigError", "config error"),
    ("videor1.data.records", "RecordError", "record error"),
    ("videor1.data.media", "MediaError", "media error"),
    ("videor1.models.loading", "ModelNotFoundError", "model error"),
    ("videor1.train.checkpoint", "CheckpointError", "checkpoint error"),
    ("videor1.train.guards", "NonFiniteError", "training diverged"),
    ("videor1.eval.runner", "EvalResumeError", "eval error"),
    ("videor1.utils.rundir", "MetricsError", "run directory error"),
    ("videor1.utils.runlock", "RunLockError", "run directory in use"),
)


def user_error_kind(error: BaseException) -> str | None:
    """What to call ``error`` in a one-line message, or None when it is a bug (shown with its traceback)."""
    for module_name, class_name, kind in USER_ERRORS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is not None and isinstance(error, cls):
            return kind
    if isinstance(error, OSError):
        return "OS error"
    return None


if __name__ == "__main__":
    sys.exit(main())
