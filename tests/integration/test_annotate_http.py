"""CoT annotation against a real HTTP server on 127.0.0.1: a scripted OpenAI-compatible responder.

Each record's question is tagged ``[case N]``; the server answers case N from a script (a reply per
attempt: a correct trace, a wrong one, one without <think>, non-JSON, JSON without choices, a
sleep past the client timeout, HTTP 500 or 400). The test checks what is kept, how failures are
counted, that frames travel as image_url parts, and that a rerun retries only the failures.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from videor1.annotate import HTTPTeacher, annotate, chat_completions_url
from videor1.config import MediaConfig

CASE_RE = re.compile(r"\[case (\d+)\]")


class ScriptedTeacher:
    """The server's brain: ``script[case]`` is a list of behaviours, one per attempt (last repeats)."""

    def __init__(self, answers: dict[int, str]) -> None:
        self.answers = answers  # case -> ground-truth answer text
        self.script: dict[int, list[str]] = {}
        self.requests: Counter[int] = Counter()
        self.image_parts: dict[int, int] = {}
        self.bodies: dict[int, dict] = {}
        self.lock = threading.Lock()

    def behaviour(self, case: int) -> str:
        with self.lock:
            attempt = self.requests[case]
            self.requests[case] += 1
        steps = self.script.get(case, ["correct"])
        return steps[min(attempt, len(steps) - 1)]


def _make_handler(brain: ScriptedTeacher):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):  # noqa: N802 - http.server API
            if self.path != "/v1/chat/completions":
                self._send(404, b'{"error": "not found"}')
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            content = body["messages"][0]["content"]
            text = content[-1]["text"]
            case = int(CASE_RE.search(text).group(1))
            with brain.lock:
                brain.image_parts[case] = sum(1 for part in content if part["type"] == "image_url")
                brain.bodies[case] = body
            what = brain.behaviour(case)
            answer = brain.answers[case]
            replies = {
                "correct": f"<think>Let me think. The answer is {answer}.</think><answer>{answer}</answer>",
                "wrong": "<think>Hmm, hard to say.</think><answer>zzzz</answer>",
                "no_think": f"<answer>{answer}</answer>",
            }
            if what in replies:
                reply = {"choices": [{"message": {"role": "assistant", "content": replies[what]}}]}
                self._send(200, json.dumps(reply).encode())
            elif what == "not_json":
                self._send(200, b"<html>gateway hiccup</html>")
            elif what == "no_choices":
                self._send(200, b'{"choices": []}')
            elif what == "sleep":
                time.sleep(2.5)  # past the client's 1 s timeout: the client has hung up by now
                try:
                    self._send(200, b'{"choices": []}')
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif what == "500":
                self._send(500, b'{"error": "overloaded"}')
            elif what == "400":
                self._send(400, b'{"error": "bad request"}')
            else:
                raise AssertionError(what)

    return Handler


@pytest.fixture
def server():
    holder = {}

    def start(brain: ScriptedTeacher) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(brain))
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        holder["httpd"] = httpd
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    if "httpd" in holder:
        holder["httpd"].shutdown()
        holder["httpd"].server_close()


