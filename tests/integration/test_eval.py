"""``evaluate`` on procedural benchmark files with the tiny model: resume after a kill, both scorings,
broken media counted as errors, shuffled frames, the CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from videor1.config import EvalConfig
from videor1.eval.runner import EvalResumeError, evaluate
from videor1.infer import Predictor, resolve_media
from videor1.models.known import QWEN2_5_VL_GEOMETRY

SMALL = {"max_pixels": 16 * 28 * 28, "max_new_tokens": 8, "batch_size": 4}  # keep CPU runs short


def run_eval(model, bench, media_root=None, *, out_dir, label=None, retry_errors=False, **settings):
    """``evaluate`` with an EvalConfig built from keyword settings (frames / max_pixels: the media budget)."""
    explicit = {}
    if settings.get("frames") is not None:
        explicit["nframes"] = settings.pop("frames")
    if settings.get("max_pixels") is not None:
        explicit["video_max_pixels"] = settings.pop("max_pixels")
    max_new_tokens = settings.pop("max_new_tokens", 1024)
    cfg = EvalConfig(benches=[str(bench)], output_dir=str(out_dir), **settings)
    cfg.sampling.max_new_tokens = max_new_tokens
    media, _ = resolve_media(None, explicit)
    return evaluate(model, cfg, media=media, media_root=media_root, label=label, retry_errors=retry_errors)


@pytest.fixture(scope="module")
def bench_dir(synth_dir, tmp_path_factory):
    """synth test.json (12 items, all five problem types) plus one record whose video is corrupt."""
    root = tmp_path_factory.mktemp("bench")
    shutil.copytree(synth_dir, root, dirs_exist_ok=True)
    records = json.loads((root / "test.json").read_text())
    (root / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated garbage")
    records.insert(5, dict(records[0], problem_id=999, path="./videos/broken.mp4"))
    (root / "test.json").write_text(json.dumps(records))
    return root


@pytest.fixture(scope="module")
def predictor(tiny_model_dir):
    return Predictor(tiny_model_dir, device="cpu")


class KilledAfter(Predictor):
    """Generates like ``inner`` but dies (KeyboardInterrupt, as on SIGINT) on call number ``calls``."""

    def __init__(self, inner: Predictor, calls: int) -> None:
        super().__init__(inner.model, inner.processor)
        self.source = inner.source  # the same checkpoint, as far as the resume check is concerned
        self.calls = calls

    def generate(self, samples, media):
        self.calls -= 1
        if self.calls == 0:
            raise KeyboardInterrupt
        return super().generate(samples, media)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _scores(summary):
    return {name: {k: v for k, v in s.items() if k != "timing"} for name, s in summary["benchmarks"].items()}


def test_resume_after_kill_matches_uninterrupted_run(predictor, bench_dir, tmp_path):
    bench = bench_dir / "test.json"
    full = run_eval(predictor, bench, out_dir=tmp_path / "full", label="tiny", **SMALL)
    s = full["benchmarks"]["test"]
    assert (s["n"], s["done"], s["scored"], s["errors"], s["complete"]) == (13, 13, 12, 1, True)
    assert s["error_kinds"] == {"media": 1}
    (error,) = s["error_items"]
    assert error["index"] == 5 and error["problem_id"] == 999 and "broken.mp4" in error["reason"]
    assert set(s["by_family"]) >= {"direction", "ocr_reveal", "motion_caption", "event_time"}
    assert sum(g["n"] for g in s["by_family"].values()) == 12  # the error is excluded everywhere

    # Killed during the third batch: two chunks (8 records) are on disk, then a kill mid-write
    # leaves half a line behind.
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_eval(KilledAfter(predictor, calls=3), bench, out_dir=out, label="tiny", **SMALL)
    preds = out / "predictions.jsonl"
    assert len(_lines(preds)) == 8
    with preds.open("a") as f:
        f.write('{"key": "test[8]", "bench": "te')
    resumed = run_eval(predictor, bench, out_dir=out, label="tiny", **SMALL)

    assert _scores(resumed) == _scores(full)
    assert resumed["benchmarks"]["test"]["timing"]["generated"] == 5  # records 8..12 only
    lines = _lines(preds)
    keys = [line["key"] for line in lines]
    assert len(keys) == len(set(keys)) == 13
    by_key = {line["key"]: line for line in _lines(tmp_path / "full" / "predictions.jsonl")}
    assert all(line == by_key[line["key"]] for line in lines)  # same outputs, same scores
    assert (out / "summary.md").read_text().count("| test |") == 1

    # retrying errors replaces the error line (the file is still corrupt), never duplicates it
    retried = run_eval(predictor, bench, out_dir=out, label="tiny", retry_errors=True, **SMALL)
    assert _scores(retried) == _scores(full) and retried["benchmarks"]["test"]["timing"]["generated"] == 0
    assert sorted(line["key"] for line in _lines(preds)) == sorted(keys)

    # resuming with other settings refuses to mix predictions
    with pytest.raises(EvalResumeError, match="media"):
        run_eval(predictor, bench, out_dir=out, label="tiny", frames=4, **SMALL)


def test_batched_generation_equals_one_at_a_time(predictor, bench_dir, tmp_path):
    """Left padding (and the mRoPE positions under it) must not change what is generated."""
    kwargs = dict(SMALL, greedy=True, max_new_tokens=12, label="tiny")
    run_eval(predictor, bench_dir / "test.json", out_dir=tmp_path / "one", **dict(kwargs, batch_size=1))
    run_eval(predictor, bench_dir / "test.json", out_dir=tmp_path / "four", **dict(kwargs, batch_size=4))
    one, four = (
        _lines(tmp_path / "one" / "predictions.jsonl"),
        _lines(tmp_path / "four" / "predictions.jsonl"),
    )
    assert [line.get("raw_output") for line in one] == [line.get("raw_output") for line in four]
    assert sum(1 for line in one if line["status"] == "ok") == 12


class Scripted(Predictor):
    """No model: answers each record from a table keyed by problem_id."""

    geometry = QWEN2_5_VL_GEOMETRY  # media sized as for Qwen2/2.5-VL

    def __init__(self, answers):
        self.model = None
        self.answers = answers

    def generate(self, samples, media):
        return [self.answers[s.problem_id] for s in samples]


def test_both_scorings_differ_where_rules_differ(bench_dir, tmp_path):
    records = json.loads((bench_dir / "test.json").read_text())
    records = [r for r in records if r["problem_id"] != 999]
    mc = [r for r in records if r["problem_type"] == "multiple choice"][:3]
    (reg,) = [r for r in records if r["problem_type"] == "regression"]
    tasks = ["object_rel_direction_easy", "object_rel_direction_hard", "route_planning"]
    vsi = [dict(r, question_type=t) for r, t in zip(mc, tasks)] + [dict(reg, question_type="object_counting")]
    path = bench_dir / "eval_vsibench.json"
    path.write_text(json.dumps(vsi))

    def letter(r):
        return r["solution"][len("<answer>") : -len("</answer>")]

    gt = float(letter(reg))
    answers = {
        mc[0]["problem_id"]: f"<think>t</think><answer>{letter(mc[0])}</answer>",  # exact: 1 / 1 / 1
        mc[1]["problem_id"]: f"<answer>{letter(mc[1]).lower()}</answer>",  # lower-case: 0 / 1 / lenient 1
        mc[2]["problem_id"]: f"<answer>({letter(mc[2])})</answer>",  # bracketed: 0 / 0 / lenient 1
        reg["problem_id"]: f"<answer>{gt * 1.5:g}</answer>",  # rel error 0.5: MRA< = 0, MRA<= = 0.1
    }
    summary = run_eval(Scripted(answers), path, out_dir=tmp_path / "vsi", label="scripted", **SMALL)
    s = summary["benchmarks"]["vsibench"]
    assert s["display"] == "VSI-Bench" and s["scored"] == 4 and s["errors"] == 0
    # reference: acc = 1/3, MRA = 0 -> (1/3 + 0) / 2
    assert s["video-r1"]["accuracy"] == pytest.approx(1 / 3)
    assert s["video-r1"]["mra"] == 0.0
    assert s["video-r1"]["overall"] == pytest.approx(1 / 6)
    # official: rel. direction = mean(easy 1, hard 1) = 1, route planning 0, counting 0.1 -> 1.1 / 3
    assert s["official"]["accuracy"] == pytest.approx(2 / 3)
    assert s["official"]["mra"] == pytest.approx(0.1)
    assert s["official"]["by_category"] == pytest.approx(
        {"object_counting": 0.1, "object_rel_direction": 1.0, "route_planning": 0.0}
    )
    assert s["official"]["overall"] == pytest.approx(1.1 / 3)
    assert s["official"]["accuracy_lenient"] == pytest.approx(1.0)
    assert s["missing_answer_tag"] == 0 and s["parse_failures"] == 0
    md = (tmp_path / "vsi" / "summary.md").read_text()
    assert "| VSI-Bench | 4 | 4 | 0 | 0 | 0 | 33.3 | 0.0 | 16.7 | 66.7 | 100.0 | 10.0 | 36.7 |" in md


def test_resume_refuses_a_changed_benchmark_file(bench_dir, tmp_path):
    records = json.loads((bench_dir / "test.json").read_text())[:3]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(records))
    scripted = Scripted(
        {r["problem_id"]: "<answer>A</answer>" for r in records} | {1234: "<answer>A</answer>"}
    )
    run_eval(scripted, path, bench_dir, out_dir=tmp_path / "out", label="s", limit=2, **SMALL)
    records[1]["problem_id"] = 1234
    path.write_text(json.dumps(records))
    with pytest.raises(EvalResumeError, match="changed"):
        run_eval(scripted, path, bench_dir, out_dir=tmp_path / "out", label="s", **SMALL)


class Recording(Predictor):
    """Generates like ``inner`` and keeps the media it was given, by problem_id."""

    def __init__(self, inner: Predictor) -> None:
        super().__init__(inner.model, inner.processor)
        self.seen = {}

    def generate(self, samples, media):
        self.seen.update({s.problem_id: m for s, m in zip(samples, media)})
        return super().generate(samples, media)


def test_shuffled_frames_reach_the_model_and_are_reproducible(predictor, bench_dir, tmp_path):
    import torch

    from videor1.data.media import load_media
    from videor1.data.records import load_records

    kwargs = dict(SMALL, limit=4, shuffle_frames=True, seed=3, label="tiny")
    recording = Recording(predictor)
    first = run_eval(recording, bench_dir / "test.json", out_dir=tmp_path / "a", **kwargs)
    again = run_eval(predictor, bench_dir / "test.json", out_dir=tmp_path / "b", **kwargs)
    assert first["run"]["shuffle_frames"] is True
    assert _scores(again) == _scores(first)
    lines_a, lines_b = (
        _lines(tmp_path / "a" / "predictions.jsonl"),
        _lines(tmp_path / "b" / "predictions.jsonl"),
    )
    assert len(lines_a) == 4
    samples = load_records(bench_dir / "test.json", limit=4)
    for a, b, sample in zip(lines_a, lines_b, samples):
        order = a["frame_order"]
        assert a["shuffled"] and sorted(order) == list(range(8)) and order != list(range(8))
        assert order == b["frame_order"]
        # the model saw the ordered clip's frames in the recorded order, i.e. different inputs
        ordered = load_media(sample, bench_dir, recording.media, geometry=recording.geometry)
        seen = recording.seen[sample.problem_id]
        assert torch.equal(seen.frames, ordered.frames[torch.tensor(order)])
        assert not torch.equal(seen.frames, ordered.frames)
    assert len({tuple(a["frame_order"]) for a in lines_a}) > 1  # each item has its own permutation


def test_eval_command(tiny_model_dir, bench_dir, tmp_path, capsys):
    from videor1.cli import main

    out = tmp_path / "cli"
    argv = [
        "-q", "eval", "--model", str(tiny_model_dir), "--label", "base", "--model", str(tiny_model_dir),
        "--label", "again", "--bench", str(bench_dir / "test.json"), "--limit", "2",
        "--max-pixels", str(16 * 28 * 28), "--max-new-tokens", "4", "--frames", "4", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "base / test: n=2 scored=2 errors=0" in printed and "again / test: n=2" in printed
    summary = json.loads((out / "base" / "summary.json").read_text())
    assert summary["run"]["media"]["nframes"] == 4
    assert summary["run"]["media"]["video_max_pixels"] == 16 * 28 * 28
    assert all(
        line["num_frames"] == 4 for line in _lines(out / "base" / "predictions.jsonl") if "num_frames" in line
    )
    assert "| base |" in (out / "combined.md").read_text() and (out / "combined.png").stat().st_size > 0
    assert _lines(out / "base" / "predictions.jsonl") == _lines(out / "again" / "predictions.jsonl")


@pytest.mark.slow
def test_sigkill_of_the_cli_then_rerun(tiny_model_dir, bench_dir, tmp_path):
    """A real `videor1 eval` process killed with SIGKILL mid-run; the rerun completes without duplicates."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    argv = [
        sys.executable, "-m", "videor1.cli", "-q", "eval", "--model", str(tiny_model_dir), "--label", "tiny",
        "--bench", str(bench_dir / "test.json"), "--batch-size", "1", "--max-new-tokens", "48",
        "--max-pixels", str(16 * 28 * 28), "--out", str(out), "eval.max_error_rate=0.1",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    preds = out / "predictions.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if preds.exists() and len(preds.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (
        f"eval finished or failed before the kill: {proc.stderr.read().decode()[-2000:]}"
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(_lines(preds))
    assert 3 <= done_before < 13

    full = run_eval(
        str(tiny_model_dir), bench_dir / "test.json", out_dir=tmp_path / "full", label="tiny",
        batch_size=1, max_new_tokens=48, max_pixels=16 * 28 * 28,
    )  # fmt: skip
    rc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert rc.returncode == 0, rc.stderr.decode()[-2000:]
    resumed = json.loads((out / "summary.json").read_text())
    assert _scores(resumed) == _scores(full)
    assert resumed["benchmarks"]["test"]["timing"]["generated"] == 12 - (done_before - (done_before > 5))
    keys = [line["key"] for line in _lines(preds)]
    assert len(keys) == len(set(keys)) == 13


