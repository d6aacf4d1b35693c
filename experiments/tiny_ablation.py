"""Tiny-model ablation: which from-scratch tiny model learns position and frame order on a 2-core CPU.

Every run builds a random-init tiny model with ``videor1.models.tiny``, trains it with the real SFT
recipe (``videor1.train.sft``) on procedural data (``videor1.data.synth``) and scores it with the
real evaluation runner on held-out items, once with ordered and once with shuffled frames. What
varies between runs is one of:

- the model family and its RoPE: Qwen2.5-VL (mRoPE sections t:h:w in contiguous blocks, time on the
  fastest frequencies, width on the slowest) or Qwen3-VL (interleaved sections, timestamps as text),
  and the language model's ``rope_theta``;
- whether the ViT has an absolute position embedding (Qwen3-VL's ViT has one, Qwen2.5-VL's has
  only 2-D RoPE), which follows from the family;
- the SFT curriculum (``images-first``: the image records alone, then everything; ``none``: all at
  once);
- the chain-of-thought length of the SFT targets (``none`` = empty ``<think>``, ``short``, ``full``).

Run it from the repository root (one run takes a few minutes on 2 cores; results are cached per run
under ``--out``, so a rerun only trains what is missing)::

    PYTHONPATH=src python experiments/tiny_ablation.py                    # every run below
    PYTHONPATH=src python experiments/tiny_ablation.py --only q25-theta1e6 q25-theta100
    PYTHONPATH=src python experiments/tiny_ablation.py --quick            # toy sizes, under a minute
    PYTHONPATH=src python experiments/tiny_ablation.py --table-only       # rebuild the table

It writes ``<out>/<run>/result.json`` and the markdown table (``--table``, default
``docs/tiny_model_ablation.md`` for full runs). Nothing is downloaded: the model, the tokenizer
and the data are all built locally.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from videor1.config import (
    Config,
    DataConfig,
    MediaConfig,
    ModelConfig,
    SFTConfig,
    TinyModelConfig,
    TrainConfig,
)

SYSTEM_PROMPT = "You are a helpful assistant"
FOUR = ("image_color", "image_position", "event_quarter", "direction")
FIVE = (*FOUR, "quarter_shortcut")
"""The demo's families: FOUR and the shortcut-control family."""


DEMO_TINY = {
    "hidden_size": 192,
    "num_layers": 3,
    "num_heads": 4,
    "num_kv_heads": 2,
    "intermediate_size": 512,
    "vision_hidden_size": 96,
    "vision_depth": 2,
    "vision_heads": 4,
}
"""The demo's tiny sizes before this ablation (3.3 M parameters with the small tokenizer)."""


@dataclass(frozen=True)
class Run:
    """One ablation run: the tiny model, the data and the SFT schedule."""

    name: str
    families: tuple[str, ...] = FOUR
    model_family: str = "qwen2.5-vl"
    rope_theta: float = 1e6
    match_position_scale: bool = False  # Qwen3-VL: ViT position table at the patch-embedding scale
    curriculum: str = "images-first"  # "images-first" | "none"
    cot: str = "short"  # "none" | "short" | "full"
    steps: int = 600  # SFT optimiser steps in all (both phases)
    image_steps: int = 200  # of which the images-only phase (images-first)
    lr: float = 1e-3
    batch: int = 8
    seed: int = 0
    train_items: int = 1500
    test_items: int = 200
    size: int = 112
    frames: int = 16
    tiny: dict[str, Any] = field(default_factory=lambda: dict(DEMO_TINY))  # TinyModelConfig sizes
    curve_every: int = 0  # also score the first curve_items held-out items (ordered) every N steps
    curve_items: int = 100
    note: str = ""


Q3 = {"model_family": "qwen3-vl", "rope_theta": 5e6, "size": 128}
"""Qwen3-VL at 128 px: 4 x 4 visual tokens per frame, as Qwen2.5-VL at 112 px (32 vs 28 px a token)."""

POS = {"families": ("image_position",), "curriculum": "none", "steps": 300, "image_steps": 0}
"""One image family alone: can the model learn where the shape is at all?"""
MIX = {"families": FIVE, "cot": "none", "curriculum": "none", "lr": 1e-4, "curve_every": 100}
"""The demo's five families, answer-only, one phase, lr 1e-4, with a learning curve."""
MIX_SHORT = {**MIX, "cot": "short"}
"""MIX with the short templated CoT in the SFT targets."""

