"""Video-R1 records: load, check, resolve media paths, save.

A record is one JSON object with the fields of the Video-R1 data files (``problem_id``, ``problem``,
``data_type``, ``problem_type``, ``options``, ``solution``, ``path``, ``data_source`` and, in CoT
files, ``process``). Sources are a JSON array file, a JSONL file, a parquet file, a ``datasets``
``save_to_disk`` directory (one split: a ``DatasetDict`` directory must be given as its split's
subdirectory), or any iterable of dicts (a Hugging Face ``datasets.Dataset`` is one).

Two ways in:

* :func:`load_records` is strict: the first bad record raises :class:`RecordError` naming the file,
  record index, ``problem_id`` and field.
* :func:`scan_records` never raises for a bad record: it returns every record with the list of its
  problems, for ``videor1 data validate``.

Both run the same checks (:func:`record_problems`): types, the allowed ``data_type`` and
``problem_type`` values, options present and lettered ``"A. ..."``, ``"B. ..."`` for multiple choice
and empty otherwise, the solution wrapped in one ``<answer>...</answer>`` (for multiple choice a
letter among the options; for numerical and regression a number), ``process`` wrapped in
``<think>...</think>`` when present, and a relative media path that does not climb out of its root.
``load_records(..., check="types")`` skips the value checks and keeps only the type checks.

Departures from the reference: the reference loads records with no checks at all and finds broken
records only when training crashes or (worse) silently scores them 0; here they are rejected up front.
``problem_id`` may be an int (as in Video-R1-260k) or a string (some evaluation files use string ids).
Missing (or null) ``data_source`` reads as ``""``; every other field is required.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from videor1.tags import sole_block, wrapped_in
from videor1.types import DATA_TYPES, PROBLEM_TYPES, Sample

KNOWN_FIELDS: tuple[str, ...] = (
    "problem_id",
    "problem",
    "data_type",
    "problem_type",
    "options",
    "process",
    "solution",
    "path",
    "data_source",
)
REQUIRED_FIELDS: tuple[str, ...] = (
    "problem_id",
    "problem",
    "data_type",
    "problem_type",
    "options",
    "solution",
    "path",
)

_OPTION_RE = re.compile(r"([A-Z])\.\s*\S")
_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

CheckLevel = Literal["schema", "types"]


class RecordError(ValueError):
    """A record (or a whole records file) that cannot be used; the message names file, record and field."""


class MediaPathError(RecordError):
    """A media path that is empty or resolves outside its media root."""


@dataclass(frozen=True)
class RecordProblem:
    """One thing wrong with one record."""

    source: str  # "train.json[17]"
    index: int  # position in the file (0-based)
    problem_id: Any  # the record's problem_id, or None when absent
    field: str  # the offending field ("problem_type", "options[1]", "path", ...)
    reason: str  # short, stable description, e.g. "unknown problem_type 'essay'"

    def message(self) -> str:
        return f"{self.source} (problem_id={self.problem_id!r}) field {self.field!r}: {self.reason}"


@dataclass
class ScannedRecord:
    """A record as read from its source, with its problems; ``sample`` is None when it has any."""

    index: int
    source: str
    raw: Any
    problems: list[RecordProblem] = field(default_factory=list)
    sample: Sample | None = None


# ---------------------------------------------------------------------------------------------------
# Reading raw records


def _source_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    info = getattr(source, "info", None)
    name = getattr(info, "dataset_name", None) if info is not None else None
    split = getattr(source, "split", None)
    if name:
        return f"{name}:{split}" if split else str(name)
    return type(source).__name__


def iter_raw_records(source: str | os.PathLike | Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    """Yield ``(label, record)`` pairs, label ``"file.json[i]"``, from a JSON array, JSONL or iterable.

    Raises :class:`RecordError` when the file is missing or is neither a JSON array nor JSONL.
    Records are yielded as they are (not checked), so a validator can report every bad one.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            yield from _iter_columns(path, _load_datasets_dir(path))
            return
        if not path.is_file():
            raise RecordError(f"records file not found: {path}")
        if path.suffix == ".parquet":
            yield from _iter_columns(path, _load_parquet(path))
            return
        yield from _iter_file(path)
        return
    if isinstance(source, Mapping):
        raise RecordError(
            f"records source is a single mapping ({type(source).__name__}); pass a file path, "
            "a list of records or a datasets.Dataset"
        )
    name = _source_name(source)
    for i, rec in enumerate(source):
        yield f"{name}[{i}]", rec


