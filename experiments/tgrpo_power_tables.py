"""Tables of ``experiments/tgrpo_power.py``: the per-run results under ``<out>/results/`` turned into
the generated block of ``docs/tgrpo_power.md`` (``--table``). Statistics from ``videor1.demo.stats``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VARIANTS = ("grpo", "tgrpo-reference", "tgrpo-advantage", "tgrpo-margin", "tgrpo-no-bonus")
LABELS = {
    "grpo": "GRPO",
    "tgrpo-reference": "T-GRPO `reference`",
    "tgrpo-advantage": "T-GRPO `advantage`",
    "tgrpo-margin": "T-GRPO margin 0.25",
    "tgrpo-no-bonus": "control: T-GRPO α = 0",
}
TGRPO = ("tgrpo-reference", "tgrpo-advantage", "tgrpo-margin")
SHORTCUT = "quarter_shortcut"
START, END = "<!-- tgrpo-power:start -->", "<!-- tgrpo-power:end -->"


def load_results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "results").glob("*.json"))]


def metric(r: dict[str, Any], key: str) -> float | None:
    """One run's number for ``key`` (accuracies in %)."""
    qs = r["per_family"][SHORTCUT]
    if key == "qs_ordered":
        return 100 * qs["ordered"]
    if key == "qs_shuffled":
        return 100 * qs["shuffled"]
    if key == "qs_gap":
        return 100 * (qs["ordered"] - qs["shuffled"])
    if key == "all_ordered":
        return 100 * r["accuracy_ordered"]
    if key == "all_gap":
        return 100 * (r["accuracy_ordered"] - r["accuracy_shuffled"])
    if key == "qs_conflict":
        return 100 * r["cue_split"]["ordered"]["conflict"]["accuracy"]
    if key in ("fire_rate", "advantage_shift"):
        values = [p[key] for p in r["rl_curve"] if p.get(key) is not None]
        return (100 if key == "fire_rate" else 1) * sum(values) / len(values) if values else None
    raise KeyError(key)


def _ci(values: list[float], digits: int = 1) -> str:
    from videor1.demo.stats import mean_ci

    if not values:
        return "–"
    mean, low, high = mean_ci(values)
    return (
        f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
        if len(values) > 1
        else f"{mean:.{digits}f}"
    )


