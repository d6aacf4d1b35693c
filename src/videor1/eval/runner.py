"""Run a model over benchmark files: stream predictions, resume without duplicates, summarise.

For each benchmark file the records are cut into fixed chunks of ``batch_size`` by position (chunk k
holds records ``k·B … k·B + B − 1``), so a resumed run generates exactly the batches an uninterrupted
run would have (batch composition can change the numerics of padded generation). For every chunk:

1. the records that already have a line in ``predictions.jsonl`` are skipped;
2. media are loaded with the run's frame and pixel budgets; a record whose media fails gets an
   ``error`` line with the reason and is excluded, visibly, from every score;
3. optionally (``shuffle_frames``) each video's frames are permuted with a generator seeded from the
   run seed and the record's position (the same permutation on a resumed run);
4. the rest are generated in one left-padded batch and scored both ways
   (:mod:`videor1.eval.scoring`);
5. the chunk's lines are appended in one write, flushed and fsynced.

A killed run leaves at most one partial trailing line, which the next run drops. ``run.json`` holds
the settings that change predictions (model, frames, pixels, decoding, shuffling); resuming into a
directory written with other settings raises instead of mixing the two.

Decoding with temperature > 0 samples from the global torch RNG, which is reseeded with
``seed + chunk start`` before every chunk so that a resumed run draws the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from videor1.config import ConfigError, EvalConfig, MediaConfig
from videor1.eval.benchmarks import Benchmark, detect_benchmark, family_of, task_of
from videor1.eval.report import write_combined_report, write_summary
from videor1.eval.scoring import ground_truth, score_item
from videor1.eval.summary import summarize
from videor1.rewards import prepare_scorers
from videor1.types import Sample, VideoClip
from videor1.utils.logging import get_logger, make_progress
from videor1.utils.rundir import write_text_atomic

log = get_logger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
RUN_FILE = "run.json"


class EvalResumeError(RuntimeError):
    """The output directory holds predictions made with other settings or other records."""


@dataclass
class EvalSettings:
    """Everything that changes predictions; stored in ``run.json`` and checked on resume."""

    model: str
    media: dict[str, Any]
    sampling: dict[str, Any]
    greedy: bool = False
    shuffle_frames: bool = False
    shuffle_unit: str = "frame"
    seed: int = 0
    system_prompt: str | None = None
    task_field: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # recorded, not checked (batch size, limit, ...)

    def checked(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("extra")
        return data


class PredictionsFile:
    """``predictions.jsonl``: one JSON line per (benchmark, record); append-only, read on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        keep = raw.rfind(b"\n") + 1  # everything after the last newline is a partial line from a kill
        if keep < len(raw):
            log.warning("%s: dropping a partial last line left by an interrupted run", self.path)
            with self.path.open("r+b") as f:
                f.truncate(keep)
        try:
            text = raw[:keep].decode("utf-8")
        except UnicodeDecodeError as e:
            raise EvalResumeError(f"{self.path}: not UTF-8 text ({e}); not a predictions file") from e
        for number, row in enumerate(text.split("\n"), start=1):
            if not row.strip():
                continue
            try:
                line = json.loads(row)
            except json.JSONDecodeError as e:
                raise EvalResumeError(f"{self.path} line {number}: not valid JSON ({e})") from e
            if not isinstance(line, dict) or not isinstance(line.get("key"), str):
                raise EvalResumeError(f'{self.path} line {number}: not a prediction (no "key" field)')
            key = line["key"]
            if key in self.lines:
                raise EvalResumeError(f"{self.path} line {number}: duplicate prediction for {key!r}")
            self.lines[key] = line

    def drop(self, keys: set[str]) -> None:
        """Remove the lines of ``keys`` (rewrites the file atomically), e.g. to retry failed items."""
        if not keys & self.lines.keys():
            return
        self.lines = {k: v for k, v in self.lines.items() if k not in keys}
        write_text_atomic(
            self.path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines.values())
        )

    def __contains__(self, key: str) -> bool:
        return key in self.lines

    def append(self, lines: Sequence[dict[str, Any]]) -> None:
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        for line in lines:
            self.lines[line["key"]] = line


def item_key(bench: Benchmark, index: int) -> str:
    return f"{bench.name}[{index}]"


def _check_run_file(out_dir: Path, settings: EvalSettings, resumed: bool) -> None:
    path = out_dir / RUN_FILE
    wanted = settings.checked()
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise EvalResumeError(
                f"{path}: not a JSON settings file ({e}); it is written by `videor1 eval`: use another output "
                "directory or delete this one to start over"
            ) from e
        if not isinstance(stored, dict):
            raise EvalResumeError(
                f"{path}: expected a JSON object of settings, found {type(stored).__name__}; use another "
                "output directory or delete this one to start over"
            )
        stored_checked = {k: stored.get(k) for k in wanted}
        if stored_checked != wanted:
            diffs = [k for k in wanted if stored_checked.get(k) != wanted[k]]
            raise EvalResumeError(
                f"{out_dir} holds predictions made with other settings ({', '.join(diffs)} differ); "
                "use another output directory or delete it to start over"
            )
    elif resumed:
        raise EvalResumeError(
            f"{out_dir / PREDICTIONS_FILE} exists but {path} is missing; cannot check settings"
        )
    write_text_atomic(path, json.dumps(dataclasses.asdict(settings), indent=2) + "\n")