def _load_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow is a dependency
        raise RecordError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from e
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for a corrupt or truncated file
        raise RecordError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from e


def _load_datasets_dir(path: Path) -> Iterable[Mapping[str, Any]]:
    """A directory written by ``datasets.Dataset.save_to_disk`` (a DatasetDict must name its split)."""
    if not (path / "state.json").is_file() and not (path / "dataset_dict.json").is_file():
        raise RecordError(
            f"{path} is a directory but not a Hugging Face datasets save_to_disk directory "
            "(no state.json or dataset_dict.json); give a JSON, JSONL or parquet file or such a directory"
        )
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a dependency
        raise RecordError(
            f"{path}: reading a datasets directory needs datasets (pip install datasets)"
        ) from e
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if len(splits) != 1:
            raise RecordError(
                f"{path} holds the splits {', '.join(splits)}; give one of them, e.g. {path / splits[0]}"
            )
        loaded = loaded[splits[0]]
    return loaded


def _iter_columns(path: Path, rows: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    # Columnar files fill an optional field a row lacks (``process``, ``data_source``) with null.
    for i, row in enumerate(rows):
        yield f"{path}[{i}]", {k: v for k, v in row.items() if v is not None or k in REQUIRED_FIELDS}


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a leading byte-order mark dropped); other encodings are one clear error."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecordError(
            f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); records files "
            "must be UTF-8 JSON: re-encode it, e.g. `iconv -f latin1 -t utf-8`"
        ) from e


def _top_level_object(path: Path, text: str) -> None:
    """Raise when the whole file is one JSON object that is not a one-line, one-record JSONL file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return  # JSON lines (or broken JSON, reported line by line)
    if not isinstance(data, dict):
        return
    one_record = len(text.strip().splitlines()) == 1 and any(name in data for name in REQUIRED_FIELDS)
    if one_record:
        return
    keys = ", ".join(repr(k) for k in list(data)[:8]) + (", ..." if len(data) > 8 else "")
    lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)]
    hint = f"; the records may be its {lists[0]!r} list" if lists else ""
    raise RecordError(
        f"{path}: the top level is a JSON object (keys {keys}), expected a list: a JSON array of "
        f"records or one record per line (JSONL){hint}"
    )


def _iter_file(path: Path) -> Iterator[tuple[str, Any]]:
    text = _read_text(path)
    stripped = text.lstrip()
    if not stripped:
        raise RecordError(f"{path}: file is empty (expected a JSON array or JSON lines)")
    if stripped[0] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecordError(f"{path}: not valid JSON: {e}") from e
        for i, rec in enumerate(data):
            yield f"{path}[{i}]", rec
        return
    if stripped[0] != "{":
        raise RecordError(f"{path}: expected a JSON array ('[') or JSON lines ('{{'), found {stripped[0]!r}")
    _top_level_object(path, text)
    index = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if index == 0 and lineno == 1:
                # One pretty-printed JSON object is not a records file; say so rather than "bad line 1".
                raise RecordError(
                    f"{path}: line 1 is not a complete JSON object ({e}); expected a JSON array of "
                    "records or one record per line (JSONL)"
                ) from e
            raise RecordError(f"{path} line {lineno} (record {index}): not valid JSON: {e}") from e
        yield f"{path}[{index}]", rec
        index += 1


# ---------------------------------------------------------------------------------------------------
# Checks


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def option_letters(options: list[str]) -> list[str]:
    """The letter of each option (``"B. dog"`` -> ``"B"``); raises ValueError for an unlettered option."""
    letters = []
    for i, opt in enumerate(options):
        m = _OPTION_RE.match(opt)
        if m is None:
            raise ValueError(f"options[{i}] {opt!r} does not start with a letter and a period ('A. ...')")
        letters.append(m.group(1))
    return letters


def answer_text(solution: str) -> str | None:
    """The content of the single ``<answer>...</answer>`` that makes up ``solution``, else None."""
    return sole_block(solution, "answer")


def parse_number(text: str) -> float | None:
    """A numeric answer (thousands separators allowed, e.g. ``"1,000"``), or None."""
    cleaned = text.strip().replace(",", "")
    if _NUMBER_RE.fullmatch(cleaned) is None:
        return None
    return float(cleaned)


def path_problem(path: str) -> str | None:
    """Why a record's media path is unusable without looking at the disk, else None."""
    if not path.strip():
        return "empty path"
    if path != path.strip():
        return "path has leading or trailing whitespace"
    if os.path.isabs(path) or path.startswith("~"):
        return "path must be relative to the media root (e.g. './videos/x.mp4'), got an absolute path"
    depth = 0
    for part in path.split("/"):  # string split: pathlib costs more than every other check together
        if part == "..":
            depth -= 1
            if depth < 0:
                return "path climbs out of the media root ('..')"
        elif part not in (".", ""):
            depth += 1
    return None


