"""CoT annotation: a teacher writes reasoning traces, the accuracy reward keeps the correct ones.

The reference built Video-R1-COT-165k by prompting Qwen2.5-VL-72B (temperature 1.0, top-p 0.95, at
most 512 new tokens) with the evaluation prompt and keeping a trace only when its own answer scored
> 0.6 against the ground truth (Video-R1, https://arxiv.org/abs/2503.21776). Here, for every record:

1. media are loaded with the configured budgets (a failure is counted as ``media_error``);
2. the teacher answers the evaluation-variant prompt (:func:`videor1.data.prompts.build_prompt`):
   a local checkpoint (:class:`LocalTeacher`, batched ``model.generate`` through
   :class:`videor1.infer.Predictor`) or any OpenAI-compatible chat-completions endpoint
   (:class:`HTTPTeacher`; the video goes as its sampled frames, one base64 ``image_url`` part each,
   before the text);
3. the reply is scored with ``videor1.rewards.accuracy_reward`` against the record's solution; it is
   kept when the score is strictly above ``threshold`` and the reply has a ``<think>`` block, which
   becomes the record's ``process`` (``"<think>...</think>"``); the solution stays the ground truth.

Every outcome is one line of ``<out>.progress.jsonl`` (written as it happens, flushed) carrying the
key of its request (:func:`request_key`: the teacher's URL or directory, API model, decoding, image
format, media budget, and the record's prompt and media path). A rerun reuses a reply only when its
key matches, so another teacher, model, prompt or decoding asks again; the judgement (threshold,
reward mode) is redone from the stored reply on every run, so a new threshold needs no new request.
Transport failures are retried on rerun. The CoT file (``<out>``, Video-R1 schema) and the filtering
report (``<out>.report.json``) are rebuilt from that log at the end. ``<out>`` must be a file
``annotate`` owns (:func:`videor1.utils.rundir.claim_output`) and not the input; that is checked
before any request.
The teachers themselves (local checkpoint, OpenAI-compatible HTTP endpoint) are in
:mod:`videor1.teachers`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videor1.config import MediaConfig
from videor1.data.prompts import build_prompt
from videor1.rewards import accuracy_reward
from videor1.tags import think_block
from videor1.teachers import (  # noqa: F401 (re-exported: the annotation API)
    MAX_REPLY_BYTES,
    TEACHER_SAMPLING,
    HTTPTeacher,
    LocalTeacher,
    TeacherError,
    make_teacher,
)
from videor1.types import ImageInput, Sample, VideoClip
from videor1.utils.logging import get_logger, make_progress

log = get_logger(__name__)

FINAL_STATUSES = ("kept", "rejected", "no_think", "media_error")
"""Outcomes a rerun does not redo (``failed`` items are retried)."""

ANSWERED_STATUSES = ("kept", "rejected", "no_think")
"""Outcomes with a teacher reply, judged again on every run."""


@dataclass
class Outcome:
    """What happened to one record."""

    index: int
    problem_id: Any
    problem_type: str
    status: str  # kept | rejected | no_think | media_error | failed
    reward: float | None = None
    reason: str | None = None
    process: str | None = None
    reply: str | None = None
    request: str | None = None  # request_key of what was asked

    def line(self) -> dict[str, Any]:
        return dict(self.__dict__)


def judge(sample: Sample, index: int, reply: str, threshold: float, reward_mode: str) -> Outcome:
    """Score a teacher reply; keep it when reward > threshold and it has a ``<think>`` block."""
    reward = float(accuracy_reward(reply, sample.solution, sample.problem_type, mode=reward_mode))
    think = think_block(reply)
    base = {"index": index, "problem_id": sample.problem_id, "problem_type": sample.problem_type}
    if not think:
        return Outcome(
            **base, status="no_think", reward=reward, reason="reply has no <think> block", reply=reply
        )
    if reward <= threshold:
        return Outcome(
            **base,
            status="rejected",
            reward=reward,
            reason=f"reward {reward:.3f} <= {threshold}",
            reply=reply,
        )
    process = f"<think>{think}</think>"
    return Outcome(**base, status="kept", reward=reward, process=process, reply=reply)


def request_key(teacher: HTTPTeacher | LocalTeacher, media: MediaConfig, sample: Sample) -> str:
    """What one request asks, hashed: the teacher's identity, the media budget, the prompt and media path."""
    payload = {
        "teacher": teacher.identity(),
        "media": dataclasses.asdict(media),
        "prompt": build_prompt(sample, "eval"),
        "data_type": sample.data_type,
        "path": sample.path,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:24]


