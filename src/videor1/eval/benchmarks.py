"""The benchmarks ``videor1 eval`` knows: how a file is recognised and which record field names a task.

Video-R1 ships its evaluation sets as JSON files in the training schema (the Video-R1 data format):
``eval_vsibench.json``, ``eval_videommmu.json``, ``eval_mmvu.json``, ``eval_mvbench.json``,
``eval_tempcompass.json``, ``eval_videomme.json``; Video-Holmes is read in the same schema. A file is
recognised from its name (``--bench-name`` overrides); any other file (e.g. the procedural
``test.json``) is evaluated as a ``custom`` benchmark named after the file.

Per-task breakdowns read a task field from the records when present (``question_type`` for
VSI-Bench, the common alternatives are tried in order; ``--task-field`` names it explicitly), and
procedural records carry ``family``.

VSI-Bench task types are those of the official release (nyu-visionx/VSI-Bench, as scored by its
lmms-eval task): multiple-choice ``object_rel_distance``, ``object_rel_direction_{easy,medium,hard}``,
``route_planning``, ``obj_appearance_order`` and numerical-answer ``object_counting``,
``object_abs_distance``, ``object_size_estimation``, ``room_size_estimation``. The official overall
score is the unweighted mean over 8 categories, relative direction being the mean of its three
difficulty levels (:data:`VSIBENCH_CATEGORIES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from videor1.types import Sample

VSIBENCH_MC_TASKS: tuple[str, ...] = (
    "object_rel_distance",
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "route_planning",
    "obj_appearance_order",
)
"""VSI-Bench multiple-choice task types (scored by accuracy)."""

VSIBENCH_NUMERIC_TASKS: tuple[str, ...] = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
)
"""VSI-Bench numerical-answer task types (scored by MRA)."""

VSIBENCH_CATEGORIES: dict[str, str] = {
    "object_counting": "object_counting",
    "object_abs_distance": "object_abs_distance",
    "object_size_estimation": "object_size_estimation",
    "room_size_estimation": "room_size_estimation",
    "object_rel_distance": "object_rel_distance",
    "object_rel_direction_easy": "object_rel_direction",
    "object_rel_direction_medium": "object_rel_direction",
    "object_rel_direction_hard": "object_rel_direction",
    "route_planning": "route_planning",
    "obj_appearance_order": "obj_appearance_order",
}
"""Task type -> one of the 8 categories averaged by the official overall score."""

DEFAULT_TASK_FIELDS: tuple[str, ...] = ("question_type", "original_question_type", "task_type", "task")
"""Record fields tried, in order, for the task type when ``--task-field`` is not given."""


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its short name, display name and the file-name patterns that identify it."""

    name: str
    display: str
    patterns: tuple[str, ...]  # regexes matched against the lower-cased file name

    @property
    def is_vsibench(self) -> bool:
        return self.name == "vsibench"


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("vsibench", "VSI-Bench", (r"vsi[_-]?bench",)),
        Benchmark("videommmu", "VideoMMMU", (r"video[_-]?mmmu",)),
        Benchmark("mmvu", "MMVU", (r"(?<![a-z])mmvu",)),
        Benchmark("mvbench", "MVBench", (r"mvbench",)),
        Benchmark("tempcompass", "TempCompass", (r"temp[_-]?compass",)),
        Benchmark("videomme", "VideoMME", (r"video[_-]?mme(?![a-z])",)),
        Benchmark("videoholmes", "Video-Holmes", (r"video[_-]?holmes",)),
    )
}
"""Known benchmarks by short name."""

_NAME_RE = re.compile(r"[^a-z0-9]+")


def _canonical(name: str) -> str:
    return _NAME_RE.sub("", name.lower())


def detect_benchmark(path: str | Path, bench_name: str | None = None) -> Benchmark:
    """The benchmark of an evaluation file: ``bench_name`` if given, else recognised from the file name.

    ``bench_name`` may be a known short or display name in any spelling (``"VSI-Bench"``,
    ``"vsibench"``) or a new name, which makes a custom benchmark of that name. An unrecognised file
    name gives a custom benchmark named after the file (``test.json`` -> ``test``).

    >>> detect_benchmark("data/eval_vsibench.json").display
    'VSI-Bench'
    >>> detect_benchmark("eval/test.json").name
    'test'
    """
    if bench_name:
        key = _canonical(bench_name)
        for bench in BENCHMARKS.values():
            if key in (_canonical(bench.name), _canonical(bench.display)):
                return bench
        return Benchmark(bench_name, bench_name, ())
    file_name = Path(path).name.lower()
    for bench in BENCHMARKS.values():
        if any(re.search(p, file_name) for p in bench.patterns):
            return bench
    stem = Path(path).stem
    return Benchmark(stem, stem, ())


def task_of(sample: Sample, task_field: str | None = None) -> str | None:
    """The record's task type (``question_type`` etc.), or None when the record carries none.

    With ``task_field`` given, only that field is read (a record without it has no task).
    """
    fields = (task_field,) if task_field else DEFAULT_TASK_FIELDS
    for name in fields:
        value = sample.extra.get(name)
        if value is not None and value != "":
            return str(value)
    return None


def family_of(sample: Sample) -> str | None:
    """The procedural task family (``family`` field), or None."""
    value = sample.extra.get("family")
    return None if value is None else str(value)
