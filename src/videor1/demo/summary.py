"""The RL runs summarised: per-step curves from each run's metrics, and per-variant means over seeds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

CURVE_KEYS = {
    "reward": "reward/total",
    "accuracy": "reward/accuracy",
    "accuracy_shuffled": "accuracy/shuffled",
    "fire_rate": "temporal/fire_rate",
    "advantage_shift": "temporal/advantage_shift",
}
"""Name in the report's RL curves → metric of the RL recipe's ``metrics.jsonl``."""


def rl_curve(run_dir: Path) -> list[dict[str, float | None]]:
    """One point per logged RL step, ``CURVE_KEYS`` renamed; a missing or NaN metric is None."""
    from videor1.utils.rundir import read_metrics

    points = []
    for rec in read_metrics(run_dir / "metrics.jsonl"):
        point: dict[str, float | None] = {"step": rec["step"]}
        for name, key in CURVE_KEYS.items():
            value = rec.get(key)
            point[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
        points.append(point)
    return points


def _mean_std(values: list[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "values": values}


def _run_mean(points: list[dict[str, Any]], key: str) -> float | None:
    values = [p[key] for p in points if p.get(key) is not None]
    return sum(values) / len(values) if values else None


def rl_summary(runs: dict[str, list[dict[str, Any]]], focus: list[str]) -> dict[str, Any]:
    """Per variant: mean ± std over seeds of held-out accuracy (all items and ``focus`` families),
    ordered and shuffled, the gap, the bonus firing rate and the advantage shift (means over steps)."""
    summary: dict[str, Any] = {}
    for variant, seeds in runs.items():
        row: dict[str, Any] = {"seeds": [r["seed"] for r in seeds]}
        for scope in ["all", *focus]:
            for view in ("ordered", "shuffled"):
                if scope == "all":
                    vals = [r["eval"][f"accuracy_{view}"] for r in seeds]
                else:
                    vals = [r["eval"]["per_family"][scope][view] for r in seeds]
                row[f"{scope}/{view}"] = _mean_std(vals)
            row[f"{scope}/gap"] = _mean_std(
                [a - b for a, b in zip(row[f"{scope}/ordered"]["values"], row[f"{scope}/shuffled"]["values"])]
            )
        for key in ("fire_rate", "advantage_shift", "reward", "accuracy"):
            vals = [_run_mean(r["curve"], key) for r in seeds]
            row[key] = (
                _mean_std([v for v in vals if v is not None]) if any(v is not None for v in vals) else None
            )
        summary[variant] = row
    return summary
