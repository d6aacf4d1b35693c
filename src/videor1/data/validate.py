"""``videor1 data validate``: find every record that training or evaluation could not use.

Checks, per record:

1. schema (:func:`videor1.data.records.record_problems`): types, ``data_type`` and ``problem_type``
   values, options lettered ``A. ..``, ``B. ..`` for multiple choice and ``[]`` otherwise, the solution
   wrapped in one ``<answer>`` (a letter among the options for multiple choice, a number for
   numerical and regression), a relative path;
2. the media path stays inside the media root (``..``, absolute paths and symlinks pointing out);
3. the media file exists, is not empty, and decodes: an image fully, a video at ``probe_frames``
   frames spread over the whole clip (default 2: the first and the last, so a truncated file fails)
   through :func:`videor1.data.media.load_video` at a tiny pixel budget, yielding at least one frame.
   A video needs at least 2 frames (one temporal patch of the ViT), as training does.

Duplicate ``problem_id`` values are reported as warnings (they do not fail the file): the published
Video-R1 files reuse ids across sources, but anything keyed by id (evaluation resume) must know.

Each distinct media file is checked once, in a thread pool (decoding is I/O plus native code that
releases the GIL). Nothing is ever substituted: a broken record is reported, never repaired; the
reference silently replaced unreadable media with a fixed fallback file.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videor1.config import PIXELS_PER_TOKEN, MediaConfig
from videor1.data.records import MediaPathError, ScannedRecord, resolve_media_path, scan_records
from videor1.utils.logging import get_logger, make_progress

log = get_logger(__name__)

PROBE_PIXELS = 4 * PIXELS_PER_TOKEN
"""Pixel budget used when decoding media for validation: tiny, so decoding cost is the container's.
Validation has no model: probes are sized for Qwen2.5-VL (the reference's model); whether a file
decodes does not depend on that."""


@dataclass
class Failure:
    """One problem of one record. ``kind`` groups failures in the summary; ``reason`` is the detail."""

    index: int
    source: str
    problem_id: Any
    field: str
    kind: str
    reason: str
    record: Any
    severity: str = "error"  # "error" fails the file, "warning" does not

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "source": self.source,
            "problem_id": self.problem_id,
            "field": self.field,
            "kind": self.kind,
            "reason": self.reason,
            "severity": self.severity,
            "record": self.record,
        }


@dataclass
class ValidationResult:
    """Everything ``validate_file`` found."""

    path: str
    media_root: str | None
    total: int
    counts: dict[tuple[str, str], int]  # (data_type, problem_type) -> records
    failures: list[Failure] = field(default_factory=list)  # severity "error"
    warnings: list[Failure] = field(default_factory=list)  # severity "warning"
    media_checked: int = 0  # distinct media files decoded

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed_indices(self) -> set[int]:
        return {f.index for f in self.failures}

    @property
    def num_valid(self) -> int:
        return self.total - len(self.failed_indices)

    def failures_by_kind(self) -> dict[str, int]:
        """Kind -> number of distinct failing records, most frequent first."""
        by_kind: dict[str, set[int]] = defaultdict(set)
        for f in self.failures + self.warnings:
            by_kind[f.kind].add(f.index)
        return dict(sorted(((k, len(v)) for k, v in by_kind.items()), key=lambda kv: (-kv[1], kv[0])))


def _schema_kind(field_name: str) -> str:
    base = field_name.split("[", 1)[0]
    return f"schema: {base}"


def check_media_file(path: Path, data_type: str, *, probe_frames: int = 2) -> tuple[str, str] | None:
    """``(kind, reason)`` when the media file at ``path`` is unusable as ``data_type``, else None."""
    from videor1.data.media import MediaError, load_image, load_video
    from videor1.models.known import QWEN2_5_VL_GEOMETRY

    pixels = {"video_min_pixels", "video_max_pixels", "image_min_pixels", "image_max_pixels"}
    probe = MediaConfig(nframes=probe_frames, **dict.fromkeys(pixels, PROBE_PIXELS))

    if not path.exists():
        return "media: missing file", f"media file not found: {path}"
    if not path.is_file():
        return "media: not a file", f"media path is not a regular file: {path}"
    if path.stat().st_size == 0:
        return "media: empty file", f"media file is empty (0 bytes): {path}"
    try:
        if data_type == "video":
            clip = load_video(path, probe, geometry=QWEN2_5_VL_GEOMETRY)
            if clip.num_frames < 1:
                return "media: no frames", f"video yielded no frames: {path}"
        else:
            load_image(path, probe, geometry=QWEN2_5_VL_GEOMETRY)
    except MediaError as e:
        return "media: unreadable", str(e)
    except Exception as e:  # a decoder bug must not abort a 260k-record scan; it is reported as a failure
        log.debug("unexpected error decoding %s", path, exc_info=True)
        return "media: decoder error", f"{type(e).__name__} while decoding {path}: {e}"
    return None


def validate_records(
    source: str | os.PathLike | Iterable[Mapping[str, Any]],
    media_root: str | os.PathLike | None,
    *,
    jobs: int | None = None,
    limit: int | None = None,
    check_media: bool = True,
    probe_frames: int = 2,
) -> ValidationResult:
    """Validate records from a file or an iterable of dicts (see :func:`validate_file`)."""
    if check_media and media_root is None:
        raise ValueError("media_root is required to check media (or pass check_media=False)")
    if probe_frames < 2:
        raise ValueError(f"probe_frames must be >= 2 (one temporal patch), got {probe_frames}")
    scanned = scan_records(source, limit=limit)

    failures = [
        Failure(item.index, item.source, p.problem_id, p.field, _schema_kind(p.field), p.reason, item.raw)
        for item in scanned
        for p in item.problems
    ]
    warnings = _duplicate_ids(scanned)
    media_checked = 0
    if check_media:
        assert media_root is not None
        media_failures, media_checked = _media_failures(
            scanned, media_root, jobs=jobs, probe_frames=probe_frames
        )
        failures += media_failures

    counts: Counter[tuple[str, str]] = Counter(
        (_str_field(item.raw, "data_type"), _str_field(item.raw, "problem_type")) for item in scanned
    )
    failures.sort(key=lambda f: (f.index, f.field))
    return ValidationResult(
        path=_source_label(source),
        media_root=str(media_root) if media_root is not None else None,
        total=len(scanned),
        counts=dict(counts),
        failures=failures,
        warnings=warnings,
        media_checked=media_checked,
    )


def _str_field(rec: Any, key: str) -> str:
    value = rec.get(key) if isinstance(rec, Mapping) else None
    return value if isinstance(value, str) else "?"


def _duplicate_ids(scanned: list[ScannedRecord]) -> list[Failure]:
    """One warning per record whose problem_id another record also uses."""
    ids: dict[Any, list[int]] = defaultdict(list)
    for item in scanned:
        pid = item.raw.get("problem_id") if isinstance(item.raw, Mapping) else None
        if isinstance(pid, (int, str)) and not isinstance(pid, bool):
            ids[pid].append(item.index)
    warnings = []
    for pid, indices in ids.items():
        if len(indices) < 2:
            continue
        for i in indices:
            others = [j for j in indices if j != i]
            more = " ..." if len(others) > 5 else ""
            warnings.append(
                Failure(
                    i,
                    scanned[i].source,
                    pid,
                    "problem_id",
                    "duplicate problem_id",
                    f"problem_id {pid!r} also used by record(s) {others[:5]}{more}",
                    scanned[i].raw,
                    severity="warning",
                )
            )
    return sorted(warnings, key=lambda f: f.index)


def _media_failures(
    scanned: list[ScannedRecord], media_root: str | os.PathLike, *, jobs: int | None, probe_frames: int
) -> tuple[list[Failure], int]:
    """Path-escape and media failures, and the number of distinct media files decoded."""
    failures = []
    # Distinct (resolved path, data_type) -> indices of the records that use it: each file decoded once.
    wanted: dict[tuple[Path, str], list[int]] = defaultdict(list)
    for item in scanned:
        rec = item.raw
        if not isinstance(rec, Mapping):
            continue
        path, data_type = rec.get("path"), rec.get("data_type")
        if not isinstance(path, str) or data_type not in ("image", "video"):
            continue
        if any(p.field == "path" for p in item.problems):
            continue  # already reported by the schema check (empty, absolute or climbing out)
        try:
            resolved = resolve_media_path(path, media_root)
        except MediaPathError as e:
            pid = rec.get("problem_id")
            failures.append(
                Failure(item.index, item.source, pid, "path", "media: path escapes root", str(e), rec)
            )
            continue
        wanted[(resolved, data_type)].append(item.index)
    for _key, indices, problem in _check_all(wanted, jobs=jobs, probe_frames=probe_frames):
        if problem is None:
            continue
        kind, reason = problem
        for i in indices:
            item = scanned[i]
            failures.append(
                Failure(i, item.source, item.raw.get("problem_id"), "path", kind, reason, item.raw)
            )
    return failures, len(wanted)


def _source_label(source: Any) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__


def _check_all(
    wanted: dict[tuple[Path, str], list[int]], *, jobs: int | None, probe_frames: int
) -> list[tuple[tuple[Path, str], list[int], tuple[str, str] | None]]:
    if not wanted:
        return []
    workers = jobs if jobs is not None else min(8, os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"jobs must be >= 1, got {workers}")
    results = []
    with make_progress() as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("checking media", total=len(wanted))
        futures = {
            pool.submit(check_media_file, path, data_type, probe_frames=probe_frames): (path, data_type)
            for (path, data_type) in wanted
        }
        for future in as_completed(futures):
            key = futures[future]
            results.append((key, wanted[key], future.result()))
            bar.advance(task)
    return results


def validate_file(
    path: str | os.PathLike,
    media_root: str | os.PathLike | None = None,
    *,
    jobs: int | None = None,
    limit: int | None = None,
    check_media: bool = True,
    probe_frames: int = 2,
) -> ValidationResult:
    """Validate a Video-R1 records file (JSON array or JSONL) and the media it points to.

    ``media_root`` defaults to the file's directory. ``jobs`` threads decode media (default
    ``min(8, cpu_count)``). ``check_media=False`` runs the schema checks only. Raises
    :class:`videor1.data.records.RecordError` only when the file itself is unreadable.
    """
    if media_root is None:
        media_root = Path(path).resolve().parent
    return validate_records(
        path, media_root, jobs=jobs, limit=limit, check_media=check_media, probe_frames=probe_frames
    )


def write_report(result: ValidationResult, path: str | os.PathLike) -> Path:
    """Write every failure and warning as one JSON object per line (the record included)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for item in sorted(result.failures + result.warnings, key=lambda x: (x.index, x.severity, x.field)):
            f.write(json.dumps(item.to_json(), ensure_ascii=False, default=str) + "\n")
    return out