RUNS: list[Run] = [
    # 1. The demo's recipe before this ablation (lr 1e-3, images first, short CoT), four families.
    Run("q25-theta1e6", rope_theta=1e6, note="the demo before this ablation"),
    Run("q25-theta100", rope_theta=100.0),
    Run("q3-theta5e6", model_family="qwen3-vl", rope_theta=5e6, note="112 px: 3 x 3 tokens per frame"),
    # 2. image_position alone at lr 1e-3: nothing learns, whatever the RoPE or the position table.
    Run("pos-q25-theta1e6", **POS, rope_theta=1e6),
    Run("pos-q25-theta10", **POS, rope_theta=10.0),
    Run("pos-q25-theta50-nocot", **POS, rope_theta=50.0, cot="none"),
    Run("pos-q3-s128", **POS, **Q3),
    Run("pos-q3-s128-pos", **POS, **Q3, match_position_scale=True),
    Run("pos-q3-s128-nocot", **POS, **Q3, cot="none"),
    Run("pos-q3-s128-pos-nocot", **POS, **Q3, match_position_scale=True, cot="none"),
    # 3. The demo's five families at lr 1e-4 (one change at a time from the winner, the first row).
    Run("mix-q3-pos-nocot-lr1e-4", **MIX, **Q3, match_position_scale=True),
    Run("mix-q3-pos-nocot-lr3e-4", **{**MIX, "lr": 3e-4}, **Q3, match_position_scale=True),
    Run("mix-q3-nopos-nocot-lr1e-4", **MIX, **Q3),
    Run("mix-q3-pos-short-lr1e-4", **MIX_SHORT, **Q3, match_position_scale=True),
    Run("mix-q3-pos-lr1e-4", families=FIVE, **Q3, match_position_scale=True, lr=1e-4),
    Run("mix-q25-theta1e6-nocot-lr1e-4", **MIX, rope_theta=1e6),
    Run("mix-q25-theta100-nocot-lr1e-4", **MIX, rope_theta=100.0),
    Run("mix-q25-theta10-nocot-lr1e-4", **MIX, rope_theta=10.0),
]
"""The ablation grid, in table order (each run is cached by name under ``--out``)."""


def quick(run: Run) -> Run:
    """Toy sizes of a run: checks the script end to end in under a minute."""
    return dataclasses.replace(
        run, steps=4, image_steps=2, train_items=16, test_items=8, size=56, frames=8, tiny={}, batch=4
    )


# --------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------


def media(run: Run) -> MediaConfig:
    pixels = run.size * run.size
    return MediaConfig(
        fps=2.0,
        min_frames=4,
        max_frames=run.frames,
        video_min_pixels=pixels,
        video_max_pixels=pixels,
        image_min_pixels=pixels,
        image_max_pixels=pixels,
    )


def data_dir(run: Run, root: Path) -> Path:
    """Generated once per (families, CoT, sizes, seed) and shared by the runs that match."""
    key = json.dumps([run.families, run.cot, run.train_items, run.test_items, run.size, run.frames, run.seed])
    return root / "data" / hashlib.sha1(key.encode()).hexdigest()[:10]


def ensure_data(run: Run, root: Path) -> Path:
    from videor1.data.synth import generate_dataset

    out = data_dir(run, root)
    if not (out / "meta.json").exists():
        if out.exists():
            shutil.rmtree(out)
        generate_dataset(
            out,
            train=run.train_items,
            test=run.test_items,
            seed=run.seed,
            families=list(run.families),
            size=run.size,
            frames=run.frames,
            jobs=2,
            cot_detail=run.cot,
        )
        records = json.loads((out / "train_cot.json").read_text(encoding="utf-8"))
        images = [r for r in records if r["data_type"] == "image"]
        (out / "train_cot_images.json").write_text(json.dumps(images), encoding="utf-8")
    return out


def sft_config(run: Run, data: Path, model: Path, out: Path, *, steps: int, images_only: bool) -> Config:
    return Config(
        model=ModelConfig(path=str(model)),
        data=DataConfig(
            train_file=str(data / ("train_cot_images.json" if images_only else "train_cot.json")),
            media_root=str(data),
            media=media(run),
            prompt_variant="eval",
            system_prompt=SYSTEM_PROMPT,
        ),
        train=TrainConfig(
            output_dir=str(out),
            seed=run.seed,
            per_device_batch_size=run.batch,
            max_steps=steps,
            lr=run.lr,
            weight_decay=0.01,
            max_grad_norm=1.0,
            scheduler="constant",
            warmup_steps=min(20, steps // 10),
            max_seq_len=4096,
            keep_last=1,
        ),
        sft=SFTConfig(system_prompt=SYSTEM_PROMPT),
    )


def evaluate(
    run: Run,
    model: Path,
    data: Path,
    out: Path,
    *,
    views: tuple[str, ...] = ("ordered", "shuffled"),
    limit: int | None = None,
) -> dict[str, dict[str, float]]:
    """Per family, held-out accuracy of each view (``ordered``, ``shuffled``), with the demo's evaluation."""
    from videor1.demo.evaluation import evaluate_view
    from videor1.infer import Predictor

    predictor = Predictor(str(model), media=media(run))
    scores = {}
    for view in views:
        run_dir = out / f"eval-{view}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        result = evaluate_view(
            predictor,
            data,
            run_dir,
            media(run),
            shuffled=view == "shuffled",
            seed=run.seed,
            max_new_tokens=120 if run.cot == "full" else 80,
            batch=16,
            label=f"{run.name} ({view})",
            limit=limit,
        )
        scores[view] = result["per_family"]
    return {f: {view: scores[view][f] for view in views} for f in sorted(scores[views[0]])}


