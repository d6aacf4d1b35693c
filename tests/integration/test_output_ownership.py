"""Commands write only into outputs they own: new, empty, or marked as their own earlier output.

A user's file at a mistyped output path is left as it was, with exit status 2 and one message; the
command's own earlier output is written again (resumed or regenerated).
"""

from __future__ import annotations

import pytest

from videor1.cli import main
from videor1.config import ConfigError


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_claim_output_accepts_new_empty_or_own_and_refuses_the_rest(tmp_path):
    from videor1.utils.rundir import check_output, claim_output, output_marker

    claim_output(tmp_path / "new" / "dir", "eval", directory=True)
    assert output_marker(tmp_path / "new" / "dir", "eval", directory=True).exists()
    (tmp_path / "empty").mkdir()
    claim_output(tmp_path / "empty", "eval", directory=True)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "summary.json").write_text("{}")
    with pytest.raises(ConfigError, match="did not write"):
        claim_output(theirs, "eval", directory=True)
    with pytest.raises(ConfigError, match="did not write"):  # another command's marker is not enough
        output_marker(theirs, "data synth", directory=True).touch()
        claim_output(theirs, "eval", directory=True)
    output_marker(theirs, "eval", directory=True).touch()
    claim_output(theirs, "eval", directory=True)

    note = tmp_path / "note.json"
    note.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_output(note, "eval", directory=True)
    with pytest.raises(ConfigError, match="is a directory"):
        check_output(theirs, "annotate", directory=False)
    with pytest.raises(ConfigError, match="did not write"):
        check_output(note, "annotate", directory=False)
    (tmp_path / "blank.json").write_text("")
    claim_output(tmp_path / "blank.json", "annotate", directory=False)


def test_atomic_path_keeps_the_old_file_and_no_temp_on_failure(tmp_path):
    from videor1.utils.rundir import atomic_path

    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_data_synth_refuses_a_directory_holding_the_users_files(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train.json").write_text('["my curated records"]')
    args = [
        "-q",
        "data",
        "synth",
        "--train",
        "2",
        "--test",
        "1",
        "--size",
        "56",
        "--frames",
        "8",
        "--jobs",
        "1",
    ]
    assert main([*args, "--out", str(mine)]) == 2
    err = _err(capsys)
    assert str(mine) in err and "did not write" in err and "Traceback" not in err
    assert [p.name for p in mine.iterdir()] == ["train.json"]
    assert (mine / "train.json").read_text() == '["my curated records"]'
    out = tmp_path / "synth"
    assert main([*args, "--out", str(out)]) == 0
    assert main([*args, "--out", str(out), "--seed", "3"]) == 0  # its own output: regenerated


def test_data_validate_and_inspect_refuse_the_users_files(synth_dir, tmp_path, capsys):
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"my": "notes"}\n')
    records = synth_dir / "test.json"
    assert main(["-q", "data", "validate", str(records), "--skip-media", "--report", str(notes)]) == 2
    err = _err(capsys)
    assert "--report" in err and str(notes) in err and "did not write" in err
    assert notes.read_text() == '{"my": "notes"}\n'
    report = tmp_path / "report.jsonl"
    for _ in range(2):  # its own report is rewritten
        assert main(["-q", "data", "validate", str(records), "--skip-media", "--report", str(report)]) == 0
    assert report.read_text() == ""

    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG my holiday")
    args = ["-q", "data", "inspect", str(records), "--n", "1", "--frames", "2", "--probe-limit", "0"]
    assert main([*args, "--out", str(photo)]) == 2
    assert str(photo) in _err(capsys) and photo.read_bytes() == b"\x89PNG my holiday"
    sheet = tmp_path / "sheet.png"
    for _ in range(2):
        assert main([*args, "--out", str(sheet)]) == 0
    assert sheet.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes.jsonl", "report.jsonl", ".report.jsonl.videor1-data-validate", "photo.png", "sheet.png",
         ".sheet.png.videor1-data-inspect"]
    )  # fmt: skip
