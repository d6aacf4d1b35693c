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
    assert {"sft", "grpo", "tgrpo", "settings"} <= set(report["config"])
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
