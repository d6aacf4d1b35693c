"""``videor1 data inspect``: what is in a records file, in numbers and in pictures.

* counts by ``data_type`` x ``problem_type`` and by ``data_source``;
* question length (characters and words of the question text the model sees, options included);
* for videos, frame count, duration and frame rate from the container metadata (PyAV, no decoding),
  over at most ``probe_limit`` distinct video files sampled with ``seed``;
* a PNG contact sheet of ``n`` records sampled with ``seed``: the frames the model would see (at
  ``sheet_frames`` frames, small) in a row, the question and the answer underneath.

Records that fail the schema checks are counted and left out of the statistics (run
``videor1 data validate`` for the details). A media file that cannot be read is drawn as a panel
naming the error; nothing else is shown in its place.
"""

from __future__ import annotations

import os
import random
import statistics
import textwrap
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from videor1.data.prompts import question_text
from videor1.data.records import RecordError, answer_text, resolve_media_path, scan_records
from videor1.types import Sample
from videor1.utils.logging import get_logger

log = get_logger(__name__)

SHEET_PIXELS = 160 * 112
"""Per-frame pixel budget of contact-sheet thumbnails (sized with Qwen2.5-VL's geometry, the reference's
model: inspection has no model of its own)."""


@dataclass
class VideoMeta:
    """Container metadata of one video (no frames decoded)."""

    frames: int  # stream frame count; estimated from duration x fps when the container omits it
    duration: float  # seconds
    fps: float
    width: int
    height: int
    frames_estimated: bool = False


def probe_video(path: str | os.PathLike) -> VideoMeta:
    """Read a video's frame count, duration and size from its container with PyAV."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                raise RecordError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * Fraction(stream.time_base))
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            frames = int(stream.frames or 0)
            estimated = frames == 0
            if estimated:
                frames = round(duration * fps)
            if frames <= 0:
                raise RecordError(f"{path}: container reports no video frames")
            return VideoMeta(frames, duration, fps, stream.width, stream.height, estimated)
    except av.FFmpegError as e:
        raise RecordError(f"{path}: cannot read video metadata: {e}") from e


@dataclass
class Distribution:
    """Summary numbers of one quantity."""

    count: int
    mean: float
    minimum: float
    p50: float
    p90: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution | None:
        if not values:
            return None
        ordered = sorted(values)

        def q(p: float) -> float:  # nearest-rank quantile
            return float(ordered[min(len(ordered) - 1, max(0, round(p * (len(ordered) - 1))))])

        return cls(len(ordered), statistics.fmean(ordered), ordered[0], q(0.5), q(0.9), ordered[-1])


@dataclass
class InspectResult:
    path: str
    total: int
    invalid: int
    counts: dict[tuple[str, str], int]
    sources: dict[str, int]
    answers: dict[str, int]  # multiple-choice answer letter -> records
    question_chars: Distribution | None
    question_words: Distribution | None
    video_files: int = 0  # distinct video files referenced
    videos_probed: int = 0
    probe_errors: list[str] = field(default_factory=list)
    video_frames: Distribution | None = None
    video_duration: Distribution | None = None
    video_fps: Distribution | None = None
    sampled: list[Sample] = field(default_factory=list)
    sheet: Path | None = None


def inspect_file(
    path: str | os.PathLike,
    *,
    media_root: str | os.PathLike | None = None,
    n: int = 8,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    probe_limit: int = 1000,
    sheet_frames: int = 8,
    jobs: int | None = None,
) -> InspectResult:
    """Statistics of a records file, and a contact sheet at ``out`` when given (see module doc).

    ``media_root`` defaults to the file's directory. ``probe_limit=0`` skips video metadata.
    """
    root = Path(media_root) if media_root is not None else Path(path).resolve().parent
    scanned = scan_records(path)
    samples = [s.sample for s in scanned if s.sample is not None]
    invalid = len(scanned) - len(samples)
    if invalid:
        log.warning(
            "%s: %d of %d records fail the schema checks and are left out", path, invalid, len(scanned)
        )

    counts = Counter((s.data_type, s.problem_type) for s in samples)
    sources = Counter(s.data_source or "(none)" for s in samples)
    answers = Counter(answer_text(s.solution) or "" for s in samples if s.problem_type == "multiple choice")
    questions = [question_text(s) for s in samples]
    result = InspectResult(
        path=str(path),
        total=len(scanned),
        invalid=invalid,
        counts=dict(counts),
        sources=dict(sources.most_common()),
        answers=dict(sorted(answers.items())),
        question_chars=Distribution.of([len(q) for q in questions]),
        question_words=Distribution.of([len(q.split()) for q in questions]),
    )

    rng = random.Random(seed)
    videos = sorted({os.path.normpath(s.path) for s in samples if s.data_type == "video"})
    result.video_files = len(videos)
    if probe_limit > 0 and videos:
        chosen = videos if len(videos) <= probe_limit else sorted(rng.sample(videos, probe_limit))
        metas = _probe_all(chosen, root, jobs=jobs, errors=result.probe_errors)
        result.videos_probed = len(metas)
        result.video_frames = Distribution.of([m.frames for m in metas])
        result.video_duration = Distribution.of([m.duration for m in metas])
        result.video_fps = Distribution.of([m.fps for m in metas])

    if n > 0 and samples:
        sample_rng = random.Random(seed)
        result.sampled = sample_rng.sample(samples, min(n, len(samples)))
    if out is not None:
        if not result.sampled:
            raise RecordError(f"{path}: no valid records to draw a contact sheet from")
        result.sheet = contact_sheet(result.sampled, root, out, frames=sheet_frames)
    return result


def _probe_all(paths: list[str], root: Path, *, jobs: int | None, errors: list[str]) -> list[VideoMeta]:
    def one(rel: str) -> VideoMeta | str:
        try:
            return probe_video(resolve_media_path(rel, root))
        except RecordError as e:  # MediaPathError is a RecordError; reported, not hidden
            return str(e)

    workers = jobs if jobs is not None else min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(one, paths))
    metas = [o for o in outcomes if isinstance(o, VideoMeta)]
    errors.extend(o for o in outcomes if isinstance(o, str))
    if errors:
        log.warning("%d video file(s) could not be probed; first: %s", len(errors), errors[0])
    return metas


def _load_frames(sample: Sample, root: Path, frames: int) -> list[Any]:
    """HxWx3 uint8 arrays of the sample's media as the model would see it (thumbnail size)."""
    from videor1.config import MediaConfig
    from videor1.data.media import load_image, load_video
    from videor1.models.known import QWEN2_5_VL_GEOMETRY

    path = resolve_media_path(sample.path, root)
    pixels = {"video_min_pixels", "video_max_pixels", "image_min_pixels", "image_max_pixels"}
    sheet = MediaConfig(nframes=frames, **dict.fromkeys(pixels, SHEET_PIXELS))
    if sample.data_type == "video":
        clip = load_video(path, sheet, geometry=QWEN2_5_VL_GEOMETRY)
        return [f.permute(1, 2, 0).numpy() for f in clip.frames]
    image = load_image(path, sheet, geometry=QWEN2_5_VL_GEOMETRY)
    return [image.pixels.permute(1, 2, 0).numpy()]