def counts_table(counts: dict[tuple[str, str], int], title: str):
    """A Rich table of record counts, one row per data_type, one column per problem_type, and totals."""
    from rich.table import Table

    problem_types = sorted({pt for _, pt in counts})
    table = Table(title=title)
    table.add_column("data_type")
    for pt in problem_types:
        table.add_column(pt, justify="right")
    table.add_column("total", justify="right", style="bold")
    for dt in sorted({dt for dt, _ in counts}):
        row = [counts.get((dt, pt), 0) for pt in problem_types]
        table.add_row(dt, *map(str, row), str(sum(row)))
    return table


def summary_tables(result: ValidationResult) -> list[Any]:
    """Rich tables: records by data_type x problem_type, and failures by kind."""
    from rich.table import Table

    counts = counts_table(result.counts, f"{result.path}: {result.total} records ({result.num_valid} valid)")
    problem_types = sorted({pt for _, pt in result.counts})
    column_totals = [sum(n for (_, pt), n in result.counts.items() if pt == p) for p in problem_types]
    counts.add_row("total", *map(str, column_totals), str(result.total), style="bold")

    tables = [counts]
    by_kind = result.failures_by_kind()
    if by_kind:
        fails = Table(title="problems by kind")
        fails.add_column("kind")
        fails.add_column("records", justify="right")
        fails.add_column("severity")
        fails.add_column("first example", overflow="fold")
        first: dict[str, Failure] = {}
        for f in result.failures + result.warnings:
            first.setdefault(f.kind, f)
        for kind, n in by_kind.items():
            example = first[kind]
            fails.add_row(kind, str(n), example.severity, f"{example.source}: {example.reason}")
        tables.append(fails)
    return tables
