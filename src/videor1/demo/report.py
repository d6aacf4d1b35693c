"""The demo's report: ``report.json``, ``report.md`` and PNG plots from the stage results.

Inputs are plain dicts so the report can be rebuilt from ``report.json`` alone
(``write_report(json.loads(path.read_text()), out_dir)``).

``results`` layout (fractions, not percentages)::

    {
      "stages": {"base": {...}, "sft": {...}, "<variant>": {...}},   # the variants' first seed
        # each: accuracy_ordered, accuracy_shuffled, errors, per_family {fam: {ordered, shuffled, n}}
      "variants": [variant, ...],
      "chance": float, "chance_per_family": {fam: float},
      "order_dependent_families": [fam, ...], "shortcut_families": [fam, ...],
      "shortcut_cue_agreement": {fam: {"train": float, "test": float}},
      "rl_families": [fam, ...], "held_out_items": int, "seconds": {stage: float},
      "sft_curve": [{"step": int, "per_family": {fam: float}, ...}, ...],
      "sft_phase_steps": [image_steps, steps],
      "rl_runs": {variant: [{"seed": int, "eval": {...stage...}, "curve": [{"step", "reward",
                  "accuracy", "accuracy_shuffled", "fire_rate", "advantage_shift"}, ...]}, ...]},
      "rl_summary": {variant: {"<scope>/<ordered|shuffled|gap>": {"mean", "std", "values"},
                               "fire_rate": {...}, "advantage_shift": {...}, ...}},
      "config": {...},
    }

``findings`` turns the numbers into the plain sentences of ``report.md``: which of the demo's
claims held in this run and which did not (each with its numbers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXED_STAGES = ("base", "sft")
SFT_MARGIN = 0.30
"""What "learned" means for a family after SFT: held-out accuracy at least chance + 30 points."""
ORDER_GAP = 0.25
"""What "uses frame order" means: ordered - shuffled accuracy at least 25 points."""


def stages_of(results: dict[str, Any]) -> list[str]:
    return [s for s in (*FIXED_STAGES, *results.get("variants", [])) if s in results["stages"]]


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def headline_rows(results: dict[str, Any]) -> list[list[str]]:
    """Rows of the headline table: stage, ordered acc, shuffled acc, gap, chance."""
    rows = []
    chance = results.get("chance")
    for stage in stages_of(results):
        r = results["stages"][stage]
        o, s = r["accuracy_ordered"], r["accuracy_shuffled"]
        rows.append([stage, _pct(o), _pct(s), _pct(o - s, signed=True), _pct(chance)])
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _families(results: dict[str, Any]) -> list[str]:
    stages = stages_of(results)
    shortcut = set(results.get("shortcut_families", []))
    names = sorted({f for s in stages for f in results["stages"][s]["per_family"]})
    return [f for f in names if f not in shortcut] + [f for f in names if f in shortcut]


def family_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    stages = stages_of(results)
    header = ["family", "n", "chance", "kind"] + [f"{s} ord / shuf" for s in stages]
    rows = []
    dependent = set(results.get("order_dependent_families", []))
    shortcut = set(results.get("shortcut_families", []))
    for fam in _families(results):
        n = next((results["stages"][s]["per_family"][fam]["n"] for s in stages), 0)
        chance = results.get("chance_per_family", {}).get(fam)
        kind = "shortcut control" if fam in shortcut else ("order" if fam in dependent else "static")
        row = [fam, str(n), f"{100 * chance:.0f}" if chance is not None else "-", kind]
        for s in stages:
            pf = results["stages"][s]["per_family"].get(fam)
            row.append(f"{100 * pf['ordered']:.0f} / {100 * pf['shuffled']:.0f}" if pf else "-")
        rows.append(row)
    return header, rows


def _ms(stat: dict[str, Any] | None, signed: bool = False) -> str:
    if not stat or not stat.get("values"):
        return "-"
    mean = _pct(stat["mean"], signed)
    return mean if len(stat["values"]) < 2 else f"{mean} ± {100 * stat['std']:.1f}"


def rl_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per variant, mean ± std over seeds: held-out accuracy (all, shortcut families), bonus stats."""
    scopes = ["all", *results.get("shortcut_families", [])]
    header = ["variant", "seeds"]
    for scope in scopes:
        name = "all items" if scope == "all" else scope
        header += [f"{name} ordered", f"{name} shuffled", f"{name} gap"]
    header += ["bonus fire rate", "mean abs advantage shift"]
    rows = []
    for variant, row in results.get("rl_summary", {}).items():
        cells = [variant, str(len(row["seeds"]))]
        for scope in scopes:
            cells += [
                _ms(row.get(f"{scope}/ordered")),
                _ms(row.get(f"{scope}/shuffled")),
                _ms(row.get(f"{scope}/gap"), signed=True),
            ]
        fire, shift = row.get("fire_rate"), row.get("advantage_shift")
        cells.append(_ms(fire) if fire else "-")
        cells.append(f"{shift['mean']:.3f}" if shift and shift.get("values") else "-")
        rows.append(cells)
    return header, rows


