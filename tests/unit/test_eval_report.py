"""summary.md / summary.json and the combined table + bar chart over several runs."""

from __future__ import annotations

import json

import pytest

from videor1.eval.benchmarks import BENCHMARKS, detect_benchmark
from videor1.eval.report import combined_scores, summary_markdown, write_combined_report, write_summary
from videor1.eval.summary import summarize


def _line(index, score, status="ok", metric="accuracy"):
    return {
        "key": f"b[{index}]",
        "index": index,
        "problem_id": index,
        "problem_type": "multiple choice",
        "task": None,
        "family": "direction" if index % 2 else "reversal",
        "status": status,
        "error": None if status == "ok" else "media: x.mp4: empty file",
        "metric": metric,
        "has_answer_tag": index != 0,
        "parse_ok": index != 1,
        "score": {"video-r1": score, "official": score, "lenient": score},
    }


def _run(label, scores, bench_files=("eval_mvbench.json", "test.json")):
    benches = {}
    for file in bench_files:
        bench = detect_benchmark(file)
        lines = [_line(i, s) for i, s in enumerate(scores)] + [_line(len(scores), 0.0, status="error")]
        benches[bench.name] = summarize(bench, lines, total=len(lines), file=file)
    run = {
        "model": label,
        "media": {
            "nframes": 16,
            "fps": 2.0,
            "max_frames": 16,
            "video_min_pixels": 3136,
            "video_max_pixels": 200704,
        },
        "sampling": {"temperature": 0.1, "top_p": 0.001, "max_new_tokens": 1024},
        "greedy": False,
        "shuffle_frames": label.endswith("shuffled"),
        "shuffle_unit": "frame",
        "seed": 0,
        "extra": {"label": label},
    }
    return {"run": run, "benchmarks": benches}


def test_summary_files(tmp_path):
    summary = _run("sft", [1.0, 0.0, 1.0, 1.0])
    json_path, md_path = write_summary(summary, tmp_path)
    assert json.loads(json_path.read_text())["benchmarks"]["mvbench"]["official"]["overall"] == 0.75
    md = md_path.read_text()
    # 5 items: 4 scored (3 right), 1 error; item 0 lacks <answer>, item 1 is a parse failure
    assert "| MVBench | 5 | 4 | 1 | 1 | 1 | 75.0 | – | 75.0 | 75.0 | 75.0 | – | 75.0 |" in md
    assert "- frames: 16; pixels per frame: 3136–200704" in md
    assert "## MVBench by family" in md and "| direction | 2 | 50.0 | 50.0 |" in md
    assert "MVBench: 1 item(s) excluded by errors" in md and "media: x.mp4: empty file" in md
    assert "frame order: ordered" in md
    assert "frame order: shuffled" in summary_markdown(_run("t-grpo shuffled", [1.0]))


def test_combined_report_table_and_chart(tmp_path):
    runs = {"base": _run("base", [0.0, 0.0, 1.0, 0.0]), "t-grpo": _run("t-grpo", [1.0, 1.0, 1.0, 0.0])}
    assert combined_scores(runs, "official") == {
        "base": {"MVBench": 0.25, "test": 0.25},
        "t-grpo": {"MVBench": 0.75, "test": 0.75},
    }
    with pytest.raises(ValueError, match="scoring"):
        combined_scores(runs, "mine")
    paths = write_combined_report(runs, tmp_path, title="checkpoints")
    md = paths["md"].read_text()
    assert (
        "| run | MVBench | test |" in md and "| t-grpo | 75.0 | 75.0 |" in md and "| base | 1/5 | 1/5 |" in md
    )
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert json.loads(paths["json"].read_text())["video-r1"]["base"]["MVBench"] == 0.25
    assert BENCHMARKS["mvbench"].display == "MVBench"
