"""Run directories: every training or evaluation run writes ``config.yaml`` and ``metrics.jsonl``.

``MetricsWriter`` appends one JSON object per line and flushes after each write, so a killed run
keeps every line it logged. A NaN or infinite metric is written as ``NaN`` / ``Infinity`` /
``-Infinity`` (not ``null``, which would hide a diverged run): Python's ``json.loads`` reads them
back as floats, as do :func:`read_metrics` and ``pandas.read_json(path, lines=True)``; strict JSON
parsers may reject them.

A kill can leave a torn last line (no newline, or half an object); resuming drops it with a warning.
A bad line anywhere else is an error naming the file and line.

Output ownership: a command writes only into a path it owns (:func:`check_output`, :func:`claim_output`): one that does not
exist, is empty, or carries the command's marker file (``.videor1-<command>``, inside an output
directory or beside an output file), which the command leaves there on its first write. Anything
else is refused before any work, so a mistyped ``--out`` never replaces a user's file. Files are
written whole or not at all (:func:`atomic_path`: a temporary file beside the target, then
``os.replace``; the temporary file is removed if writing fails).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from videor1.utils.logging import get_logger

log = get_logger(__name__)


class MetricsError(ValueError):
    """A ``metrics.jsonl`` line in the middle of the file is not valid JSON."""


def output_marker(out: str | os.PathLike[str], owner: str, *, directory: bool) -> Path:
    """The marker file saying ``out`` was written by ``videor1 <owner>``: inside a directory, beside a file.

    >>> output_marker("runs/eval", "eval", directory=True).as_posix()
    'runs/eval/.videor1-eval'
    >>> output_marker("data/cot.json", "annotate", directory=False).as_posix()
    'data/.cot.json.videor1-annotate'
    """
    path = Path(out)
    name = "videor1-" + owner.replace(" ", "-")
    return path / f".{name}" if directory else path.with_name(f".{path.name}.{name}")


def check_output(out: str | os.PathLike[str], owner: str, *, directory: bool, flag: str = "--out") -> Path:
    """Raise unless ``videor1 <owner>`` may write ``out``: it does not exist, is empty (an empty
    directory or a 0-byte file) or carries ``owner``'s marker (:func:`output_marker`). Changes nothing."""
    from videor1.config import ConfigError

    path = Path(out)
    marker = output_marker(path, owner, directory=directory)
    kind = "directory" if directory else "file"
    if path.exists():
        if path.is_dir() != directory:
            what = "a directory" if path.is_dir() else "a file"
            raise ConfigError(f"{flag} {path}: is {what}; give an output {kind}")
        empty = not any(path.iterdir()) if directory else path.stat().st_size == 0
        if not empty and not marker.exists():
            raise ConfigError(
                f"{flag} {path}: this {kind} holds data that `videor1 {owner}` did not write (no "
                f"{marker.name} marker {'in it' if directory else 'beside it'}); refusing to overwrite "
                f"it; choose another {flag} or remove it"
            )
    return path


def claim_output(out: str | os.PathLike[str], owner: str, *, directory: bool, flag: str = "--out") -> Path:
    """:func:`check_output`, then create the directory (or the file's directory) and write the marker.

    The file itself is not created: write it with :func:`atomic_path`.
    """
    path = check_output(out, owner, directory=directory, flag=flag)
    (path if directory else path.parent).mkdir(parents=True, exist_ok=True)
    output_marker(path, owner, directory=directory).touch()
    return path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) to write to; renamed onto ``path`` on success.

    On an error the temporary file is removed and ``path`` keeps its old content.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # torch / numpy scalars
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class MetricsWriter:
    """Append-only JSONL metrics log (``metrics.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str], *, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(_jsonable(record), ensure_ascii=False) + "\n")

    def truncate_after_step(self, step: int) -> None:
        """Drop lines with ``step > step`` (used on resume so a rerun never duplicates steps)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [
            json.dumps(record, ensure_ascii=False)
            for record in read_metrics(self.path)
            if record.get("step", -1) <= step
        ]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        os.replace(tmp, self.path)


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl`` (NaN read back as NaN); a torn last line is dropped."""
    p = Path(path)
    if not p.exists():
        return []
    text = p.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):  # the last line, without its newline: cut short by a kill
                log.warning("%s: dropping a torn last line left by an interrupted run (line %d)", p, number)
                continue
            raise MetricsError(f"{p} line {number}: not valid JSON ({e}); fix or delete the line") from e
    return records
