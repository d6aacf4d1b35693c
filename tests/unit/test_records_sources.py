"""Records load the same from a Video-R1 JSON array, JSONL, parquet and a datasets save_to_disk directory."""

from __future__ import annotations

import json

import pytest

from videor1.data.records import RecordError, load_records

RECORDS = [
    {
        "problem_id": 1,
        "problem": "Which way?",
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": ["A. left", "B. right"],
        "solution": "<answer>B</answer>",
        "path": "./videos/a.mp4",
        "data_source": "synth",
        "process": "<think>it moves right</think>",
    },
    {
        "problem_id": 2,
        "problem": "How many?",
        "data_type": "image",
        "problem_type": "numerical",
        "options": [],
        "solution": "<answer>3</answer>",
        "path": "./images/b.png",
        "data_source": None,
    },
]


@pytest.fixture
def sources(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    json_file = tmp_path / "train.json"
    json_file.write_text(json.dumps(RECORDS))
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS), parquet)
    hf_dir = tmp_path / "hf"
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(hf_dir))
    hf_dict = tmp_path / "hf_dict"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(RECORDS)}).save_to_disk(str(hf_dict))
    return {
        "json": json_file,
        "jsonl": jsonl,
        "parquet": parquet,
        "datasets": hf_dir,
        "datasets-dict": hf_dict,
    }


def _view(samples):
    return [(s.problem_id, s.options, s.solution, s.path, s.data_source, s.process) for s in samples]


def test_every_source_gives_the_same_samples(sources):
    expected = _view(load_records(sources["json"]))
    assert expected[1][-1] is None and expected[1][-2] == ""  # no process; null data_source reads as ""
    for kind, path in sources.items():
        samples = load_records(path)
        assert _view(samples) == expected, kind
        assert samples[0].source == f"{path}[0]"


def test_a_datasets_dict_with_several_splits_asks_for_one(tmp_path):
    import datasets

    two = tmp_path / "two"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(RECORDS), "test": datasets.Dataset.from_list(RECORDS)}
    ).save_to_disk(str(two))
    with pytest.raises(RecordError, match="holds the splits train, test; give one of them"):
        load_records(two)
    assert len(load_records(two / "test")) == 2


def test_a_plain_directory_or_a_broken_parquet_is_a_clear_error(tmp_path):
    with pytest.raises(RecordError, match="not a Hugging Face datasets save_to_disk directory"):
        load_records(tmp_path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(RecordError, match="bad.parquet: not a readable parquet file"):
        load_records(bad)


def test_the_cli_validates_parquet_and_datasets_directories(sources, capsys):
    from videor1.cli import main

    for kind in ("parquet", "datasets"):
        assert main(["-q", "data", "validate", str(sources[kind]), "--skip-media"]) == 0, kind