class _ProgressLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.outcomes: dict[int, dict[str, Any]] = {}
        if path.exists():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise self._unusable(f"not UTF-8 text ({e})") from e
            rows = text.split("\n")
            tail = rows.pop()
            if tail.strip():  # partial line from a kill: drop it
                path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
            for number, row in enumerate(rows, start=1):
                if row.strip():
                    try:
                        line = json.loads(row)
                        index = int(line["index"])
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                        raise self._unusable(f"line {number} is not an annotation outcome ({e})") from e
                    self.outcomes[index] = line  # the last outcome of an index wins

    def _unusable(self, why: str) -> Exception:
        from videor1.config import ConfigError

        return ConfigError(f"{self.path}: {why}; annotate writes this log: delete it to start over")

    def current(self, index: int, key: str) -> dict[str, Any] | None:
        """The outcome of ``index`` for the request ``key``; None when it was never asked this way."""
        line = self.outcomes.get(index)
        return line if line is not None and line.get("request") == key else None

    def done(self, index: int, key: str) -> bool:
        line = self.current(index, key)
        return line is not None and line["status"] in FINAL_STATUSES

    def write(self, outcome: Outcome) -> None:
        line = outcome.line()
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            f.flush()
        self.outcomes[outcome.index] = line


def claim_annotation_output(data_file: str | Path, out_path: str | Path) -> Path:
    """Check ``out_path`` before any work: not the input, and a file ``annotate`` owns (or new)."""
    from videor1.config import ConfigError
    from videor1.utils.rundir import claim_output

    out, data = Path(out_path), Path(data_file)
    if out.exists() and data.exists() and os.path.samefile(out, data):
        raise ConfigError(f"--out {out} is the input --data file; choose another output file")
    return claim_output(out, "annotate", directory=False)


def annotate(
    teacher: HTTPTeacher | LocalTeacher,
    data_file: str | Path,
    media_root: str | Path,
    out_path: str | Path,
    *,
    media: MediaConfig | None = None,
    threshold: float = 0.6,
    concurrency: int = 8,
    batch_size: int = 4,
    limit: int | None = None,
    reward_mode: str = "default",
) -> dict[str, Any]:
    """Annotate every record of ``data_file``; writes ``out_path`` and its report, returns the report."""
    from videor1.data.media import MediaError, load_media
    from videor1.data.records import RecordError, load_records, save_records
    from videor1.utils.rundir import write_text_atomic

    out = claim_annotation_output(data_file, out_path)
    media_cfg = media or MediaConfig()
    samples = load_records(data_file, limit=limit)
    keys = [request_key(teacher, media_cfg, sample) for sample in samples]
    progress_log = _ProgressLog(out.with_name(out.name + ".progress.jsonl"))
    pending = [i for i in range(len(samples)) if not progress_log.done(i, keys[i])]
    if len(pending) < len(samples):
        log.info("resuming: %d of %d records already annotated", len(samples) - len(pending), len(samples))
    t0 = time.perf_counter()

    def load(index: int) -> VideoClip | ImageInput | Outcome:
        sample = samples[index]
        try:
            return load_media(sample, media_root, media_cfg, geometry=teacher.geometry)
        except (MediaError, RecordError) as err:
            return Outcome(index, sample.problem_id, sample.problem_type, "media_error", reason=str(err))

    def one(index: int) -> Outcome:
        sample = samples[index]
        loaded = load(index)
        if isinstance(loaded, Outcome):
            return loaded
        try:
            reply = teacher.complete(sample, loaded)
        except TeacherError as err:
            return Outcome(
                index, sample.problem_id, sample.problem_type, "failed", reason=f"{err.kind}: {err}"
            )
        return judge(sample, index, reply, threshold, reward_mode)

    def record(outcome: Outcome) -> None:
        outcome.request = keys[outcome.index]
        progress_log.write(outcome)

    with make_progress() as bar:
        task = bar.add_task(f"annotate {Path(data_file).name}", total=len(pending))
        if teacher.concurrent:
            _run_concurrently(teacher, one, pending, record, max(1, concurrency), lambda: bar.advance(task))
        else:
            for start in range(0, len(pending), batch_size):
                chunk = pending[start : start + batch_size]
                ready: list[tuple[int, Any]] = []
                for index in chunk:
                    loaded = load(index)
                    if isinstance(loaded, Outcome):
                        record(loaded)
                    else:
                        ready.append((index, loaded))
                if ready:
                    replies = teacher.complete_batch([samples[i] for i, _ in ready], [m for _, m in ready])
                    for (index, _), reply in zip(ready, replies):
                        record(judge(samples[index], index, reply, threshold, reward_mode))
                bar.advance(task, len(chunk))

    outcomes: dict[int, dict[str, Any]] = {}
    for index, sample in enumerate(samples):
        line = progress_log.current(index, keys[index])
        if line is not None and line["status"] in ANSWERED_STATUSES:  # judged with this run's rule
            line = judge(sample, index, line["reply"], threshold, reward_mode).line() | {
                "request": keys[index]
            }
        if line is not None:
            outcomes[index] = line
    kept = []
    for index, line in sorted(outcomes.items()):
        if line["status"] == "kept":
            rec = samples[index].to_record()
            rec["process"] = line["process"]
            kept.append(_ordered_record(rec))
    save_records(kept, out, indent=None)
    report = filtering_report(
        outcomes,
        samples,
        teacher=teacher.describe(),
        teacher_settings=teacher.identity(),
        threshold=threshold,
        reward_mode=reward_mode,
        seconds=time.perf_counter() - t0,
        retries=getattr(teacher, "retries", 0),
    )
    report_path = write_text_atomic(
        out.with_name(out.name + ".report.json"), json.dumps(report, indent=2) + "\n"
    )
    log.info(
        "annotated %d/%d records: kept %d (%.0f%%), failed %d; wrote %s and %s",
        report["processed"], report["total"], report["kept"], 100 * (report["keep_rate"] or 0),
        report["failed"], out, report_path,
    )  # fmt: skip
    return report


