"""The demo report's verdicts: a variant beats another only beyond the larger seed spread, and a
T-GRPO gain counts as the bonus's only against the alpha = 0 control."""

from __future__ import annotations

from videor1.demo.report import _rl_findings, _verdict


def stat(*values: float) -> dict:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "values": list(values)}


def test_verdict_uses_the_larger_spread():
    assert (
        _verdict(stat(1.0, 1.0, 1.0), stat(0.9, 0.9, 0.9), 3, "GRPO")
        == "better than GRPO beyond the seed spread"
    )
    # diff 0.05, spreads 0.0 and 0.1: within
    assert "within the seed spread" in _verdict(stat(0.95, 0.95, 0.95), stat(0.8, 0.9, 1.0), 3, "GRPO")
    assert _verdict(stat(0.5, 0.5), stat(0.9, 0.9), 2, "x") == "worse than x beyond the seed spread"
    assert _verdict(stat(1.0), stat(0.0), 1, "x") == "one seed, so no claim either way"


def test_a_gain_over_grpo_is_not_the_bonus_when_the_control_matches_it():
    def row(*values):
        return {"seeds": [0, 1, 2], "q/ordered": stat(*values), "fire_rate": None, "advantage_shift": None}

    results = {
        "rl_summary": {
            "grpo": row(0.90, 0.91, 0.89),
            "tgrpo-reference": row(0.99, 1.0, 0.98),
            "tgrpo-no-bonus": row(0.98, 0.99, 1.0),
        },
        "stages": {"sft": {"per_family": {"q": {"ordered": 0.8}}}},
        "config": {},
    }
    lines = _rl_findings(results, ["q"])
    (ref,) = [line for line in lines if line.startswith("tgrpo-reference")]
    assert "better than GRPO beyond the seed spread" in ref
    assert "not distinguishable from the control" in ref
    (control,) = [line for line in lines if line.startswith("tgrpo-no-bonus")]
    assert "vs the α = 0 control" not in control
