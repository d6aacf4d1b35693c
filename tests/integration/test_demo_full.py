"""The full demo (`make demo`'s settings, one seed) keeps its claims: every family learnt after SFT and
frame order used on two order-dependent families. About 9 minutes on 2 cores: `make test-slow`."""

from __future__ import annotations

import pytest

from videor1.demo.report import ORDER_GAP, SFT_MARGIN


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_full_demo_learns_every_family_and_reads_frame_order(tmp_path):
    from videor1.demo.pipeline import run_demo

    results = run_demo(tmp_path / "demo", settings="full")
    sft = results["stages"]["sft"]["per_family"]
    chance = results["chance_per_family"]
    shortcut = set(results["shortcut_families"])
    trained = [f for f in sft if f not in shortcut]
    assert len(trained) == 4
    for family in trained:
        assert sft[family]["ordered"] >= chance[family] + SFT_MARGIN, (family, sft[family])
    using_order = [
        f
        for f in results["order_dependent_families"]
        if f not in shortcut and sft[f]["ordered"] - sft[f]["shuffled"] >= ORDER_GAP
    ]
    assert len(using_order) >= 2, sft
    # every RL variant ran from the SFT checkpoint and was evaluated without errors
    assert set(results["rl_summary"]) == {
        "grpo",
        "tgrpo-reference",
        "tgrpo-advantage",
        "tgrpo-margin",
        "tgrpo-no-bonus",
    }
    assert all(results["stages"][v]["errors"] == 0 for v in results["variants"])
    assert results["seconds"]["total"] > 0