def _run_concurrently(
    teacher: HTTPTeacher,
    one: Callable[[int], Outcome],
    pending: Sequence[int],
    record: Callable[[Outcome], None],
    workers: int,
    advance: Callable[[], None],
) -> None:
    """Run ``one(index)`` for every pending index on a thread pool, recording each outcome as it comes.

    On Ctrl-C the teacher closes its requests in flight, queued ones are dropped, the outcomes that
    had arrived are recorded, and the interrupt goes on.
    """
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = [pool.submit(one, i) for i in pending]
    recorded: set[Future[Outcome]] = set()
    try:
        for future in as_completed(futures):
            record(future.result())
            recorded.add(future)
            advance()
    except KeyboardInterrupt:
        teacher.abort()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future in recorded or not future.done() or future.cancelled() or future.exception():
                continue
            outcome = future.result()
            if not (outcome.status == "failed" and str(outcome.reason).startswith("interrupted")):
                record(outcome)
        log.warning("interrupted: requests in flight closed; outcomes so far are in the progress log")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ordered_record(record: dict[str, Any]) -> dict[str, Any]:
    """The Video-R1 CoT field order: ..., options, process, solution, path, data_source, extras."""
    order = ["problem_id", "problem", "data_type", "problem_type", "options", "process", "solution", "path"]
    ordered = {k: record[k] for k in order if k in record}
    ordered.update({k: v for k, v in record.items() if k not in ordered})
    return ordered


def filtering_report(
    outcomes: dict[int, dict[str, Any]],
    samples: Sequence[Sample],
    *,
    teacher: str,
    teacher_settings: dict[str, Any],
    threshold: float,
    reward_mode: str,
    seconds: float,
    retries: int,
) -> dict[str, Any]:
    """Counts by outcome (and failure kind), keep rate and mean reward, overall and per problem type."""
    lines = [outcomes[i] for i in range(len(samples)) if i in outcomes]
    statuses = Counter(line["status"] for line in lines)
    failure_kinds = Counter(
        str(line["reason"]).split(":", 1)[0] for line in lines if line["status"] == "failed"
    )
    rewards = [line["reward"] for line in lines if line["reward"] is not None]
    answered = statuses["kept"] + statuses["rejected"] + statuses["no_think"]
    by_type: dict[str, dict[str, Any]] = {}
    for line in lines:
        entry = by_type.setdefault(line["problem_type"], {"n": 0, "kept": 0, "rewards": []})
        entry["n"] += 1
        entry["kept"] += line["status"] == "kept"
        if line["reward"] is not None:
            entry["rewards"].append(line["reward"])
    for entry in by_type.values():
        values = entry.pop("rewards")
        entry["mean_reward"] = sum(values) / len(values) if values else None
    return {
        "teacher": teacher,
        "teacher_settings": teacher_settings,
        "threshold": threshold,
        "reward_mode": reward_mode,
        "total": len(samples),
        "processed": len(lines),
        "answered": answered,
        "kept": statuses["kept"],
        "rejected_low_reward": statuses["rejected"],
        "no_think": statuses["no_think"],
        "media_errors": statuses["media_error"],
        "failed": statuses["failed"],
        "failed_by_kind": dict(failure_kinds),
        "retries": retries,
        "keep_rate": statuses["kept"] / answered if answered else None,
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "by_problem_type": by_type,
        "seconds": seconds,
    }
