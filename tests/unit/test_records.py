"""Records: loading JSON / JSONL / iterables, strict checks, path resolution, saving."""

from __future__ import annotations

import json
import os

import pytest

from videor1.data.records import (
    MediaPathError,
    RecordError,
    load_records,
    record_problems,
    resolve_media_path,
    save_records,
    scan_records,
)
from videor1.types import Sample


def rec(**kw):
    base = {
        "problem_id": 1,
        "problem": "Which one moves first?",
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": ["A. red", "B. blue", "C. green"],
        "solution": "<answer>B</answer>",
        "path": "./videos/a.mp4",
        "data_source": "synth",
    }
    base.update(kw)
    return base


def test_load_json_array_keeps_extra_keys_and_source(tmp_path):
    f = tmp_path / "train.json"
    records = [rec(), rec(problem_id=2, reward=0.8, select=True, process="<think>hm</think>")]
    f.write_text(json.dumps(records), encoding="utf-8")
    samples = load_records(f)
    assert [s.problem_id for s in samples] == [1, 2]
    assert samples[1].source == f"{f}[1]"
    assert samples[1].extra == {"reward": 0.8, "select": True}
    assert samples[1].process == "<think>hm</think>"
    assert samples[0].process is None
    assert samples[1].to_record() == records[1]


def test_load_jsonl_with_blank_lines_and_limit(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text("\n".join(json.dumps(rec(problem_id=i)) for i in range(5)) + "\n\n", encoding="utf-8")
    assert [s.problem_id for s in load_records(f)] == [0, 1, 2, 3, 4]
    samples = load_records(f, limit=2)
    assert [s.problem_id for s in samples] == [0, 1]
    assert samples[1].source == f"{f}[1]"


def test_jsonl_bad_line_names_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps(rec()) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"x\.jsonl line 2 \(record 1\)"):
        load_records(f)


def test_duck_typed_dataset():
    class FakeDataset:
        class info:
            dataset_name = "video-r1"

        split = "train"

        def __iter__(self):
            yield rec(problem_id=9)

    (sample,) = load_records(FakeDataset())
    assert sample.problem_id == 9 and sample.source == "video-r1:train[0]"
    assert load_records([rec()])[0].source == "list[0]"


def test_bad_record_error_names_file_index_id_and_field(tmp_path):
    f = tmp_path / "train.json"
    f.write_text(json.dumps([rec(), rec(problem_id=42, options="A. x")]), encoding="utf-8")
    with pytest.raises(
        RecordError, match=r"train\.json\[1\] \(problem_id=42\) field 'options': must be a list"
    ):
        load_records(f)


@pytest.mark.parametrize(
    "override,field,reason",
    [
        ({"problem_id": True}, "problem_id", "must be an int or a string"),
        ({"problem_id": 1.5}, "problem_id", "must be an int or a string"),
        ({"problem": None}, "problem", "must be a string, got null"),
        ({"data_type": "audio"}, "data_type", "unknown data_type 'audio'"),
        ({"problem_type": "essay"}, "problem_type", "unknown problem_type 'essay'"),
        ({"options": []}, "options", "at least 2 options"),
        ({"options": ["red", "blue"]}, "options", "does not start with a letter"),
        ({"options": ["A. red", "C. blue"]}, "options", "not A, B, C"),
        ({"options": ["A. red", 3]}, "options[1]", "must be a string"),
        ({"solution": "B"}, "solution", "exactly one <answer>"),
        ({"solution": "<answer>B</answer><answer>C</answer>"}, "solution", "exactly one <answer>"),
        ({"solution": "<answer> </answer>"}, "solution", "empty"),
        ({"solution": "<answer>D</answer>"}, "solution", "not one of the option letters"),
        ({"path": "/abs/a.mp4"}, "path", "absolute"),
        ({"path": "./a/../../b.mp4"}, "path", "climbs out"),
        ({"path": ""}, "path", "empty path"),
        ({"process": "no tags"}, "process", "<think>"),
        ({"data_source": 3}, "data_source", "must be a string"),
    ],
)
def test_each_schema_problem_is_reported(override, field, reason):
    problems = record_problems(rec(**override))
    assert len(problems) == 1, problems
    assert problems[0][0] == field and reason in problems[0][1]


def test_type_specific_rules():
    assert record_problems(rec(problem_type="numerical", options=[], solution="<answer>1,000</answer>")) == []
    assert record_problems(rec(problem_type="regression", options=[], solution="<answer>-3.5</answer>")) == []
    bad = record_problems(rec(problem_type="numerical", options=[], solution="<answer>three</answer>"))
    assert bad == [("solution", "answer 'three' is not a number (numerical)")]
    bad = record_problems(rec(problem_type="free-form"))
    assert bad == [("options", "options must be [] for free-form, got 3")]
    assert record_problems(rec(problem_type="OCR", options=[], solution="<answer>STOP 12</answer>")) == []
    missing = rec()
    del missing["path"]
    assert record_problems(missing) == [("path", "missing field")]
    assert record_problems([1]) == [("<record>", "record must be a JSON object, got list")]


