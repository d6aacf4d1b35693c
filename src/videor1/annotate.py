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

HTTP teacher: requests run concurrently (a thread pool of ``concurrency``). ``timeout_s`` bounds a
whole request (connect, wait, read the reply), not each socket read: a watchdog closes the socket at
the deadline, so a server trickling bytes cannot hold a worker. A reply larger than
``max_reply_bytes`` is refused unread (kind ``too_large``, not retried). Timeouts, connection errors,
HTTP 429/5xx and malformed replies (not JSON, no ``choices[0].message.content`` string) are retried
up to ``max_retries`` times with exponential backoff, then counted as failures by kind. Other HTTP
errors (4xx) fail at once. Ctrl-C closes every request in flight and stops at once; the outcomes
already received are in the progress log.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import io
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videor1.config import MediaConfig, SamplingConfig
from videor1.data.prompts import build_prompt
from videor1.models.known import QWEN2_5_VL_GEOMETRY
from videor1.rewards import accuracy_reward
from videor1.tags import think_block
from videor1.types import ImageInput, Sample, VideoClip
from videor1.utils.logging import get_logger, make_progress

log = get_logger(__name__)

TEACHER_SAMPLING = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=512)
"""The reference teacher's decoding (Video-R1, https://arxiv.org/abs/2503.21776)."""

FINAL_STATUSES = ("kept", "rejected", "no_think", "media_error")
"""Outcomes a rerun does not redo (``failed`` items are retried)."""

ANSWERED_STATUSES = ("kept", "rejected", "no_think")
"""Outcomes with a teacher reply, judged again on every run."""

MAX_REPLY_BYTES = 8 * 2**20
"""Largest HTTP reply read (8 MiB); a chat completion of 512 tokens is a few KiB."""


class TeacherError(RuntimeError):
    """A teacher request that failed for good; ``kind`` is timeout / connection / http / malformed."""

    def __init__(self, kind: str, detail: str, attempts: int) -> None:
        super().__init__(f"{kind} after {attempts} attempt(s): {detail}")
        self.kind = kind
        self.detail = detail
        self.attempts = attempts