# --------------------------------------------------------------------------------------------------
# Plain-word findings
# --------------------------------------------------------------------------------------------------


def findings(results: dict[str, Any]) -> list[str]:
    """What this run showed and did not show, each statement with its numbers."""
    out: list[str] = []
    sft = results["stages"].get("sft")
    if sft is None:
        return out
    chance = results.get("chance_per_family", {})
    shortcut = set(results.get("shortcut_families", []))
    trained = [f for f in _families(results) if f not in shortcut]
    learned = {f: sft["per_family"][f]["ordered"] - chance.get(f, 0.0) for f in trained}
    low = [f for f, d in learned.items() if d < SFT_MARGIN]
    listing = ", ".join(
        f"{f} {100 * sft['per_family'][f]['ordered']:.0f}% (chance {100 * chance.get(f, 0):.0f})"
        for f in trained
    )
    if low:
        out.append(
            f"NOT SHOWN: after SFT not every family is at least chance + {100 * SFT_MARGIN:.0f} points on "
            f"held-out items; below it: {', '.join(low)}. All families: {listing}."
        )
    else:
        out.append(
            f"Shown: after SFT every trained family is at least chance + {100 * SFT_MARGIN:.0f} points on "
            f"held-out items: {listing}."
        )
    dependent = [f for f in results.get("order_dependent_families", []) if f in sft["per_family"]]
    gaps = {f: sft["per_family"][f]["ordered"] - sft["per_family"][f]["shuffled"] for f in dependent}
    using = [f for f in dependent if f not in shortcut and gaps[f] >= ORDER_GAP]
    gap_text = ", ".join(f"{f} {100 * g:+.0f}" for f, g in gaps.items() if f not in shortcut)
    verdict = "Shown" if len(using) >= 2 else "NOT SHOWN"
    out.append(
        f"{verdict}: the SFT model uses frame order on {len(using)} order-dependent famil"
        f"{'y' if len(using) == 1 else 'ies'} (ordered - shuffled >= {100 * ORDER_GAP:.0f} points; "
        f"the target is at least two). Gaps in points: {gap_text}."
    )
    for fam in sorted(shortcut & set(sft["per_family"])):
        agreement = results.get("shortcut_cue_agreement", {}).get(fam, {})
        pf = sft["per_family"][fam]
        out.append(
            f"Shortcut control {fam}: the colour cue gives the answer away in "
            f"{100 * (agreement.get('train') or 0):.0f}% of training items and "
            f"{100 * (agreement.get('test') or 0):.0f}% of held-out items; after SFT the held-out accuracy "
            f"is {100 * pf['ordered']:.0f}% ordered and {100 * pf['shuffled']:.0f}% shuffled "
            f"(chance {100 * chance.get(fam, 0):.0f})."
        )
    out += _rl_findings(results, sorted(shortcut))
    return out


CONTROL = "tgrpo-no-bonus"
"""The control variant: T-GRPO's shuffled rollouts without a bonus. A T-GRPO variant's gain is the
bonus's only where it beats this control too."""


def _verdict(stat: dict[str, Any], other: dict[str, Any], n: int, name: str) -> str:
    """Whether two seed sets of one metric differ beyond the larger of their standard deviations."""
    diff = stat["mean"] - other["mean"]
    if n < 2:
        return "one seed, so no claim either way"
    if abs(diff) <= max(stat["std"], other["std"]):
        return f"within the seed spread: not distinguishable from {name}"
    return f"{'better' if diff > 0 else 'worse'} than {name} beyond the seed spread"


