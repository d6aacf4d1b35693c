"""Teachers for CoT annotation: a local checkpoint or an OpenAI-compatible chat-completions endpoint.

Both answer one prompt per record (:func:`videor1.data.prompts.build_prompt`, evaluation variant) and
report :meth:`identity`, what decides their replies (part of every request's cache key in
:mod:`videor1.annotate`).

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
import http.client
import io
import json
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from videor1.config import MediaConfig, SamplingConfig
from videor1.data.prompts import build_prompt
from videor1.models.known import QWEN2_5_VL_GEOMETRY
from videor1.types import ImageInput, Sample, VideoClip
from videor1.utils.logging import get_logger

log = get_logger(__name__)

TEACHER_SAMPLING = SamplingConfig(temperature=1.0, top_p=0.95, max_new_tokens=512)
"""The reference teacher's decoding (Video-R1, https://arxiv.org/abs/2503.21776)."""

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
