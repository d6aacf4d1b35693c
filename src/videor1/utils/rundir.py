"""Run directories: every training or evaluation run writes ``config.yaml`` and ``metrics.jsonl``.

``MetricsWriter`` appends one JSON object per line and flushes after each write, so a killed run
keeps every line it logged. A NaN or infinite metric is written as ``NaN`` / ``Infinity`` /
``-Infinity`` (not ``null``, which would hide a diverged run): Python's ``json.loads`` reads them
back as floats, as do :func:`read_metrics` and ``pandas.read_json(path, lines=True)``; strict JSON
parsers may reject them.

A kill can leave a torn last line (no newline, or half an object); resuming drops it with a warning.
A bad line anywhere else is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from videor1.utils.logging import get_logger

log = get_logger(__name__)


class MetricsError(ValueError):
    """A ``metrics.jsonl`` line in the middle of the file is not valid JSON."""


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