def train_and_score(run: Run, root: Path) -> dict[str, Any]:
    from videor1.models.tiny import build_tiny_model
    from videor1.train import sft

    out = root / run.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    data = ensure_data(run, root)
    t_data = time.perf_counter() - t0
    tiny = TinyModelConfig(
        family=run.model_family,
        tokenizer="small",
        rope_theta=run.rope_theta,
        match_position_scale=run.match_position_scale,
        seed=run.seed,
        **run.tiny,
    )
    base = build_tiny_model(tiny, out / "model-base")
    if run.curriculum == "images-first":
        phases = [("sft-images", run.image_steps, True), ("sft", run.steps - run.image_steps, False)]
    elif run.curriculum == "none":
        phases = [("sft", run.steps, False)]
    else:
        raise ValueError(f"{run.name}: unknown curriculum {run.curriculum!r}")
    model, offset, t_sft, curve = base, 0, 0.0, []
    for name, steps, images_only in phases:
        cfg = sft_config(run, data, model, out / name, steps=steps, images_only=images_only)
        every = run.curve_every
        stops = (
            [g - offset for g in range((offset // every + 1) * every, offset + steps, every)] if every else []
        )
        for stop in [*stops, steps]:
            t1 = time.perf_counter()
            model = sft.train(cfg, resume="auto", stop_at_step=stop)
            t_sft += time.perf_counter() - t1
            if every and offset + stop < run.steps:  # the final point is the full evaluation
                point = evaluate(run, Path(model), data, out, views=("ordered",), limit=run.curve_items)
                curve.append({"step": offset + stop, **{f: v["ordered"] for f, v in point.items()}})
        offset += steps
    t2 = time.perf_counter()
    scores = evaluate(run, Path(model), data, out)
    t_eval = time.perf_counter() - t2
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    losses = [json.loads(x)["loss"] for x in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    return {
        "run": dataclasses.asdict(run),
        "scores": scores,
        "curve": curve,
        "chance": {f: meta["families"][f]["chance"] for f in run.families},
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "seconds": {"data": round(t_data, 1), "sft": round(t_sft, 1), "eval": round(t_eval, 1)},
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    families = sorted(
        {f for r in results for f in r["scores"]},
        key=lambda f: (f not in FIVE, FIVE.index(f) if f in FIVE else f),
    )
    header = [
        "run",
        "model (RoPE)",
        "θ",
        "ViT pos. emb.",
        "tokens",
        "curriculum",
        "CoT",
        "lr",
        "steps",
        "SFT s",
    ]
    header += [f"{f} ord/shuf" for f in families]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in results:
        run = r["run"]
        rope = "Qwen3-VL (interleaved)" if run["model_family"] == "qwen3-vl" else "Qwen2.5-VL (blocks)"
        row = [
            run["name"],
            rope,
            f"{run['rope_theta']:g}",
            _position_embedding(run),
            _tokens(run),
            run["curriculum"] + (f" ({run['image_steps']})" if run["curriculum"] == "images-first" else ""),
            run["cot"],
            f"{run['lr']:g}",
            str(run["steps"]),
            f"{r['seconds']['sft']:.0f}",
        ]
        for f in families:
            s = r["scores"].get(f)
            row.append(f"{100 * s['ordered']:.0f} / {100 * s['shuffled']:.0f}" if s else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _position_embedding(run: dict[str, Any]) -> str:
    if run["model_family"] != "qwen3-vl":
        return "none"
    return "scaled to patches" if run.get("match_position_scale") else "class init (std 0.02)"


def _tokens(run: dict[str, Any]) -> str:
    """Visual tokens per frame side after Qwen's resize (28 px a token for 2.5-VL, 32 for 3-VL)."""
    from videor1.data.frames import smart_resize

    factor = 32 if run["model_family"] == "qwen3-vl" else 28
    pixels = run["size"] ** 2
    side = smart_resize(run["size"], run["size"], factor=factor, min_pixels=pixels, max_pixels=pixels)[0]
    return f"{side // factor}x{side // factor}"


def axis_frequencies(family: str, theta: float, head_dim: int = 48) -> dict[str, list[float]]:
    """RoPE frequencies (rad per position step) that each mRoPE axis gets, as transformers assigns them.

    Qwen2/2.5-VL: contiguous blocks, time on the fastest ``t`` frequencies, then height, then width
    (the slowest). Qwen3-VL: interleaved, ``h`` at indices 1, 4, 7, ..., ``w`` at 2, 5, 8, ..., the
    rest ``t``, so every axis has fast and slow frequencies.
    """
    from videor1.models.tiny import _mrope_section

    half = head_dim // 2
    inv_freq = [theta ** (-2 * i / head_dim) for i in range(half)]
    t, h, w = _mrope_section(head_dim, family)
    if family == "qwen3-vl":
        h_idx, w_idx = list(range(1, 3 * h, 3)), list(range(2, 3 * w, 3))
        t_idx = [i for i in range(half) if i not in h_idx + w_idx]
    else:
        t_idx, h_idx, w_idx = list(range(t)), list(range(t, t + h)), list(range(t + h, half))
    return {axis: [inv_freq[i] for i in idx] for axis, idx in (("t", t_idx), ("h", h_idx), ("w", w_idx))}


def frequency_table() -> str:
    """Largest q.k rotation across a frame 4 tokens wide (3 steps) per axis, per layout and theta."""
    rows = [
        "| model (RoPE) | θ | width: max rotation across 4 tokens (rad) | height | time: fastest / slowest (rad/step) |"
    ]
    rows.append("|---|---|---|---|---|")
    for family, theta in (
        ("qwen2.5-vl", 1e6),
        ("qwen2.5-vl", 100.0),
        ("qwen2.5-vl", 10.0),
        ("qwen3-vl", 5e6),
    ):
        f = axis_frequencies(family, theta)
        rows.append(
            f"| {family} | {theta:g} | {3 * max(f['w']):.2g} | {3 * max(f['h']):.2g} | "
            f"{max(f['t']):.2g} / {min(f['t']):.2g} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"), help="run directory root")
    parser.add_argument("--only", nargs="+", default=None, help="run only these names")
    parser.add_argument("--quick", action="store_true", help="toy sizes (checks the script)")
    parser.add_argument("--force", action="store_true", help="rerun runs that have a result")
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from cached results")
    parser.add_argument("--table", type=Path, default=None, help="markdown file for the table")
    parser.add_argument("--frequencies", action="store_true", help="print the mRoPE frequency table and exit")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared 2-core machine two threads ran 10x slower)",
    )
    args = parser.parse_args(argv)
    if args.frequencies:
        sys.stdout.write(frequency_table() + "\n")
        return 0

    torch.set_num_threads(args.threads)
    root = args.out / ("quick" if args.quick else "full")
    names = {r.name for r in RUNS}
    unknown = set(args.only or []) - names
    if unknown:
        parser.error(f"unknown runs {sorted(unknown)}; known: {', '.join(r.name for r in RUNS)}")
    runs = [quick(r) if args.quick else r for r in RUNS if not args.only or r.name in args.only]
    results = []
    for run in runs:
        path = root / run.name / "result.json"
        if path.exists() and not args.force:
            results.append(json.loads(path.read_text(encoding="utf-8")))
            continue
        if args.table_only:
            continue
        result = train_and_score(run, root)
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        results.append(result)
        sys.stdout.write(table([result]) + "\n")
    text = table(results)
    sys.stdout.write(text + "\n")
    target = args.table or (None if args.quick else Path("docs/tiny_model_ablation.md"))
    if target is not None:
        write_doc(target, text, results)
    return 0


def write_doc(path: Path, text: str, results: list[dict[str, Any]]) -> None:
    """Replace the generated table between the markers of ``path`` (created if missing)."""
    start, end = "<!-- ablation-table:start -->", "<!-- ablation-table:end -->"
    dates = sorted({r["date"] for r in results})
    block = f"{start}\n{text}\n\nRuns dated {', '.join(dates)}.\n{end}"
    if path.exists():
        doc = path.read_text(encoding="utf-8")
        if start in doc and end in doc:
            doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end) :]
        else:
            doc = doc.rstrip() + "\n\n" + block + "\n"
    else:
        doc = "# Tiny-model ablation\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