def tables(out: Path, design: Any) -> str:
    """The generated block for ``out``; ``design`` is the run's ``tgrpo_power.Design`` (its SFT settings)."""

    from videor1.demo.stats import (
        mean_std,
        min_detectable_difference,
        min_sign_flip_p,
        paired_differences,
        sign_flip_p,
    )

    sft = json.loads((out / "sft.json").read_text(encoding="utf-8"))
    results = load_results(out)
    by = {(r["variant"], r["seed"]): r for r in results}
    variants = [v for v in VARIANTS if any(k[0] == v for k in by)]
    steps = sorted({r["steps"] for r in results})
    lines: list[str] = []
    qs, split = sft["per_family"][SHORTCUT], sft["cue_split"]
    lines += [
        "### Before RL: the SFT checkpoint",
        "",
        f"SFT: {design.sft_steps} steps on the demo's families without {', '.join(design.sft_exclude)}, "
        f"shortcut items only where the cue is right (items per family: "
        + ", ".join(f"{f} {n}" for f, n in sft["sft_items"].items())
        + f"). Held-out cue agreement of `{SHORTCUT}`: {100 * sft['cue_agreement']['test']:.0f}%.",
        "",
        "| held-out items | n | ordered | shuffled |",
        "|---|---|---|---|",
    ]
    for key, label in (("agree", "colour agrees with the answer"), ("conflict", "colour disagrees")):
        o, sh = split["ordered"][key], split["shuffled"][key]
        lines.append(
            f"| `{SHORTCUT}`, {label} | {o['n']} | {100 * o['accuracy']:.1f} | {100 * sh['accuracy']:.1f} |"
        )
    lines.append(
        f"| `{SHORTCUT}`, all (cue-free) | {qs['n']} | {100 * qs['ordered']:.1f} | {100 * qs['shuffled']:.1f} |"
    )
    for f, v in sft["per_family"].items():
        if f != SHORTCUT:
            lines.append(f"| `{f}` | {v['n']} | {100 * v['ordered']:.1f} | {100 * v['shuffled']:.1f} |")
    lines.append(
        f"| all families | {sum(v['n'] for v in sft['per_family'].values())} | "
        f"{100 * sft['accuracy_ordered']:.1f} | {100 * sft['accuracy_shuffled']:.1f} |"
    )

    # Only seeds every variant finished: a partly run seed would unpair the per-variant means.
    complete = sorted(k for k in {s for (_, s) in by} if all((v, k) in by for v in variants))
    partial = sorted(f"{v} seed {k}" for (v, k) in by if k not in complete)
    seeds_of = {v: complete for v in variants}
    lines += [
        "",
        "### Per variant (mean [95% t interval] over seeds; accuracies in %)",
        "",
        f"RL steps run: {', '.join(map(str, steps))}; RL lr "
        f"{', '.join(sorted({format(r.get('lr', 2e-5), 'g') for r in results}))}. "
        f"Held-out `{SHORTCUT}` items are cue-free.",
        "",
        f"| variant | seeds | `{SHORTCUT}` ordered | shuffled | gap | colour-conflict items ordered | all families ordered | all gap | fires % | mean \\|ΔA\\| | per seed (`{SHORTCUT}` ordered) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        runs = [by[v, s] for s in seeds_of[v]]

        def col(key: str, digits: int = 1, runs=runs) -> str:
            vals = [x for x in (metric(r, key) for r in runs) if x is not None]
            return _ci(vals, digits)

        fires = col("fire_rate") if v != "grpo" else "–"
        shift = col("advantage_shift", 3) if v != "grpo" else "–"
        per_seed = ", ".join(f"{metric(r, 'qs_ordered'):.1f}" for r in runs)
        lines.append(
            f"| {LABELS[v]} | {len(runs)} | {col('qs_ordered')} | {col('qs_shuffled')} | {col('qs_gap')} | "
            f"{col('qs_conflict')} | {col('all_ordered')} | {col('all_gap')} | {fires} | {shift} | {per_seed} |"
        )

    lines += [
        "",
        "### Paired comparisons (variant − variant it is compared with, same seed; points)",
        "",
        "p: exact two-sided sign-flip permutation test over the 2^n sign assignments "
        "(smallest possible p with n seeds: 2/2^n). MDD: minimum detectable mean difference at 80% power "
        "(two-sided 5% paired t) from the observed spread of the differences.",
        "",
        "| comparison | measure | n | per-seed difference | mean [95% interval] | p | MDD (min p) |",
        "|---|---|---|---|---|---|---|",
    ]
    pairs = [(v, ref) for v in TGRPO for ref in ("grpo", "tgrpo-no-bonus")]
    pairs.append(("tgrpo-no-bonus", "grpo"))  # the extra shuffled rollouts alone
    for v, ref in pairs:
        if v in variants and ref in variants:
            common = [s for s in seeds_of[v] if s in seeds_of[ref]]
            if not common:
                continue
            for key, label in (
                ("qs_ordered", f"`{SHORTCUT}` ordered"),
                ("qs_gap", f"`{SHORTCUT}` gap"),
                ("all_ordered", "all ordered"),
            ):
                diffs = paired_differences(
                    [metric(by[v, s], key) for s in common], [metric(by[ref, s], key) for s in common]
                )
                sd = mean_std(diffs)[1]
                mdd = f"{min_detectable_difference(sd, len(diffs)):.1f}" if len(diffs) > 1 else "–"
                lines.append(
                    f"| {LABELS[v]} − {LABELS[ref]} | {label} | {len(diffs)} | "
                    + ", ".join(f"{x:+.1f}" for x in diffs)
                    + f" | {_ci(diffs)} | {sign_flip_p(diffs):.3f} | {mdd} ({min_sign_flip_p(len(diffs)):.3f}) |"
                )

    curve_steps = sorted({p["step"] for r in results for p in r["heldout_curve"]})
    lines += [
        "",
        f"### Learning curves: held-out `{SHORTCUT}` ordered accuracy (mean over seeds, %)",
        "",
        "| variant | " + " | ".join(f"step {s}" for s in curve_steps) + " |",
        "|---|" + "---|" * len(curve_steps),
    ]
    for v in variants:
        cells = []
        for step in curve_steps:
            vals = [
                100 * p["ordered"]
                for s in seeds_of[v]
                for p in by[v, s]["heldout_curve"]
                if p["step"] == step
            ]
            cells.append(f"{sum(vals) / len(vals):.1f}" if vals else "–")
        lines.append(f"| {LABELS[v]} | " + " | ".join(cells) + " |")
    window = max(1, (max(steps) if steps else 1) // 4)
    lines += [
        "",
        f"Training accuracy on the RL items (the cue names the quarter in 86%), mean over seeds of "
        f"windows of {window} steps (%; ordered rollouts):",
        "",
        "| variant | " + " | ".join(f"steps {i * window + 1}-{(i + 1) * window}" for i in range(4)) + " |",
        "|---|" + "---|" * 4,
    ]
    for v in variants:
        cells = []
        for i in range(4):
            vals = [
                100 * p["accuracy"]
                for s in seeds_of[v]
                for p in by[v, s]["rl_curve"]
                if i * window < p["step"] <= (i + 1) * window and p.get("accuracy") is not None
            ]
            cells.append(f"{sum(vals) / len(vals):.1f}" if vals else "–")
        lines.append(f"| {LABELS[v]} | " + " | ".join(cells) + " |")

    if partial:
        lines += ["", f"Left out (their seed is not finished for every variant): {', '.join(partial)}."]
    rl_cpu = sum(r["cpu_seconds"] for r in results)
    rl_wall = sum(r["seconds"]["total"] for r in results)
    threads = sorted({r["threads"] for r in results})
    dates = sorted({r["date"] for r in results})
    lines += [
        "",
        f"Ran: {len(results)} RL runs in all; in the tables, seeds {complete} of "
        f"{', '.join(LABELS[v] for v in variants)}, "
        f"{', '.join(map(str, steps))} RL steps each. Time on this machine ({results[0]['machine'] if results else '?'}, "
        f"torch threads {threads}, shared with other jobs): SFT stage {sft['seconds']['data'] + sft['seconds']['sft'] + sft['seconds']['eval']:.0f} s wall "
        f"({sft['cpu_seconds']:.0f} s CPU), RL runs with their evaluations {rl_wall:.0f} s wall ({rl_cpu:.0f} s CPU). "
        f"Runs dated {', '.join(dates)}.",
    ]
    return "\n".join(lines)


def write_doc(path: Path, text: str) -> None:
    """Replace the generated block between the markers of ``path`` (appended if missing)."""
    block = f"{START}\n{text}\n{END}"
    doc = path.read_text(encoding="utf-8") if path.exists() else "# T-GRPO power experiment\n"
    if START in doc and END in doc:
        doc = doc[: doc.index(START)] + block + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc, encoding="utf-8")