@pytest.fixture
def tagged_data(synth_dir, tmp_path):
    """synth test.json with every question tagged ``[case i]`` plus one record with a corrupt video."""
    root = tmp_path / "data"
    shutil.copytree(synth_dir, root)
    records = json.loads((root / "test.json").read_text())
    broken = dict(records[0], problem_id=10_000, path="./videos/broken.mp4")
    (root / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    records.append(broken)
    answers = {}
    for i, rec in enumerate(records):
        rec["problem"] = f"[case {i}] " + rec["problem"]
        answers[i] = re.fullmatch(r"<answer>(.*)</answer>", rec["solution"]).group(1)
    (root / "tagged.json").write_text(json.dumps(records))
    return root, records, answers


def test_chat_completions_url():
    assert chat_completions_url("http://h:1/v1") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h:1/v1/chat/completions/") == "http://h:1/v1/chat/completions"


def test_http_teacher_keeps_correct_counts_failures_and_resumes(server, tagged_data, tmp_path):
    root, records, answers = tagged_data
    brain = ScriptedTeacher(answers)
    brain.script = {
        1: ["wrong"],
        2: ["no_think"],
        3: ["not_json", "correct"],
        4: ["not_json"],
        5: ["sleep"],
        6: ["500", "correct"],
        7: ["no_choices"],
        8: ["400"],
    }
    url = server(brain)
    teacher = HTTPTeacher(url, api_model="scripted", timeout_s=1.0, max_retries=1, retry_backoff_s=0.0)
    out = tmp_path / "cot.json"
    report = annotate(
        teacher, root / "tagged.json", root, out, media=MediaConfig(), threshold=0.6, concurrency=4
    )

    n = len(records)  # 12 synth items + 1 broken
    kept_cases = {0, 3, 6, 9, 10, 11}
    assert report["total"] == n and report["processed"] == n
    assert report["kept"] == len(kept_cases)
    assert report["rejected_low_reward"] == 1  # case 1
    assert report["no_think"] == 1  # case 2
    assert report["media_errors"] == 1  # the corrupt video, never sent
    assert report["failed"] == 4
    assert report["failed_by_kind"] == {"malformed": 2, "timeout": 1, "http": 1}
    assert report["answered"] == len(kept_cases) + 2
    assert report["keep_rate"] == pytest.approx(len(kept_cases) / (len(kept_cases) + 2))
    # attempts: retried once after timeout / malformed / 500, never after a 400, never for bad media
    assert brain.requests[3] == 2 and brain.requests[4] == 2 and brain.requests[5] == 2
    assert brain.requests[6] == 2 and brain.requests[7] == 2 and brain.requests[8] == 1
    assert n - 1 not in brain.requests
    assert report["retries"] == 5

    # frames travel as image_url parts: 8-frame synth videos at 2 fps -> 8 frames; images -> 1
    for case, rec in enumerate(records[:-1]):
        if case in brain.image_parts:
            assert brain.image_parts[case] == (8 if rec["data_type"] == "video" else 1), case
    body = brain.bodies[0]
    assert body["model"] == "scripted" and body["temperature"] == 1.0 and body["max_tokens"] == 512
    assert body["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")

    cot = json.loads(out.read_text())
    assert sorted(
        records.index(next(r for r in records if r["problem_id"] == c["problem_id"])) for c in cot
    ) == sorted(kept_cases)
    for rec in cot:
        original = next(r for r in records if r["problem_id"] == rec["problem_id"])
        assert rec["solution"] == original["solution"]
        assert rec["process"].startswith("<think>") and rec["process"].endswith("</think>")
        assert list(rec)[:7] == [
            "problem_id",
            "problem",
            "data_type",
            "problem_type",
            "options",
            "process",
            "solution",
        ]
    saved_report = json.loads((tmp_path / "cot.json.report.json").read_text())
    assert saved_report["kept"] == report["kept"]

    # Rerun through the CLI with a healthy server: only the 4 failures are asked again.
    before = Counter(brain.requests)
    brain.script = {}
    from videor1.cli import main

    rc = main(
        [
            "-q", "annotate", "--teacher", url, "--api-model", "scripted", "--data", str(root / "tagged.json"),
            "--media-root", str(root), "--out", str(out), "--timeout", "5", "--retries", "0",
        ]
    )  # fmt: skip
    assert rc == 0
    asked_again = {case for case in brain.requests if brain.requests[case] > before[case]}
    assert asked_again == {4, 5, 7, 8}
    cot = json.loads(out.read_text())
    ids = [rec["problem_id"] for rec in cot]
    assert len(ids) == len(set(ids)) == len(kept_cases) + 4
    final = json.loads((tmp_path / "cot.json.report.json").read_text())
    assert (final["kept"], final["failed"], final["media_errors"]) == (len(kept_cases) + 4, 0, 1)
    progress_lines = (tmp_path / "cot.json.progress.jsonl").read_text().splitlines()
    assert len(progress_lines) == n + 4  # one line per outcome; failures got a second, final one
    assert defaultdict(int, Counter(json.loads(ln)["status"] for ln in progress_lines))["failed"] == 4


def test_local_teacher_path(tiny_model_dir, tagged_data, tmp_path):
    """A local checkpoint as teacher: batched generation, every record judged, resumable."""
    from videor1.annotate import make_teacher
    from videor1.config import SamplingConfig

    root, records, _ = tagged_data
    media = MediaConfig(video_min_pixels=3136, video_max_pixels=16 * 28 * 28)
    teacher = make_teacher(
        str(tiny_model_dir), media=media, sampling=SamplingConfig(max_new_tokens=6), device="cpu"
    )
    out = tmp_path / "local.json"
    report = annotate(teacher, root / "tagged.json", root, out, media=media, batch_size=3, limit=5)
    # a random-init model writes no <think> block: all 5 are answered and none is kept
    assert (report["total"], report["processed"], report["answered"], report["kept"]) == (5, 5, 5, 0)
    assert report["no_think"] + report["rejected_low_reward"] == 5
    assert json.loads(out.read_text()) == []
    again = annotate(teacher, root / "tagged.json", root, out, media=media, batch_size=3, limit=5)
    assert again["processed"] == 5
    assert len((tmp_path / "local.json.progress.jsonl").read_text().splitlines()) == 5  # nothing redone