def test_check_types_only_skips_value_checks():
    assert load_records([rec(problem_type="essay", solution="B")], check="types")[0].problem_type == "essay"
    with pytest.raises(RecordError, match="problem_type"):
        load_records([rec(problem_type="essay")])


def test_scan_records_collects_all_problems_without_raising():
    scanned = scan_records([rec(), rec(problem_id=2, problem_type="essay", solution="x"), "junk"])
    assert scanned[0].sample is not None and scanned[0].problems == []
    assert scanned[1].sample is None
    assert {p.field for p in scanned[1].problems} == {"problem_type", "solution"}
    assert scanned[1].problems[0].problem_id == 2 and scanned[1].problems[0].source == "list[1]"
    assert scanned[2].problems[0].field == "<record>"


def test_unreadable_files(tmp_path):
    with pytest.raises(RecordError, match="not found"):
        load_records(tmp_path / "missing.json")
    f = tmp_path / "pretty.json"
    f.write_text(json.dumps(rec(), indent=2))
    with pytest.raises(RecordError, match="JSON array of records or one record per line"):
        load_records(f)
    f.write_text("[{")
    with pytest.raises(RecordError, match="not valid JSON"):
        load_records(f)


def test_a_file_that_is_not_utf8_names_the_file_and_the_byte(tmp_path):
    f = tmp_path / "latin.json"
    f.write_bytes(json.dumps([rec(problem="Où va le carré ?")], ensure_ascii=False).encode("latin-1"))
    with pytest.raises(RecordError, match=r"latin\.json: not UTF-8 text \(byte 0xf9 at offset \d+\)"):
        load_records(f)
    with pytest.raises(RecordError, match="not UTF-8"):
        scan_records(f)
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps([rec()]).encode())  # a byte-order mark is fine
    assert len(load_records(f)) == 1


def test_a_json_object_at_top_level_is_not_a_records_file(tmp_path):
    f = tmp_path / "wrapped.json"
    f.write_text(json.dumps({"version": 2, "data": [rec(), rec(problem_id=2)]}))
    for read in (load_records, scan_records):
        with pytest.raises(
            RecordError, match=r"top level is a JSON object \(keys 'version', 'data'\), expected a list"
        ):
            read(f)
    with pytest.raises(RecordError, match="the records may be its 'data' list"):
        load_records(f)
    f.write_text(json.dumps({"note": "x"}, indent=2))
    with pytest.raises(RecordError, match="expected a list"):
        load_records(f)
    f.write_text(json.dumps(rec()) + "\n")  # one record on one line is a one-line JSONL file
    assert len(load_records(f)) == 1


def test_validate_reports_an_unreadable_file_in_one_message(tmp_path, capsys):
    from videor1.cli import main

    f = tmp_path / "wrapped.json"
    f.write_text(json.dumps({"data": [rec()]}))
    assert (
        main(["-q", "data", "validate", str(f), "--skip-media", "--report", str(tmp_path / "r.jsonl")]) == 2
    )
    err = " ".join(capsys.readouterr().err.split())
    assert "expected a list" in err and "missing field" not in err and "Traceback" not in err
    assert not (tmp_path / "r.jsonl").exists()


def test_resolve_media_path_inside_root(tmp_path):
    root = tmp_path / "data"
    (root / "videos").mkdir(parents=True)
    assert resolve_media_path("./videos/a.mp4", root) == (root / "videos" / "a.mp4").resolve()
    assert resolve_media_path("videos/../videos/a.mp4", root) == (root / "videos" / "a.mp4").resolve()
    inside_abs = str((root / "videos" / "a.mp4").resolve())
    assert resolve_media_path(inside_abs, root) == (root / "videos" / "a.mp4").resolve()


def test_resolve_media_path_escapes_raise(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    with pytest.raises(MediaPathError, match="escapes the media root"):
        resolve_media_path("../secret.mp4", root)
    with pytest.raises(MediaPathError, match="escapes the media root"):
        resolve_media_path(str(outside), root)
    os.symlink(outside, root / "link.mp4")
    with pytest.raises(MediaPathError, match="symlink"):
        resolve_media_path("./link.mp4", root)
    with pytest.raises(MediaPathError, match="empty"):
        resolve_media_path("", root)


def test_save_records_roundtrip_utf8(tmp_path):
    samples = load_records([rec(problem="¿Qué pasa? 视频"), rec(problem_id=2, answer="B")])
    out = save_records(samples, tmp_path / "sub" / "out.json", indent=2)
    text = out.read_text(encoding="utf-8")
    assert "视频" in text and text.startswith("[\n  {")
    again = load_records(out)
    assert [s.to_record() for s in again] == [s.to_record() for s in samples]
    assert again[1].extra == {"answer": "B"}
    save_records([{"problem_id": 3}], tmp_path / "x.jsonl")
    assert (tmp_path / "x.jsonl").read_text() == '{"problem_id": 3}\n'
    assert not list(tmp_path.glob("**/*.tmp"))
    assert isinstance(again[0], Sample)


def test_dataset_style_nulls_for_absent_columns():
    (sample,) = load_records([rec(data_source=None, process=None, reward=None)])
    assert sample.data_source == "" and sample.process is None and sample.extra == {"reward": None}