def test_eval_command_fails_when_items_error(tiny_model_dir, bench_dir, tmp_path, capsys):
    from videor1.cli import main

    argv = [
        "-q", "eval", "--model", str(tiny_model_dir), "--bench", str(bench_dir / "test.json"), "--limit", "6",
        "--max-pixels", str(16 * 28 * 28), "--max-new-tokens", "2", "--frames", "4",
    ]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "strict")]) == 1  # 1 of 6 media broken
    assert "1 of 6 items failed" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "lenient"), "eval.max_error_rate=0.2"]) == 0


def test_a_still_clip_is_evaluated_in_order_and_says_so(tmp_path):
    import av
    import numpy as np

    video = tmp_path / "videos" / "still.mp4"
    video.parent.mkdir()
    with av.open(str(video), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(16):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    record = {
        "problem_id": 0,
        "problem": "Which quarter?",
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": ["A. first", "B. second"],
        "solution": "<answer>A</answer>",
        "path": "./videos/still.mp4",
    }
    (tmp_path / "bench.json").write_text(json.dumps([record]))
    summary = run_eval(
        Scripted({0: "<answer>A</answer>"}),
        tmp_path / "bench.json",
        tmp_path,
        out_dir=tmp_path / "out",
        shuffle_frames=True,
        **SMALL,
    )
    (line,) = _lines(tmp_path / "out" / "predictions.jsonl")
    assert line["status"] == "ok" and line["shuffled"] is False and line["frame_order"] is None
    assert "still clip" in line["not_shuffled"]
    assert summary["benchmarks"]["bench"]["errors"] == 0


def test_eval_refuses_an_output_dir_it_does_not_own(tiny_model_dir, bench_dir, tmp_path, capsys):
    from videor1.cli import main

    theirs = tmp_path / "reports"
    theirs.mkdir()
    files = {"summary.json": '{"quarterly": 1}', "summary.md": "my notes", "combined.md": "mine"}
    for name, text in files.items():
        (theirs / name).write_text(text)
    argv = ["-q", "eval", "--model", str(tiny_model_dir), "--bench", str(bench_dir / "test.json")]
    assert main([*argv, "--out", str(theirs), "--limit", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(theirs) in err and "did not write" in err and "Traceback" not in err
    assert {p.name: p.read_text() for p in theirs.iterdir()} == files


def test_a_run_file_that_is_not_json_is_one_message(tiny_model_dir, bench_dir, tmp_path, capsys):
    from videor1.cli import main
    from videor1.utils.rundir import output_marker

    own = tmp_path / "eval"
    own.mkdir()
    output_marker(own, "eval", directory=True).touch()  # an earlier eval's directory ...
    (own / "run.json").write_text("model: tiny\n")  # ... whose run.json was replaced by hand
    argv = ["-q", "eval", "--model", str(tiny_model_dir), "--bench", str(bench_dir / "test.json")]
    assert main([*argv, "--out", str(own), "--limit", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "eval error" in err and str(own / "run.json") in err and "not a JSON settings file" in err
    assert "Traceback" not in err
