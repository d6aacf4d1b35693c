"""Evaluation reports: ``summary.json`` + ``summary.md`` per run, and a combined table + bar chart.

``summary.md`` has one table over the run's benchmarks (n, scored, errors, missing answer tags,
parse failures, then accuracy / MRA / overall under both scorings), per-task and per-family tables
when the records carry those fields, and the list of failed items with their reasons.

:func:`write_combined_report` puts several runs (checkpoints, or ordered vs shuffled frames) side by
side: ``combined.md`` (rows = runs, columns = benchmarks), ``combined.json`` and ``combined.png``
(grouped bars, one group per benchmark, one bar per run) drawn with matplotlib's Agg backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videor1.utils.rundir import atomic_path, write_text_atomic

SCORINGS: tuple[str, ...] = ("video-r1", "official")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The ``summary.md`` text of one run."""
    run = summary["run"]
    media = run["media"]
    sampling = run["sampling"]
    frames = media.get("nframes") or f"fps {media['fps']} (max {media['max_frames']})"
    decoding = (
        "greedy"
        if run["greedy"] or sampling["temperature"] == 0
        else f"temperature {sampling['temperature']}, top-p {sampling['top_p']}"
    )
    lines = [
        f"# Evaluation: {run['extra'].get('label', run['model'])}",
        "",
        f"- model: `{run['model']}`",
        f"- frames: {frames}; pixels per frame: {media['video_min_pixels']}–{media['video_max_pixels']}",
        f"- decoding: {decoding}, max {sampling['max_new_tokens']} new tokens",
        f"- frame order: {'shuffled (' + run['shuffle_unit'] + ', seed ' + str(run['seed']) + ')' if run['shuffle_frames'] else 'ordered'}",
        "",
        "Scores in %. video-r1 = the reference's rules (exact match, MRA with `<`, overall = mean of "
        "accuracy and MRA); official = VSI-Bench's released rules (first word, case-insensitive letter, "
        "MRA with `<=`, macro mean over task categories when task types are present); lenient = "
        "multiple-choice letters parsed leniently.",
        "",
    ]
    header = [
        "benchmark", "n", "scored", "errors", "no <answer>", "parse fail",
        "acc (r1)", "MRA< (r1)", "overall (r1)", "acc (off)", "acc lenient", "MRA<= (off)", "overall (off)",
    ]  # fmt: skip
    rows = []
    for s in summary["benchmarks"].values():
        ref, off = s["video-r1"], s["official"]
        rows.append(
            [
                s["display"] + ("" if s["complete"] else f" (incomplete: {s['done']}/{s['n']})"),
                str(s["n"]),
                str(s["scored"]),
                str(s["errors"]),
                str(s["missing_answer_tag"]),
                str(s["parse_failures"]),
                _pct(ref["accuracy"]),
                _pct(ref["mra"]),
                _pct(ref["overall"]),
                _pct(off["accuracy"]),
                _pct(off["accuracy_lenient"]),
                _pct(off["mra"]),
                _pct(off["overall"]),
            ]
        )
    lines += _table(header, rows)
    for s in summary["benchmarks"].values():
        for key, title in (
            ("by_task", "task"),
            ("by_family", "family"),
            ("by_source", "data source"),
            ("by_problem_type", "problem type"),
        ):
            groups = s.get(key) or {}
            if not groups or (key in ("by_problem_type", "by_source") and len(groups) < 2):
                continue
            if key == "by_source" and s.get("by_family"):  # procedural sources name the family again
                continue
            lines += ["", f"## {s['display']} by {title}", ""]
            lines += _table(
                [title, "n", "video-r1", "official"],
                [[g, str(v["n"]), _pct(v["video-r1"]), _pct(v["official"])] for g, v in groups.items()],
            )
        if s["official"].get("by_category"):
            lines += ["", f"## {s['display']} official categories", ""]
            lines += _table(
                ["category", "score"], [[c, _pct(v)] for c, v in s["official"]["by_category"].items()]
            )
        if s["errors"]:
            lines += ["", f"## {s['display']}: {s['errors']} item(s) excluded by errors", ""]
            lines += [
                f"- [{e['index']}] problem_id={e['problem_id']!r}: {e['reason']}" for e in s["error_items"]
            ]
            if s["errors"] > len(s["error_items"]):
                lines.append(f"- ... and {s['errors'] - len(s['error_items'])} more (see predictions.jsonl)")
    return "\n".join(lines) + "\n"


def write_summary(summary: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "summary.json", out / "summary.md"
    write_text_atomic(json_path, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(md_path, summary_markdown(summary))
    return json_path, md_path


def combined_scores(
    summaries: Mapping[str, Mapping[str, Any]], scoring: str
) -> dict[str, dict[str, float | None]]:
    """``{run label: {benchmark display name: overall}}`` under one scoring."""
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    return {
        label: {s["display"]: s[scoring]["overall"] for s in summary["benchmarks"].values()}
        for label, summary in summaries.items()
    }


def write_combined_report(
    summaries: Mapping[str, Mapping[str, Any]], out_dir: str | Path, *, title: str = "Evaluation"
) -> dict[str, Path]:
    """Side-by-side report of several runs: ``combined.md``, ``combined.json`` and ``combined.png``.

    ``summaries`` maps a run label (checkpoint name, "T-GRPO shuffled", ...) to what
    :func:`videor1.eval.runner.evaluate` returned for it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {scoring: combined_scores(summaries, scoring) for scoring in SCORINGS}
    benches: list[str] = []
    for per_run in tables["official"].values():
        benches += [b for b in per_run if b not in benches]
    md = [f"# {title}", "", "Overall scores in % (errors excluded and counted per run in summary.md).", ""]
    for scoring in SCORINGS:
        md += [f"## {scoring} scoring", ""]
        rows = [
            [label] + [_pct(per_run.get(b)) for b in benches] for label, per_run in tables[scoring].items()
        ]
        md += _table(["run", *benches], rows) + [""]
    counts = [
        [label] + [f"{s['errors']}/{s['n']}" for s in summary["benchmarks"].values()]
        for label, summary in summaries.items()
    ]
    md += ["## errors / items", ""] + _table(["run", *benches], counts) + [""]
    paths = {"md": out / "combined.md", "json": out / "combined.json", "png": out / "combined.png"}
    write_text_atomic(paths["md"], "\n".join(md))
    write_text_atomic(paths["json"], json.dumps(tables, indent=2) + "\n")

    fig, axes = plt.subplots(1, len(SCORINGS), figsize=(max(6.0, 1.6 * len(benches) * len(SCORINGS)), 4.0))
    labels = list(summaries)
    width = 0.8 / max(1, len(labels))
    for ax, scoring in zip(axes, SCORINGS):
        for j, label in enumerate(labels):
            values = [100 * (tables[scoring][label].get(b) or 0.0) for b in benches]
            xs = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(benches))]
            ax.bar(xs, values, width=width, label=label)
        ax.set_xticks(range(len(benches)), benches, rotation=20, ha="right")
        ax.set_ylabel("overall (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{scoring} scoring")
    axes[0].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_path(paths["png"]) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return paths