def _caption(sample: Sample, width: int) -> str:
    answer = answer_text(sample.solution)
    head = f"#{sample.problem_id} [{sample.data_type} / {sample.problem_type}] {sample.source}"
    question = " ".join([sample.problem.strip(), *sample.options])
    body = textwrap.shorten(question, width=width * 3, placeholder=" ...")
    lines = [head, *textwrap.wrap(body, width=width), f"answer: {answer}"]
    return "\n".join(lines)


def contact_sheet(
    samples: Sequence[Sample], media_root: str | os.PathLike, out: str | os.PathLike, *, frames: int = 8
) -> Path:
    """Draw one row per sample (its frames left to right, caption below) into a PNG at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from videor1.data.media import MediaError

    root = Path(media_root)
    cols = max(1, frames)
    rows = len(samples)
    panel = 1.6  # inches per frame
    fig = plt.figure(figsize=(cols * panel, rows * (panel + 1.1)), dpi=100)
    grid = fig.add_gridspec(rows * 2, cols, height_ratios=[panel, 1.1] * rows, hspace=0.05, wspace=0.03)
    wrap_width = int(cols * panel * 12)
    for r, sample in enumerate(samples):
        try:
            images = _load_frames(sample, root, frames)
            error = None
        except (MediaError, RecordError, OSError) as e:
            images, error = [], f"cannot load media:\n{e}"
        for c in range(cols):
            ax = fig.add_subplot(grid[2 * r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c])
                if sample.data_type == "video":
                    ax.set_title(f"t{c}", fontsize=6, pad=1)
            elif error is not None and c == 0:
                ax.text(0.02, 0.5, textwrap.fill(error, 40), color="red", fontsize=5, va="center")
            else:
                ax.axis("off")
        cap = fig.add_subplot(grid[2 * r + 1, :])
        cap.axis("off")
        cap.text(0, 1, _caption(sample, wrap_width), fontsize=7, va="top", family="monospace", wrap=True)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, bbox_inches="tight")
    plt.close(fig)
    return out_path


def summary_tables(result: InspectResult) -> list[Any]:
    """Rich tables of an :class:`InspectResult`."""
    from rich.table import Table

    from videor1.data.validate import counts_table

    title = f"{result.path}: {result.total} records"
    if result.invalid:
        title += f" ({result.invalid} invalid, left out)"
    counts = counts_table(result.counts, title)

    sources = Table(title="by data_source")
    sources.add_column("data_source")
    sources.add_column("records", justify="right")
    for name, n in result.sources.items():
        sources.add_row(name, str(n))

    dists = Table(title="distributions")
    for col in ("quantity", "n", "mean", "min", "p50", "p90", "max"):
        dists.add_column(col, justify="left" if col == "quantity" else "right")
    probed = f"video {{}} ({result.videos_probed} of {result.video_files} files probed)"
    for name, dist in (
        ("question characters", result.question_chars),
        ("question words", result.question_words),
        (probed.format("frames"), result.video_frames),
        (probed.format("duration (s)"), result.video_duration),
        (probed.format("fps"), result.video_fps),
    ):
        if dist is not None:
            dists.add_row(
                name,
                str(dist.count),
                *(f"{v:.1f}" for v in (dist.mean, dist.minimum, dist.p50, dist.p90, dist.maximum)),
            )
    tables = [counts, sources, dists]
    if result.answers:
        answers = Table(title="multiple-choice answers")
        answers.add_column("letter")
        answers.add_column("records", justify="right")
        for letter, n in result.answers.items():
            answers.add_row(letter, str(n))
        tables.append(answers)
    return tables