class _Retryable(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class _Deadline:
    """Shuts a request's socket down when its time is up (``timeout``) or the run stops (``interrupted``)."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.fired: str | None = None
        self._timer = threading.Timer(seconds, self.fire, args=("timeout",))
        self._timer.daemon = True
        self._timer.start()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.fired is None:
                return
        self._shutdown(sock)

    def fire(self, reason: str) -> None:
        with self._lock:
            if self.fired is not None:
                return
            self.fired = reason
            sock = self._sock
        if sock is not None:
            self._shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv in the worker thread
        except OSError:
            pass  # already closed


class _DeadlineMixin:
    """urllib handler whose connections hand their socket to a :class:`_Deadline` (proxies still work)."""

    deadline: _Deadline

    def do_open(self, http_class, req, **kwargs):  # noqa: ANN001 - urllib's signature
        deadline = self.deadline

        class Connection(http_class):
            def connect(self) -> None:
                super().connect()
                deadline.attach(self.sock)

        return super().do_open(Connection, req, **kwargs)  # type: ignore[misc]


class _DeadlineHTTPHandler(_DeadlineMixin, urllib.request.HTTPHandler):
    pass


class _DeadlineHTTPSHandler(_DeadlineMixin, urllib.request.HTTPSHandler):
    pass


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    handlers = [_DeadlineHTTPHandler(), _DeadlineHTTPSHandler()]
    for handler in handlers:
        handler.deadline = deadline
    return urllib.request.build_opener(*handlers)


def encode_image(pixels: Any, image_format: str = "jpeg", quality: int = 90) -> str:
    """A ``data:`` URL of one ``[3, H, W]`` uint8 frame, JPEG or PNG, base64."""
    from PIL import Image

    array = pixels.permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    elif image_format == "png":
        Image.fromarray(array).save(buffer, format="PNG")
    else:
        raise ValueError(f"image_format must be 'jpeg' or 'png', got {image_format!r}")
    return f"data:image/{image_format};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_messages(sample: Sample, media: VideoClip | ImageInput, image_format: str = "jpeg") -> list[dict]:
    """OpenAI chat messages: one user turn, the frames (or the image) first, then the prompt text."""
    frames = media.frames if isinstance(media, VideoClip) else media.pixels.unsqueeze(0)
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": encode_image(frame, image_format)}} for frame in frames
    ]
    content.append({"type": "text", "text": build_prompt(sample, "eval")})
    return [{"role": "user", "content": content}]


def chat_completions_url(base: str) -> str:
    """``http://host:port/v1`` -> ``.../v1/chat/completions``; a full endpoint URL is kept."""
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


class HTTPTeacher:
    """An OpenAI-compatible chat-completions endpoint (vLLM, SGLang, a hosted API)."""

    concurrent = True
    geometry = QWEN2_5_VL_GEOMETRY
    """An HTTP teacher has no local model to read a geometry from: frames go as JPEGs (the server
    resizes them itself) at the sizes the reference sent its teacher, Qwen2.5-VL-72B (28 px per token)."""

    def __init__(
        self,
        url: str,
        *,
        api_model: str = "teacher",
        sampling: SamplingConfig | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        retry_backoff_s: float = 1.0,
        image_format: str = "jpeg",
        api_key: str | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        if timeout_s <= 0 or max_reply_bytes <= 0:
            raise ValueError(f"timeout_s and max_reply_bytes must be > 0, got {timeout_s}, {max_reply_bytes}")
        self.url = chat_completions_url(url)
        self.api_model = api_model
        self.sampling = sampling or TEACHER_SAMPLING
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.image_format = image_format
        self.api_key = api_key
        self.max_reply_bytes = max_reply_bytes
        self.retries = 0  # retried attempts over the whole run (read by the report)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._in_flight: set[_Deadline] = set()

    def describe(self) -> str:
        return self.url

    def identity(self) -> dict[str, Any]:
        """What decides this teacher's replies (part of every request's cache key)."""
        return {
            "url": self.url,
            "api_model": self.api_model,
            "sampling": dataclasses.asdict(self.sampling),
            "image_format": self.image_format,
        }

    def abort(self) -> None:
        """Stop: close every request in flight and fail every later one at once (Ctrl-C)."""
        self._stop.set()
        with self._lock:
            in_flight = list(self._in_flight)
        for deadline in in_flight:
            deadline.fire("interrupted")

    def _interrupted(self) -> TeacherError:
        return TeacherError("interrupted", "the run was interrupted", 1)

    def _request(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        deadline = _Deadline(self.timeout_s)
        with self._lock:
            self._in_flight.add(deadline)
        if self._stop.is_set():
            deadline.fire("interrupted")
        try:
            raw = self._read(_opener(deadline), request, deadline)
        finally:
            deadline.cancel()
            with self._lock:
                self._in_flight.discard(deadline)
        return parse_chat_reply(raw)

    def _read(
        self, opener: urllib.request.OpenerDirector, request: urllib.request.Request, deadline: _Deadline
    ) -> bytes:
        def stopped() -> Exception:
            if deadline.fired == "interrupted":
                return self._interrupted()
            return _Retryable("timeout", f"no complete reply within {self.timeout_s}s")

        try:
            with opener.open(request, timeout=self.timeout_s) as response:
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > self.max_reply_bytes:
                    raise self._too_large(f"Content-Length {length}")
                raw = response.read(self.max_reply_bytes + 1)
        except urllib.error.HTTPError as e:
            detail = f"HTTP {e.code} {e.reason}"
            if e.code == 429 or e.code >= 500:
                raise _Retryable("http", detail) from e
            raise TeacherError("http", detail, 1) from e
        except (OSError, http.client.HTTPException) as e:
            if deadline.fired:
                raise stopped() from e
            if isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError):
                raise _Retryable("timeout", f"no complete reply within {self.timeout_s}s") from e
            raise _Retryable("connection", str(getattr(e, "reason", e)) or type(e).__name__) from e
        if deadline.fired:  # the socket was shut mid-reply: what was read is cut short
            raise stopped()
        if len(raw) > self.max_reply_bytes:
            raise self._too_large("the body")
        return raw

    def _too_large(self, what: str) -> TeacherError:
        return TeacherError(
            "too_large",
            f"{what} exceeds the reply limit of {self.max_reply_bytes} bytes (--max-reply-mb); not read",
            1,
        )

    def complete(self, sample: Sample, media: VideoClip | ImageInput) -> str:
        """The teacher's reply text; raises :class:`TeacherError` when every attempt failed."""
        body = json.dumps(
            {
                "model": self.api_model,
                "messages": chat_messages(sample, media, self.image_format),
                "temperature": self.sampling.temperature,
                "top_p": self.sampling.top_p,
                "max_tokens": self.sampling.max_new_tokens,
            }
        ).encode("utf-8")
        last: _Retryable | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    self.retries += 1
                if self._stop.wait(self.retry_backoff_s * 2 ** (attempt - 1)):
                    raise self._interrupted()
            elif self._stop.is_set():
                raise self._interrupted()
            try:
                return self._request(body)
            except _Retryable as e:
                last = e
                log.debug("%s attempt %d: %s: %s", sample.source, attempt + 1, e.kind, e.detail)
        assert last is not None
        raise TeacherError(last.kind, last.detail, self.max_retries + 1)


def parse_chat_reply(raw: bytes) -> str:
    """``choices[0].message.content`` of a chat-completions reply; malformed replies raise retryably."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _Retryable("malformed", f"reply is not JSON ({e}): {raw[:80]!r}") from e
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise _Retryable("malformed", f"reply has no choices[0].message.content: {str(data)[:120]}") from e
    if not isinstance(content, str):
        raise _Retryable("malformed", f"choices[0].message.content is {type(content).__name__}, not text")
    return content


class LocalTeacher:
    """A local checkpoint generating in batches through :class:`videor1.infer.Predictor`."""

    concurrent = False

    def __init__(
        self,
        model_dir: str | Path,
        *,
        media: MediaConfig,
        sampling: SamplingConfig | None = None,
        device: str | None = None,
        dtype: str = "float32",
    ) -> None:
        from videor1.infer import Predictor

        self.model_dir = str(model_dir)
        self.dtype = dtype
        self.predictor = Predictor(
            model_dir, media=media, sampling=sampling or TEACHER_SAMPLING, device=device, dtype=dtype
        )
        self.geometry = self.predictor.geometry  # the checkpoint's own: 28 or 32 px per visual token

    def describe(self) -> str:
        return self.model_dir

    def identity(self) -> dict[str, Any]:
        """What decides this teacher's replies (part of every request's cache key)."""
        return {
            "model": str(Path(self.model_dir).resolve()),
            "sampling": dataclasses.asdict(self.predictor.sampling),
            "dtype": self.dtype,
        }

    def complete_batch(self, samples: Sequence[Sample], media: Sequence[VideoClip | ImageInput]) -> list[str]:
        return self.predictor.generate(samples, media)


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


def make_teacher(
    teacher: str,
    *,
    media: MediaConfig,
    sampling: SamplingConfig | None = None,
    api_model: str = "teacher",
    timeout_s: float = 120.0,
    max_retries: int = 2,
    image_format: str = "jpeg",
    api_key_env: str | None = None,
    device: str | None = None,
    dtype: str = "float32",
    retry_backoff_s: float = 1.0,
    max_reply_bytes: int = MAX_REPLY_BYTES,
) -> HTTPTeacher | LocalTeacher:
    """An :class:`HTTPTeacher` for an ``http(s)://`` URL, else a :class:`LocalTeacher` for a directory."""
    from videor1.config import ConfigError

    if re.match(r"^https?://", teacher):
        api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not api_key:
            raise ConfigError(f"--api-key-env {api_key_env}: that environment variable is not set")
        return HTTPTeacher(
            teacher,
            api_model=api_model,
            sampling=sampling,
            timeout_s=timeout_s,
            max_retries=max_retries,
            retry_backoff_s=retry_backoff_s,
            image_format=image_format,
            api_key=api_key,
            max_reply_bytes=max_reply_bytes,
        )
    if not Path(teacher).is_dir():
        raise FileNotFoundError(f"teacher {teacher!r} is neither an http(s):// URL nor a model directory")
    return LocalTeacher(teacher, media=media, sampling=sampling, device=device, dtype=dtype)