def record_problems(rec: Any, *, check: CheckLevel = "schema") -> list[tuple[str, str]]:
    """Every ``(field, reason)`` wrong with one raw record; empty when it is a valid Video-R1 record.

    ``check="types"`` only checks that required fields exist and have the right types.
    """
    if not isinstance(rec, Mapping):
        return [("<record>", f"record must be a JSON object, got {_type_name(rec)}")]
    problems: list[tuple[str, str]] = []
    for name in REQUIRED_FIELDS:
        if name not in rec:
            problems.append((name, "missing field"))

    def typed(name: str, types: tuple[type, ...], what: str) -> bool:
        if name not in rec:
            return False
        value = rec[name]
        if isinstance(value, bool) or not isinstance(value, types):
            problems.append((name, f"must be {what}, got {_type_name(value)}"))
            return False
        return True

    typed("problem_id", (int, str), "an int or a string")
    ok_problem = typed("problem", (str,), "a string")
    ok_data_type = typed("data_type", (str,), "a string")
    ok_problem_type = typed("problem_type", (str,), "a string")
    ok_solution = typed("solution", (str,), "a string")
    ok_path = typed("path", (str,), "a string")
    if rec.get("data_source") is not None:  # datasets fills absent columns with None
        typed("data_source", (str,), "a string")
    ok_process = False
    if "process" in rec and rec["process"] is not None:
        ok_process = typed("process", (str,), "a string")
    ok_options = typed("options", (list,), "a list of strings")
    if ok_options:
        for i, opt in enumerate(rec["options"]):
            if not isinstance(opt, str):
                problems.append((f"options[{i}]", f"must be a string, got {_type_name(opt)}"))
                ok_options = False
    if check == "types":
        return problems

    if ok_problem and not rec["problem"].strip():
        problems.append(("problem", "empty question"))
    if ok_data_type and rec["data_type"] not in DATA_TYPES:
        problems.append(("data_type", f"unknown data_type {rec['data_type']!r} (expected image or video)"))
    if ok_problem_type and rec["problem_type"] not in PROBLEM_TYPES:
        allowed = ", ".join(PROBLEM_TYPES)
        problems.append(
            ("problem_type", f"unknown problem_type {rec['problem_type']!r} (expected {allowed})")
        )
    if ok_process and not wrapped_in(rec["process"], "think"):
        problems.append(("process", "process must be wrapped in <think>...</think>"))
    if ok_path:
        reason = path_problem(rec["path"])
        if reason:
            problems.append(("path", reason))

    is_mc = ok_problem_type and rec["problem_type"] == "multiple choice"
    letters: list[str] | None = None
    if ok_options and ok_problem_type:
        options = rec["options"]
        if is_mc:
            if len(options) < 2:
                problems.append(("options", f"multiple choice needs at least 2 options, got {len(options)}"))
            else:
                try:
                    letters = option_letters(options)
                except ValueError as e:
                    problems.append(("options", str(e)))
                if letters is not None:
                    expected = [chr(ord("A") + i) for i in range(len(letters))]
                    if letters != expected:
                        problems.append(
                            ("options", f"option letters {''.join(letters)} are not A, B, C, ... in order")
                        )
                        letters = None
        elif rec["problem_type"] in PROBLEM_TYPES and options:
            problems.append(("options", f"options must be [] for {rec['problem_type']}, got {len(options)}"))

    if ok_solution:
        answer = answer_text(rec["solution"])
        if answer is None:
            problems.append(("solution", "solution must be exactly one <answer>...</answer>"))
        elif not answer:
            problems.append(("solution", "empty <answer></answer>"))
        elif is_mc and letters is not None and answer not in letters:
            problems.append(("solution", f"answer {answer!r} is not one of the option letters {letters}"))
        elif ok_problem_type and rec["problem_type"] in ("numerical", "regression"):
            if parse_number(answer) is None:
                problems.append(("solution", f"answer {answer!r} is not a number ({rec['problem_type']})"))
    return problems


