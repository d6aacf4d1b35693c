"""Logging and progress conventions used by every command.

Library code logs through :func:`get_logger` (a ``logging`` logger with a rich handler) and shows
long loops with :func:`progress`. Progress bars are hidden when ``CI=true`` or when
:func:`set_quiet` was called (the CLI's ``--quiet``), so CI logs stay readable.
"""

from __future__ import annotations

import logging
import os
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


def is_quiet() -> bool:
    return _state["quiet"] or os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def setup_logging(level: int | str = logging.INFO) -> None:
    """Install the rich handler on the ``videor1`` logger once (idempotent)."""
    logger = logging.getLogger("videor1")
    logger.setLevel(level)
    if not _state["configured"]:
        handler = RichHandler(console=_console, show_path=False, rich_tracebacks=True, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
        logger.addHandler(handler)
        logger.propagate = False
        _state["configured"] = True


def get_logger(name: str) -> logging.Logger:
    """Logger under the ``videor1`` namespace, e.g. ``get_logger(__name__)``."""
    return logging.getLogger(name if name.startswith("videor1") else f"videor1.{name}")


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