def _rl_findings(results: dict[str, Any], shortcut: list[str]) -> list[str]:
    summary = results.get("rl_summary", {})
    if "grpo" not in summary:
        return []
    out = []
    scope = shortcut[0] if shortcut else "all"
    where = f"{scope} held-out items" if shortcut else "all held-out items"
    base = summary["grpo"][f"{scope}/ordered"]
    sft = results["stages"]["sft"]
    sft_value = sft["per_family"][scope]["ordered"] if shortcut else sft["accuracy_ordered"]
    n = len(summary["grpo"]["seeds"])
    out.append(
        f"RL ({n} seed{'s' if n > 1 else ''} per variant, same SFT checkpoint and budget) on {where}, "
        f"ordered frames: SFT {100 * sft_value:.1f}%, GRPO {_ms(base)}%."
    )
    control = summary.get(CONTROL, {}).get(f"{scope}/ordered")
    for variant, row in summary.items():
        if variant == "grpo":
            continue
        stat = row[f"{scope}/ordered"]
        diff = stat["mean"] - base["mean"]
        verdict = _verdict(stat, base, n, "GRPO")
        if control is not None and variant != CONTROL:
            verdict += f"; {100 * (stat['mean'] - control['mean']):+.1f} vs the α = 0 control, " + _verdict(
                stat, control, n, "the control"
            )
        fire = row.get("fire_rate")
        fire_text = f"; the bonus fired on {_ms(fire)}% of video questions" if fire else ""
        shift = row.get("advantage_shift")
        shift_text = (
            f", moving advantages by {shift['mean']:.3f} on average" if shift and shift.get("values") else ""
        )
        out.append(
            f"{variant}: {_ms(stat)}% ({100 * diff:+.1f} points vs GRPO, {verdict}){fire_text}{shift_text}."
        )
    rl = results.get("config", {}).get("tgrpo-reference", {}).get("rl", {})
    if rl:
        out.append(
            f"The paper's rule fires when a group's ordered accuracy is at least {rl['temporal_mu']:g} x its "
            "shuffled accuracy, so it also fires when the model ignores order (equal accuracies). In the "
            "reference form the bonus is added to the reward of every correct rollout, and the group's "
            "normalisation divides most of it out (see the advantage shift)."
            + (
                f" tgrpo-margin fires only when ordered accuracy is at least shuffled + {margin:g}."
                if (margin := results["config"].get("tgrpo-margin", {}).get("rl", {}).get("temporal_margin"))
                else ""
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# Markdown and plots
# --------------------------------------------------------------------------------------------------


def render_markdown(results: dict[str, Any], plots: dict[str, str]) -> str:
    parts = [
        "# videor1 demo report",
        "",
        f"Held-out items: {results['held_out_items']}. Accuracy in % (mean accuracy reward over items; "
        "multiple choice is exact, other answer types use the default reward). RL variants are shown "
        "for their first seed here and over all seeds below.",
        "",
        _md_table(["stage", "ordered", "shuffled", "ordered - shuffled", "chance"], headline_rows(results)),
        "",
        "## What this run shows",
        "",
        *[f"- {line}" for line in findings(results)],
        "",
        "## Per family (ordered / shuffled, %)",
        "",
        _md_table(*family_rows(results)),
        "",
    ]
    if results.get("rl_summary"):
        parts += [
            f"## RL variants over seeds (held-out %, mean ± std; RL trains on {', '.join(results.get('rl_families', []))})",
            "",
            _md_table(*rl_rows(results)),
            "",
            "The bonus fire rate is the share of video questions whose temporal decision fired, averaged "
            "over steps; the advantage shift is the mean |A_with_bonus - A_without| over video groups.",
            "",
        ]
    parts += [
        "## Time per stage (s)",
        "",
        "Of the run that wrote this report; stages found finished (a resumed or extended run) take about 0 s.",
        "",
        _md_table(["stage", "seconds"], [[k, f"{v:.0f}"] for k, v in results.get("seconds", {}).items()]),
        "",
    ]
    if plots:
        parts += ["## Plots", ""] + [f"![{name}]({file})" for name, file in plots.items()] + [""]
    return "\n".join(parts)


def make_plots(results: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """SFT learning curves, RL curves with seed spread, ordered vs shuffled bars. Name -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    for name, file, draw in (
        ("SFT learning curve per family", "sft_curve.png", _plot_sft_curve),
        ("RL curves per variant", "rl_curves.png", _plot_rl_curves),
        ("ordered vs shuffled", "ordered_vs_shuffled.png", _plot_ordered_vs_shuffled),
        ("accuracy by stage and family", "accuracy_by_family.png", _plot_by_family),
    ):
        fig = draw(plt, results)
        if fig is None:
            continue
        fig.tight_layout()
        fig.savefig(out_dir / file, dpi=120)
        plt.close(fig)
        plots[name] = file
    return plots


def _plot_sft_curve(plt, results):
    curve = results.get("sft_curve") or []
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    chance = results.get("chance_per_family", {})
    for i, fam in enumerate(_families(results)):
        points = [(p["step"], p["per_family"][fam]) for p in curve if fam in p["per_family"]]
        if not points:
            continue
        color = f"C{i}"
        ax.plot(
            [s for s, _ in points], [100 * a for _, a in points], marker="o", ms=3, color=color, label=fam
        )
        if fam in chance:
            ax.axhline(100 * chance[fam], color=color, linestyle=":", linewidth=0.8)
    phases = results.get("sft_phase_steps") or [0, 0]
    if phases[0]:
        ax.axvline(phases[0], color="gray", linestyle="--", linewidth=0.8)
        ax.text(phases[0], 102, " videos join", fontsize=7, color="gray", va="bottom")
    ax.set_xlabel("SFT step")
    ax.set_ylabel("held-out accuracy, ordered (%)")
    ax.set_ylim(0, 108)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _plot_rl_curves(plt, results):
    runs = results.get("rl_runs") or {}
    if not any(runs.values()):
        return None
    import numpy as np

    keys = (
        ("reward", "reward (total)"),
        ("accuracy", "accuracy reward (ordered)"),
        ("fire_rate", "bonus fire rate"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for i, (variant, seeds) in enumerate(runs.items()):
        for ax, (key, label) in zip(axes, keys):
            steps = sorted({p["step"] for r in seeds for p in r["curve"]})
            table = np.full((len(seeds), len(steps)), np.nan)
            for k, r in enumerate(seeds):
                for p in r["curve"]:
                    if p.get(key) is not None:
                        table[k, steps.index(p["step"])] = p[key]
            if np.isnan(table).all():
                continue
            with np.errstate(all="ignore"):
                mean = np.nanmean(table, axis=0)
            ax.plot(steps, mean, color=f"C{i}", label=f"{variant} (n={len(seeds)})")
            if len(seeds) > 1:
                ax.fill_between(
                    steps, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=f"C{i}", alpha=0.2
                )
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("RL step")
    axes[0].legend(fontsize=7)
    return fig


def _plot_ordered_vs_shuffled(plt, results):
    import numpy as np

    stages = stages_of(results)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(stages)), 3.6))
    x = np.arange(len(stages))
    ordered = [results["stages"][s]["accuracy_ordered"] * 100 for s in stages]
    shuffled = [results["stages"][s]["accuracy_shuffled"] * 100 for s in stages]
    ax.bar(x - 0.2, ordered, 0.4, label="ordered frames")
    ax.bar(x + 0.2, shuffled, 0.4, label="shuffled frames")
    if results.get("chance") is not None:
        ax.axhline(results["chance"] * 100, color="gray", linestyle="--", label="chance")
    ax.set_xticks(x, stages, fontsize=8)
    ax.set_ylabel("held-out accuracy (%)")
    ax.legend(fontsize=8)
    return fig


def _plot_by_family(plt, results):
    import numpy as np

    stages, families = stages_of(results), _families(results)
    if not families:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(families)), 3.8), sharey=True)
    width = 0.8 / max(1, len(stages))
    xf = np.arange(len(families))
    for ax, view in zip(axes, ("ordered", "shuffled")):
        for i, s in enumerate(stages):
            pf = results["stages"][s]["per_family"]
            ax.bar(
                xf + i * width - 0.4 + width / 2,
                [pf.get(f, {}).get(view, 0) * 100 for f in families],
                width,
                label=s,
            )
        ax.set_xticks(xf, families, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{view} frames", fontsize=9)
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[1].legend(fontsize=7)
    return fig


def write_report(results: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.json, the PNG plots and report.md into ``out_dir``; return the report.md path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    plots = make_plots(results, out)
    md = out / "report.md"
    md.write_text(render_markdown(results, plots), encoding="utf-8")
    return md