def _item_seed(seed: int, bench: Benchmark, index: int) -> int:
    return (seed * 1_000_003 + zlib.crc32(bench.name.encode()) * 7919 + index) % (2**63)


def _base_line(bench: Benchmark, index: int, sample: Sample, task_field: str | None) -> dict[str, Any]:
    return {
        "key": item_key(bench, index),
        "bench": bench.name,
        "index": index,
        "problem_id": sample.problem_id,
        "problem_type": sample.problem_type,
        "data_type": sample.data_type,
        "task": task_of(sample, task_field),
        "family": family_of(sample),
        "data_source": sample.data_source or None,
        "ground_truth": ground_truth(sample),
    }


def run_benchmark(
    predictor: Any,
    bench: Benchmark,
    samples: Sequence[Sample],
    media_root: str | Path,
    store: PredictionsFile,
    settings: EvalSettings,
    *,
    batch_size: int,
) -> dict[str, Any]:
    """Generate and score every record of one benchmark that has no line yet; returns timing counters.

    Media are sized for ``predictor.geometry`` (:class:`videor1.infer.Predictor` reads it from the
    model).
    """
    from videor1.data.frames import shuffle_frames
    from videor1.data.media import MediaError, load_media
    from videor1.data.records import RecordError

    media_cfg = MediaConfig(**settings.media)
    geometry = predictor.geometry
    pending = {i for i in range(len(samples)) if item_key(bench, i) not in store}
    for index in set(range(len(samples))) - pending:
        stored = store.lines[item_key(bench, index)]["problem_id"]
        if stored != samples[index].problem_id:
            raise EvalResumeError(
                f"{store.path}: line {item_key(bench, index)} is for problem_id {stored!r} but "
                f"{samples[index].source} has problem_id {samples[index].problem_id!r}; the benchmark file "
                "changed since these predictions were made (use another output directory)"
            )
    if len(pending) < len(samples):
        log.info(
            "%s: resuming, %d of %d items already done",
            bench.display,
            len(samples) - len(pending),
            len(samples),
        )
    generated = 0
    seconds = 0.0
    with make_progress() as bar:
        task = bar.add_task(f"eval {bench.display}", total=len(pending))
        for start in range(0, len(samples), batch_size):
            chunk = [i for i in range(start, min(start + batch_size, len(samples))) if i in pending]
            if not chunk:
                continue
            lines: list[dict[str, Any]] = []
            todo: list[tuple[dict[str, Any], Sample, Any]] = []
            for index in chunk:
                sample = samples[index]
                line = _base_line(bench, index, sample, settings.task_field)
                try:
                    media = load_media(sample, media_root, media_cfg, geometry=geometry)
                except (MediaError, RecordError) as err:
                    line.update(status="error", error=f"media: {err}", shuffled=False)
                    lines.append(line)
                    continue
                line["shuffled"] = False
                line["frame_order"] = None
                if isinstance(media, VideoClip):
                    line["num_frames"] = media.num_frames
                    if settings.shuffle_frames:
                        gen = torch.Generator().manual_seed(_item_seed(settings.seed, bench, index))
                        try:
                            media, order = shuffle_frames(
                                media, gen, geometry=geometry, unit=settings.shuffle_unit
                            )
                            line.update(shuffled=True, frame_order=order)
                        except ValueError as err:  # a still clip: no order to remove
                            line["not_shuffled"] = str(err)
                            log.warning("%s[%d]: evaluated in order: %s", bench, index, err)
                todo.append((line, sample, media))
            if todo:
                torch.manual_seed(settings.seed + start)
                t0 = time.perf_counter()
                texts = predictor.generate([s for _, s, _ in todo], [m for _, _, m in todo])
                seconds += time.perf_counter() - t0
                generated += len(todo)
                for (line, sample, _), text in zip(todo, texts):
                    score = score_item(sample, text)
                    line.update(
                        status="ok",
                        error=None,
                        raw_output=text,
                        prediction=score.prediction,
                        has_answer_tag=score.has_answer_tag,
                        parse_ok=score.parse_ok,
                        metric=score.metric,
                        score={
                            "video-r1": score.video_r1,
                            "official": score.official,
                            "lenient": score.lenient,
                        },
                    )
                    lines.append(line)
            lines.sort(key=lambda ln: ln["index"])
            store.append(lines)
            bar.advance(task, len(chunk))
    return {"generated": generated, "generate_seconds": seconds}


