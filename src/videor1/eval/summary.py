"""Aggregate prediction lines into one benchmark's summary (pure: lines in, dict out).

Overall scores:

* ``video-r1`` (the reference's report): ``accuracy`` = mean score over non-regression items,
  ``mra`` = mean strict-``<`` MRA over regression items, ``overall`` = the mean of whichever of the two
  exist, i.e. ``(accuracy + mra) / 2`` for VSI-Bench and the accuracy for multiple-choice-only sets.
* ``official``: the same two means with the official item rules (first-word reading, MRA with
  ``<=``; :mod:`videor1.eval.scoring`); for VSI-Bench, when
  every scored item carries a known task type, ``overall`` is the unweighted mean over the 8 task
  categories (relative direction = mean of easy / medium / hard), as the VSI-Bench release reports it;
  otherwise the same rule as above, and ``overall_rule`` says which one was used.
  ``accuracy_lenient`` / ``overall_lenient`` repeat the multiple-choice numbers with lenient letter
  parsing.

Items whose media failed are *excluded* from every mean and counted in ``errors`` with their reasons;
``complete`` is False while some items have no line yet.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from videor1.eval.benchmarks import VSIBENCH_CATEGORIES, Benchmark
from videor1.eval.metrics import vsi_bench_overall

MAX_LISTED_ERRORS = 20


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _overall(acc: float | None, mra: float | None) -> float | None:
    parts = [v for v in (acc, mra) if v is not None]
    return _mean(parts)


def _group_means(lines: list[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in lines:
        if line.get(key) is not None:
            groups[str(line[key])].append(line)
    out = {}
    for name in sorted(groups):
        items = groups[name]
        out[name] = {
            "n": len(items),
            "video-r1": _mean([ln["score"]["video-r1"] for ln in items]),
            "official": _mean([ln["score"]["official"] for ln in items]),
        }
    return out


def vsibench_macro(lines: list[Mapping[str, Any]]) -> tuple[float | None, dict[str, float]]:
    """Official VSI-Bench overall (``metrics.vsi_bench_overall`` over the official item scores).

    Returns ``(overall, {task category: score})``; ``(None, {})`` when some scored item carries no
    known VSI-Bench task type (the macro mean is then not defined for this file).
    """
    if not lines or any(line.get("task") not in VSIBENCH_CATEGORIES for line in lines):
        return None, {}
    per_task = vsi_bench_overall((line["task"], line["score"]["official"]) for line in lines)
    overall = per_task.pop("overall")
    return overall, dict(sorted(per_task.items()))


def summarize(bench: Benchmark, lines: Iterable[Mapping[str, Any]], *, total: int, file: str = "") -> dict:
    """The summary of one benchmark from its prediction lines (``total`` = items in the file after limit)."""
    lines = list(lines)
    ok = [ln for ln in lines if ln["status"] == "ok"]
    errors = [ln for ln in lines if ln["status"] == "error"]
    acc_items = [ln for ln in ok if ln["metric"] == "accuracy"]
    mra_items = [ln for ln in ok if ln["metric"] == "mra"]
    mc_items = [ln for ln in ok if ln["score"].get("lenient") is not None]

    ref_acc = _mean([ln["score"]["video-r1"] for ln in acc_items])
    ref_mra = _mean([ln["score"]["video-r1"] for ln in mra_items])
    off_acc = _mean([ln["score"]["official"] for ln in acc_items])
    off_mra = _mean([ln["score"]["official"] for ln in mra_items])
    # lenient: multiple-choice items use the lenient letter; other accuracy items keep their score
    lenient_acc = _mean(
        [
            ln["score"]["lenient"] if ln["score"].get("lenient") is not None else ln["score"]["official"]
            for ln in acc_items
        ]
    )

    official: dict[str, Any] = {
        "accuracy": off_acc,
        "accuracy_lenient": lenient_acc,
        "mra": off_mra,
        "overall": _overall(off_acc, off_mra),
        "overall_lenient": _overall(lenient_acc, off_mra),
        "overall_rule": "mean of (accuracy, MRA<=) over those present",
    }
    if bench.is_vsibench and ok:
        macro, categories = vsibench_macro(ok)
        if macro is not None:
            official["overall"] = macro
            official["by_category"] = categories
            official["overall_rule"] = "VSI-Bench macro mean over 8 task categories"
            official.pop("overall_lenient")
        else:
            official["overall_rule"] += " (records carry no VSI-Bench task type: macro mean not computed)"

    reasons = Counter(str(ln.get("error", "")).split(":", 1)[0] for ln in errors)
    return {
        "benchmark": bench.name,
        "display": bench.display,
        "file": file,
        "n": total,
        "done": len(lines),
        "complete": len(lines) == total,
        "scored": len(ok),
        "errors": len(errors),
        "error_kinds": dict(reasons),
        "error_items": [
            {"index": ln["index"], "problem_id": ln["problem_id"], "reason": ln.get("error")}
            for ln in errors[:MAX_LISTED_ERRORS]
        ],
        "missing_answer_tag": sum(1 for ln in ok if not ln["has_answer_tag"]),
        "parse_failures": sum(1 for ln in ok if not ln["parse_ok"]),
        "n_accuracy": len(acc_items),
        "n_multiple_choice": len(mc_items),
        "n_mra": len(mra_items),
        "video-r1": {
            "accuracy": ref_acc,
            "mra": ref_mra,
            "overall": _overall(ref_acc, ref_mra),
            "overall_rule": "mean of (accuracy, MRA<) over those present (VSI-Bench: (acc + MRA) / 2)",
        },
        "official": official,
        "by_problem_type": _group_means(ok, "problem_type"),
        "by_task": _group_means(ok, "task"),
        "by_family": _group_means(ok, "family"),
        "by_source": _group_means(ok, "data_source"),
    }
