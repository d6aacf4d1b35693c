"""Logging and progress conventions used by every command.

Library code logs through :func:`get_logger` (a ``logging`` logger with a rich handler) and shows
long loops with :func:`progress`. Progress bars are hidden when ``CI=true`` or when
:func:`set_quiet` was called (the CLI's ``--quiet``), so CI logs stay readable.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

_console = Console(stderr=True)
_state = {"quiet": False, "configured": False}


def console() -> Console:
    """The shared stderr console (logs and progress bars go there; results go to stdout)."""
    return _console


def set_quiet(quiet: bool = True) -> None:
    """Hide progress bars (logs at INFO and above still show)."""
    _state["quiet"] = quiet


def quiet_third_party() -> None:
    """Silence transformers', huggingface_hub's and datasets' progress bars and advisory logs (``-q``).

    The environment variables cover libraries imported later; the calls cover those already loaded.
    """
    import sys

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers reads it at import for its own bars
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()


def is_quiet() -> bool:
    return _state["quiet"] or os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class _StderrHandler(logging.StreamHandler):
    """Plain lines on whatever ``sys.stderr`` is at the time (log files are never wrapped mid-path)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401 - the current stderr
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


def setup_logging(level: int | str = logging.INFO) -> None:
    """Install the handler on the ``videor1`` logger once (idempotent).

    A terminal gets rich's handler; anything else (a cluster job's log file, a pipe, CI) gets plain
    ``time level message`` lines that are never wrapped, so paths and keys stay greppable.
    """
    logger = logging.getLogger("videor1")
    logger.setLevel(level)
    if not _state["configured"]:
        if _console.is_terminal:
            handler = RichHandler(console=_console, show_path=False, rich_tracebacks=True, markup=False)
            handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
        else:
            handler = _StderrHandler()
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
            )
        logger.addHandler(handler)
        logger.propagate = False
        _state["configured"] = True


def get_logger(name: str) -> logging.Logger:
    """Logger under the ``videor1`` namespace, e.g. ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith("videor1") else f"videor1.{name}")


def bars_visible() -> bool:
    """Whether progress bars are drawn: a terminal on stderr and neither ``-q`` nor CI."""
    return _console.is_terminal and not is_quiet()


class StepLog:
    """One log line per logged optimiser step when no progress bar is drawn (a cluster job's log file).

    ``step_log(step, loss=0.61)`` logs ``sft step 12/400  loss 0.61  1.84 s/step  eta 11:54``; the
    seconds per step average the steps run in this process (a resumed run starts counting afresh).
    """

    def __init__(self, name: str, total: int, start: int = 0) -> None:
        self.name, self.total, self.start = name, total, start
        self.began = time.perf_counter()
        self.log = get_logger(f"videor1.{name}")

    def __call__(self, step: int, **values: float) -> None:
        if bars_visible():
            return
        per_step = (time.perf_counter() - self.began) / max(1, step - self.start)
        eta = int(per_step * (self.total - step))
        shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.log.info(
            "%s step %d/%d  %s  %.2f s/step  eta %d:%02d:%02d",
            self.name,
            step,
            self.total,
            shown,
            per_step,
            eta // 3600,
            eta // 60 % 60,
            eta % 60,
        )


def make_progress(transient: bool = False) -> Progress:
    """A rich Progress with count, percentage, elapsed time and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=_console,
        transient=transient,
        disable=is_quiet(),
    )


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress bar (ETA included); silent when quiet or under CI."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
