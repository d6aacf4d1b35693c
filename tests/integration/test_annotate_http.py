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

from videor1.annotate import annotate
from videor1.config import MediaConfig
from videor1.teachers import HTTPTeacher, chat_completions_url

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
        self.release = threading.Event()  # set at teardown: every slow behaviour ends

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
            elif what == "dribble":  # one byte every 50 ms: each socket read is quick, the reply is not
                payload = json.dumps(
                    {"choices": [{"message": {"content": f"<think>ok</think><answer>{answer}</answer>"}}]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    for byte in payload:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        if brain.release.wait(0.05):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif what in ("huge", "huge_unsized"):  # 3 MiB of valid reply, with or without a length
                content = f"<think>{'x' * 3 * 2**20}</think><answer>{answer}</answer>"
                payload = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
                self.send_response(200)
                if what == "huge":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            elif what == "hang":  # no reply until teardown (at most 20 s)
                brain.release.wait(20)
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
        holder.setdefault("servers", []).append(httpd)
        holder.setdefault("brains", []).append(brain)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for brain in holder.get("brains", []):
        brain.release.set()
    for httpd in holder.get("servers", []):
        httpd.shutdown()
        httpd.server_close()


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


@pytest.fixture
def free_form_data(synth_dir, tmp_path):
    """Three image records turned free-form: a teacher's answer 'the red square moves right' earns a
    partial ROUGE score against 'the red square moves left' (kept at threshold 0.3, not at 0.9)."""
    root = tmp_path / "ff"
    root.mkdir()
    shutil.copytree(synth_dir / "images", root / "images")
    images = [r for r in json.loads((synth_dir / "test.json").read_text()) if r["data_type"] == "image"][:3]
    for i, rec in enumerate(images):
        rec.update(
            problem=f"[case {i}] Where does the red square move?",
            problem_type="free-form",
            options=[],
            solution="<answer>the red square moves left</answer>",
        )
    (root / "ff.json").write_text(json.dumps(images))
    return root, {i: "the red square moves right" for i in range(len(images))}


def _teacher(url, **kwargs):
    return HTTPTeacher(url, api_model="scripted", max_retries=0, retry_backoff_s=0.0, **kwargs)


def test_a_rerun_rejudges_stored_replies_and_asks_again_for_another_teacher(server, free_form_data, tmp_path):
    root, answers = free_form_data
    brain = ScriptedTeacher(answers)
    url = server(brain)
    out = tmp_path / "cot.json"
    first = annotate(_teacher(url), root / "ff.json", root, out, threshold=0.3)
    assert (first["kept"], sum(brain.requests.values())) == (3, 3)

    # another threshold: no new request, the stored replies judged again, the report says so
    again = annotate(_teacher(url), root / "ff.json", root, out, threshold=0.9)
    assert sum(brain.requests.values()) == 3
    assert (again["threshold"], again["kept"], again["rejected_low_reward"]) == (0.9, 0, 3)
    assert json.loads(out.read_text()) == []

    # another teacher URL (or API model): asked again
    other = ScriptedTeacher({i: "the red square moves left" for i in answers})
    other_url = server(other)
    third = annotate(_teacher(other_url), root / "ff.json", root, out, threshold=0.9)
    assert sum(other.requests.values()) == 3 and third["kept"] == 3
    assert third["teacher"] == chat_completions_url(other_url)
    assert third["teacher_settings"]["url"] == chat_completions_url(other_url)
    renamed = annotate(
        HTTPTeacher(other_url, api_model="renamed", max_retries=0), root / "ff.json", root, out, threshold=0.9
    )
    assert sum(other.requests.values()) == 6 and renamed["teacher_settings"]["api_model"] == "renamed"


def test_the_timeout_bounds_the_whole_request_not_each_read(server, free_form_data, tmp_path):
    root, answers = free_form_data
    brain = ScriptedTeacher(answers)
    brain.script = {i: ["dribble"] for i in answers}  # ~8 s per reply at one byte every 50 ms
    url = server(brain)
    started = time.monotonic()
    report = annotate(
        _teacher(url, timeout_s=1.0), root / "ff.json", root, tmp_path / "cot.json", concurrency=3
    )
    elapsed = time.monotonic() - started
    assert report["failed_by_kind"] == {"timeout": 3}
    assert elapsed < 5.0, elapsed


@pytest.mark.parametrize("behaviour", ["huge", "huge_unsized"])
def test_a_reply_over_the_size_limit_fails_unread(server, free_form_data, tmp_path, behaviour):
    root, answers = free_form_data
    brain = ScriptedTeacher(answers)
    brain.script = {i: [behaviour] for i in answers}
    url = server(brain)
    teacher = _teacher(url, max_reply_bytes=2**20)
    report = annotate(teacher, root / "ff.json", root, tmp_path / "cot.json", concurrency=3, threshold=0.3)
    assert report["failed_by_kind"] == {"too_large": 3}
    assert sum(brain.requests.values()) == 3  # not retried
    lines = (tmp_path / "cot.json.progress.jsonl").read_text().splitlines()
    assert "exceeds the reply limit of 1048576 bytes" in json.loads(lines[0])["reason"]
    big_enough = annotate(
        _teacher(url, max_reply_bytes=8 * 2**20), root / "ff.json", root, tmp_path / "cot.json", threshold=0.0
    )
    assert big_enough["failed"] == 0


def test_ctrl_c_stops_at_once_and_keeps_the_outcomes_received(server, free_form_data, tmp_path, request):
    import os
    import signal

    # Ctrl-C as at a terminal, whatever the suite inherited (a shell's background job ignores SIGINT).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    root, answers = free_form_data
    brain = ScriptedTeacher(answers)
    brain.script = {1: ["hang"], 2: ["hang"]}  # case 0 answers, the others hold their workers
    url = server(brain)
    out = tmp_path / "cot.json"
    progress = tmp_path / "cot.json.progress.jsonl"
    sent = {}

    def interrupt_after_first_outcome():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (progress.exists() and progress.read_text().strip()):
            time.sleep(0.05)
        while time.monotonic() < deadline and sum(brain.requests.values()) < 3:
            time.sleep(0.05)
        sent["at"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_after_first_outcome, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        annotate(_teacher(url, timeout_s=60.0), root / "ff.json", root, out, concurrency=3, threshold=0.3)
    assert time.monotonic() - sent["at"] < 3.0
    saved = [json.loads(line) for line in progress.read_text().splitlines()]
    assert [(line["index"], line["status"]) for line in saved] == [(0, "kept")]

    brain.script = {}
    before = Counter(brain.requests)
    report = annotate(_teacher(url), root / "ff.json", root, out, concurrency=3, threshold=0.3)
    assert report["kept"] == 3
    assert {c for c in brain.requests if brain.requests[c] > before[c]} == {1, 2}


def test_out_must_be_annotates_own_and_is_checked_before_any_request(
    server, free_form_data, tmp_path, capsys
):
    from videor1.cli import main

    root, answers = free_form_data
    brain = ScriptedTeacher(answers)
    url = server(brain)
    data = root / "ff.json"
    original = data.read_text()
    theirs = tmp_path / "notes.json"
    theirs.write_text("my notes")
    folder = tmp_path / "folder"
    folder.mkdir()
    base = ["-q", "annotate", "--teacher", url, "--data", str(data), "--media-root", str(root)]
    for out, says in (
        (data, "is the input --data file"),
        (theirs, "did not write"),
        (folder, "is a directory"),
    ):
        assert main([*base, "--out", str(out)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert str(out) in err and says in err and "Traceback" not in err
    assert sum(brain.requests.values()) == 0
    assert data.read_text() == original and theirs.read_text() == "my notes"
    assert list(folder.iterdir()) == [] and not (tmp_path / "folder.tmp").exists()
    # its own earlier output is resumed
    mine = tmp_path / "cot.json"
    assert main([*base, "--out", str(mine), "--threshold", "0.3"]) == 0
    assert main([*base, "--out", str(mine), "--threshold", "0.3"]) == 0
    assert sum(brain.requests.values()) == 3


def test_bad_flags_and_a_corrupt_progress_log_are_one_message(server, free_form_data, tmp_path, capsys):
    from videor1.cli import main

    root, answers = free_form_data
    brain = ScriptedTeacher(answers)
    url = server(brain)
    out = tmp_path / "cot.json"
    base = ["-q", "annotate", "--teacher", url, "--data", str(root / "ff.json"), "--out", str(out)]
    for flag, value, says in (("--timeout", "0", "timeout_s"), ("--concurrency", "0", "concurrency")):
        assert main([*base, flag, value]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert says in err and "Traceback" not in err
    progress = tmp_path / "cot.json.progress.jsonl"
    progress.write_bytes(b'{"index": 0, "status": "kept"}\n\xff\xfe\n')
    assert main(base) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(progress) in err and "not UTF-8" in err and "Traceback" not in err
    assert sum(brain.requests.values()) == 0
