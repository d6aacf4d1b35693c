"""The demo's report: ``report.json``, ``report.md`` and PNG plots from the stage results.

Inputs are plain dicts so the report can be rebuilt from ``report.json`` alone
(``write_report(load_results(path), out_dir)``).

``results`` layout::

    {
      "stages": {"base": {...}, "sft": {...}, "grpo": {...}, "tgrpo": {...}},
        # each: accuracy_ordered, accuracy_shuffled (fractions), per_family {fam: {ordered, shuffled, n}}
      "chance": float, "chance_per_family": {fam: float},
      "held_out_items": int, "seconds": {stage: float}, "config": {...},
      "reward_curves": {"grpo": [{"step": int, "reward": float, "accuracy": float}, ...], "tgrpo": [...]},
      "order_dependent_families": [fam, ...],
    }
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STAGES = ("base", "sft", "grpo", "tgrpo")


def headline_rows(results: dict[str, Any]) -> list[list[str]]:
    """Rows of the headline table: stage, ordered acc, shuffled acc, gap, chance."""
    rows = []
    chance = results.get("chance")
    for stage in STAGES:
        r = results["stages"].get(stage)
        if r is None:
            continue
        o, s = r["accuracy_ordered"], r["accuracy_shuffled"]
        rows.append(
            [
                stage,
                f"{100 * o:.1f}",
                f"{100 * s:.1f}",
                f"{100 * (o - s):+.1f}",
                f"{100 * chance:.1f}" if chance is not None else "-",
            ]
        )
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def family_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    stages = [s for s in STAGES if s in results["stages"]]
    families = sorted({f for s in stages for f in results["stages"][s]["per_family"]})
    header = ["family", "n", "chance", "order-dependent"] + [f"{s} ord/shuf" for s in stages]
    rows = []
    dependent = set(results.get("order_dependent_families", []))
    for fam in families:
        n = next((results["stages"][s]["per_family"][fam]["n"] for s in stages), 0)
        chance = results.get("chance_per_family", {}).get(fam)
        row = [
            fam,
            str(n),
            f"{100 * chance:.0f}" if chance is not None else "-",
            "yes" if fam in dependent else "no",
        ]
        for s in stages:
            pf = results["stages"][s]["per_family"].get(fam)
            row.append(f"{100 * pf['ordered']:.0f} / {100 * pf['shuffled']:.0f}" if pf else "-")
        rows.append(row)
    return header, rows


def render_markdown(results: dict[str, Any], plots: dict[str, str]) -> str:
    parts = [
        "# videor1 demo report",
        "",
        f"Held-out items: {results['held_out_items']}. Accuracy in % (mean accuracy reward over items; "
        "multiple choice is exact, other answer types use the default reward).",
        "",
        _md_table(["stage", "ordered", "shuffled", "ordered - shuffled", "chance"], headline_rows(results)),
        "",
        "## Per family (ordered / shuffled, %)",
        "",
        _md_table(*family_rows(results)),
        "",
        "## Time per stage (s)",
        "",
        _md_table(["stage", "seconds"], [[k, f"{v:.0f}"] for k, v in results.get("seconds", {}).items()]),
        "",
    ]
    if results.get("notes"):
        parts += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    if plots:
        parts += ["## Plots", ""] + [f"![{name}]({file})" for name, file in plots.items()] + [""]
    return "\n".join(parts)


def make_plots(results: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Reward curves, accuracy by stage and family, ordered vs shuffled. Returns name -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    plots: dict[str, str] = {}
    stages = [s for s in STAGES if s in results["stages"]]

    # Ordered vs shuffled per stage.
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(stages))
    ordered = [results["stages"][s]["accuracy_ordered"] * 100 for s in stages]
    shuffled = [results["stages"][s]["accuracy_shuffled"] * 100 for s in stages]
    ax.bar(x - 0.2, ordered, 0.4, label="ordered frames")
    ax.bar(x + 0.2, shuffled, 0.4, label="shuffled frames")
    if results.get("chance") is not None:
        ax.axhline(results["chance"] * 100, color="gray", linestyle="--", label="chance")
    ax.set_xticks(x, stages)
    ax.set_ylabel("held-out accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "ordered_vs_shuffled.png", dpi=120)
    plt.close(fig)
    plots["ordered vs shuffled"] = "ordered_vs_shuffled.png"

    # Accuracy by stage and family (ordered frames).
    families = sorted({f for s in stages for f in results["stages"][s]["per_family"]})
    if families:
        fig, ax = plt.subplots(figsize=(max(6, len(families) * 0.9), 3.8))
        width = 0.8 / max(1, len(stages))
        xf = np.arange(len(families))
        for i, s in enumerate(stages):
            pf = results["stages"][s]["per_family"]
            ax.bar(
                xf + i * width - 0.4 + width / 2,
                [pf.get(f, {}).get("ordered", 0) * 100 for f in families],
                width,
                label=s,
            )
        ax.set_xticks(xf, families, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "accuracy_by_family.png", dpi=120)
        plt.close(fig)
        plots["accuracy by stage and family"] = "accuracy_by_family.png"

    # Reward curves of the two RL runs.
    curves = results.get("reward_curves", {})
    if any(curves.values()):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, points in curves.items():
            if points:
                ax.plot(
                    [p["step"] for p in points],
                    [p["accuracy"] for p in points],
                    label=f"{name} accuracy reward",
                )
        ax.set_xlabel("RL step")
        ax.set_ylabel("mean accuracy reward (ordered rollouts)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "reward_curves.png", dpi=120)
        plt.close(fig)
        plots["reward curves"] = "reward_curves.png"
    return plots


def write_report(results: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.json, the PNG plots and report.md into ``out_dir``; return the report.md path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    plots = make_plots(results, out)
    md = out / "report.md"
    md.write_text(render_markdown(results, plots), encoding="utf-8")
    return md


def load_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
