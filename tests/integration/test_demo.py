"""`videor1 demo --quick`: the full pipeline at toy size, end to end, and the report's structure."""

from __future__ import annotations

import json

from videor1.cli import main
from videor1.demo.report import STAGES


def test_quick_demo_runs_every_stage_and_writes_the_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--quick", "--out", str(out)]) == 0

    report = json.loads((out / "report.json").read_text())
    assert set(report["stages"]) == set(STAGES)
    held_out = report["held_out_items"]
    assert held_out == len(json.loads((out / "data" / "test.json").read_text()))
    families = set(json.loads((out / "data" / "meta.json").read_text())["families"])
    for stage in STAGES:
        r = report["stages"][stage]
        assert 0.0 <= r["accuracy_ordered"] <= 1.0 and 0.0 <= r["accuracy_shuffled"] <= 1.0
        assert set(r["per_family"]) <= families and r["per_family"]
        assert sum(f["n"] for f in r["per_family"].values()) == held_out
        assert r["errors"] == 0
        # each stage evaluated its own checkpoint, twice (ordered and shuffled frames)
        for view in ("ordered", "shuffled"):
            lines = (out / "eval" / f"{stage}-{view}" / "predictions.jsonl").read_text().splitlines()
            assert len(lines) == held_out
    assert 0.0 < report["chance"] < 1.0
    for stage in ("data", "model", "sft", "grpo", "tgrpo", "eval"):
        assert report["seconds"][stage] >= 0.0
    assert {"sft_images", "sft", "grpo", "tgrpo", "settings"} <= set(report["config"])
    # SFT curriculum: the image records from the base model, then everything from that checkpoint
    image_records = json.loads((out / "data" / "train_cot_images.json").read_text())
    assert image_records and all(r["data_type"] == "image" for r in image_records)
    assert report["config"]["sft_images"]["data"]["train_file"].endswith("train_cot_images.json")
    assert report["config"]["sft_images"]["model"]["path"] == str(out / "model-base")
    assert report["config"]["sft"]["data"]["train_file"].endswith("train_cot.json")
    assert report["config"]["sft"]["model"]["path"].startswith(str(out / "sft-images"))
    assert report["config"]["tgrpo"]["rl"]["temporal"] is True
    assert report["config"]["grpo"]["rl"]["temporal"] is False
    # both RL runs trained from the SFT checkpoint and logged every step
    sft_ckpt = report["stages"]["sft"]["model"]
    assert report["config"]["grpo"]["model"]["path"] == sft_ckpt == report["config"]["tgrpo"]["model"]["path"]
    steps = report["config"]["settings"]["rl_steps"]
    assert [p["step"] for p in report["reward_curves"]["grpo"]] == list(range(1, steps + 1))
    assert [p["step"] for p in report["reward_curves"]["tgrpo"]] == list(range(1, steps + 1))
    tgrpo_metrics = [json.loads(x) for x in (out / "tgrpo" / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("temporal/p") is not None for m in tgrpo_metrics), (
        "T-GRPO never rolled out on shuffled frames"
    )
    for png in ("ordered_vs_shuffled.png", "accuracy_by_family.png", "reward_curves.png"):
        assert (out / png).stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "| stage | ordered | shuffled |" in md and "tgrpo" in md


def test_image_phase_needs_image_records(tmp_path):
    import pytest

    from videor1.demo.pipeline import DemoSettings, sft_config, write_image_train_file

    records = [{"problem_id": 0, "data_type": "video", "path": "./videos/a.mp4"}]
    (tmp_path / "train_cot.json").write_text(json.dumps(records))
    with pytest.raises(ValueError, match="no image records"):
        write_image_train_file(tmp_path)
    records.append({"problem_id": 1, "data_type": "image", "path": "./images/b.png"})
    (tmp_path / "train_cot.json").write_text(json.dumps(records))
    assert write_image_train_file(tmp_path) == 1
    assert json.loads((tmp_path / "train_cot_images.json").read_text()) == records[1:]
    with pytest.raises(ValueError, match="phase"):
        sft_config(DemoSettings.quick(), tmp_path, tmp_path, phase="video")