def evaluate(
    model: str | Path | tuple[Any, Any] | Any,
    cfg: EvalConfig,
    *,
    media: MediaConfig | None = None,
    media_root: str | Path | None = None,
    label: str | None = None,
    system_prompt: str | None = None,
    retry_errors: bool = False,
    device: str | torch.device | None = None,
    dtype: str = "float32",
) -> dict[str, Any]:
    """Evaluate one model on ``cfg.benches``; writes ``cfg.output_dir`` and returns the summary dict.

    ``model`` is a checkpoint directory, a ``(model, processor)`` pair, or a ready
    :class:`videor1.infer.Predictor`. ``cfg`` (an :class:`~videor1.config.EvalConfig`, validated here)
    gives the benchmark files and names, batch size, limit, decoding (``cfg.sampling``, ``cfg.greedy``),
    frame shuffling (``shuffle_frames`` / ``shuffle_unit`` / ``seed``), task field and output directory.
    ``media`` is the frame and pixel budget; None takes the checkpoint's training budget
    (:func:`videor1.infer.resolve_media`) or, for a model without one, the evaluation default (the fps
    rule up to 16 frames, 256·28·28 pixels per frame). ``media_root`` defaults to each benchmark
    file's directory. A resumed run keeps earlier error lines unless ``retry_errors`` (e.g. after
    fixing a media file). A ``Predictor`` passed in gets this call's media and decoding settings.

    Returns ``{"run": {...settings...}, "benchmarks": {name: summary}}`` (see
    :func:`videor1.eval.summary.summarize`); the same object is written to ``summary.json``, with
    ``summary.md`` and, for several benchmarks, ``combined.md`` and ``combined.png``.
    """
    from videor1.data.records import load_records
    from videor1.infer import Predictor, resolve_media

    cfg.validate("eval")
    files = [Path(f) for f in cfg.benches]
    if not files:
        raise ConfigError("eval.benches is empty: give at least one benchmark file (--bench)")
    names: list[str | None] = list(cfg.bench_names) or [None] * len(files)
    if media is None:
        source = model if isinstance(model, (str, Path)) else getattr(model, "source", None)
        media, origin = resolve_media(source)
        log.info("media budget: %s", origin)
    media_cfg = dataclasses.replace(media)
    media_cfg.validate("data.media")
    sampling_cfg = dataclasses.replace(cfg.sampling)
    greedy, batch_size, limit = cfg.greedy, cfg.batch_size, cfg.limit

    if isinstance(model, Predictor):
        predictor = model
        predictor.media, predictor.sampling, predictor.greedy = media_cfg, sampling_cfg, greedy
        predictor.system_prompt = system_prompt
        model_name = getattr(predictor, "source", None) or label or type(predictor.model).__name__
    elif isinstance(model, tuple):
        predictor = Predictor(model[0], model[1], media=media_cfg, sampling=sampling_cfg, greedy=greedy)
        predictor.system_prompt = system_prompt
        model_name = label or type(model[0]).__name__
    else:
        model_name = str(model)
        predictor = None  # loaded after the resume checks, which are cheap

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / PREDICTIONS_FILE
    settings = EvalSettings(
        model=model_name,
        media=dataclasses.asdict(media_cfg),
        sampling=dataclasses.asdict(sampling_cfg),
        greedy=greedy,
        shuffle_frames=cfg.shuffle_frames,
        shuffle_unit=cfg.shuffle_unit,
        seed=cfg.seed,
        system_prompt=system_prompt,
        task_field=cfg.task_field,
        extra={"batch_size": batch_size, "limit": limit, "label": label or model_name},
    )
    _check_run_file(out, settings, resumed=store_path.exists())
    store = PredictionsFile(store_path)
    if retry_errors:
        store.drop({key for key, line in store.lines.items() if line["status"] == "error"})

    benches: list[tuple[Benchmark, Path, list[Sample]]] = []
    for path, name in zip(files, names):
        bench = detect_benchmark(path, name)
        if any(b.name == bench.name for b, _, _ in benches):
            raise ValueError(f"benchmark {bench.name!r} given twice ({path}); pass distinct eval.bench_names")
        benches.append((bench, path, load_records(path, limit=limit)))
    prepare_scorers({sample.problem_type for _, _, samples in benches for sample in samples})

    if predictor is None:
        predictor = Predictor(
            model,
            media=media_cfg,
            sampling=sampling_cfg,
            greedy=greedy,
            device=device,
            dtype=dtype,
            system_prompt=system_prompt,
        )

    summaries: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    for bench, path, samples in benches:
        root = Path(media_root) if media_root is not None else path.parent
        timing[bench.name] = run_benchmark(
            predictor, bench, samples, root, store, settings, batch_size=batch_size
        )
        lines = [store.lines[item_key(bench, i)] for i in range(len(samples)) if item_key(bench, i) in store]
        summaries[bench.name] = summarize(bench, lines, total=len(samples), file=str(path))
        summaries[bench.name]["timing"] = timing[bench.name]
    summary = {"run": dataclasses.asdict(settings), "benchmarks": summaries}
    write_summary(summary, out)
    if len(summaries) > 1:
        write_combined_report({settings.extra["label"]: summary}, out)
    return summary