def to_sample(rec: Mapping[str, Any], source: str) -> Sample:
    """Build a :class:`Sample` from a record that passed :func:`record_problems` (no checks here)."""
    extra = {k: v for k, v in rec.items() if k not in KNOWN_FIELDS}
    return Sample(
        problem_id=rec["problem_id"],
        problem=rec["problem"],
        data_type=rec["data_type"],
        problem_type=rec["problem_type"],
        options=list(rec["options"]),
        solution=rec["solution"],
        path=rec["path"],
        data_source=rec.get("data_source") or "",
        process=rec.get("process"),
        extra=extra,
        source=source,
    )


def _problem_id(rec: Any) -> Any:
    return rec.get("problem_id") if isinstance(rec, Mapping) else None


def scan_records(
    source: str | os.PathLike | Iterable[Mapping[str, Any]],
    *,
    limit: int | None = None,
    check: CheckLevel = "schema",
) -> list[ScannedRecord]:
    """Read every record and check it, collecting problems instead of raising.

    Raises :class:`RecordError` only when the source itself is unreadable (missing file, bad JSON).
    """
    scanned = []
    for index, (label, rec) in enumerate(iter_raw_records(source)):
        if limit is not None and index >= limit:
            break
        pid = _problem_id(rec)
        problems = [
            RecordProblem(label, index, pid, fld, reason) for fld, reason in record_problems(rec, check=check)
        ]
        item = ScannedRecord(index=index, source=label, raw=rec, problems=problems)
        if not problems:
            item.sample = to_sample(rec, label)
        scanned.append(item)
    return scanned


def load_records(
    source: str | os.PathLike | Iterable[Mapping[str, Any]],
    *,
    limit: int | None = None,
    check: CheckLevel = "schema",
) -> list[Sample]:
    """Load records into :class:`Sample` objects; the first bad record raises :class:`RecordError`.

    ``source`` is a JSON array file, a JSONL file, or an iterable of dicts (e.g. ``datasets.Dataset``).
    ``limit`` keeps the first N records. ``Sample.source`` is ``"file.json[i]"``.

    >>> load_records([{"problem_id": 1, "problem": "Q?", "data_type": "video",
    ...   "problem_type": "free-form", "options": [], "solution": "<answer>x</answer>",
    ...   "path": "./v.mp4"}])[0].source
    'list[0]'
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    samples = []
    for index, (label, rec) in enumerate(iter_raw_records(source)):
        if limit is not None and index >= limit:
            break
        problems = record_problems(rec, check=check)
        if problems:
            fld, reason = problems[0]
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise RecordError(
                f"{label} (problem_id={_problem_id(rec)!r}) field {fld!r}: {reason}{more}; "
                "run `videor1 data validate` to list every problem"
            )
        samples.append(to_sample(rec, label))
    return samples


# ---------------------------------------------------------------------------------------------------
# Media paths and saving


def resolve_media_path(path: str | os.PathLike, media_root: str | os.PathLike) -> Path:
    """The absolute path of a record's media file under ``media_root``, symlinks resolved.

    ``"./x/y.mp4"`` becomes ``<media_root>/x/y.mp4``. A path that ends up outside ``media_root``
    (``..``, an absolute path elsewhere, or a symlink pointing out) raises :class:`MediaPathError`.
    Existence is not checked here.
    """
    text = os.fspath(path)
    if not text.strip():
        raise MediaPathError(f"empty media path (media root {media_root})")
    root = Path(media_root).expanduser().resolve()
    candidate = Path(text)
    joined = candidate if candidate.is_absolute() else root / candidate
    resolved = joined.resolve()
    if not resolved.is_relative_to(root):
        lexical = Path(os.path.normpath(joined))
        why = "a symlink points outside it" if lexical.is_relative_to(root) else "the path leaves it"
        raise MediaPathError(
            f"media path {text!r} escapes the media root {root} ({why}; resolves to {resolved})"
        )
    return resolved


def save_records(
    samples_or_dicts: Iterable[Sample | Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    indent: int | None = None,
) -> Path:
    """Write records as a JSON array (UTF-8, non-ASCII kept), or JSONL when ``path`` ends in ``.jsonl``.

    Written to a temporary file then renamed, so a crash never leaves half a file (and a failed write
    leaves no temporary file).
    """
    from videor1.utils.rundir import atomic_path

    out = Path(path)
    records = [s.to_record() if isinstance(s, Sample) else dict(s) for s in samples_or_dicts]
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        if out.suffix == ".jsonl":
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            json.dump(records, f, ensure_ascii=False, indent=indent)
            f.write("\n")
    return out
