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
from collections import defaultdict
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
    note: str = ""


RUNS: list[Run] = [
    Run("q25-theta1e6", rope_theta=1e6, note="the demo before this ablation"),
    Run("q25-theta100", rope_theta=100.0),
    Run("q3-theta5e6", model_family="qwen3-vl", rope_theta=5e6),
    Run("q3-theta100", model_family="qwen3-vl", rope_theta=100.0),
]
"""The ablation grid, in table order (extended as results come in; each run is cached by name)."""


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


def per_family(pred_file: Path) -> dict[str, float]:
    scores: dict[str, list[float]] = defaultdict(list)
    for line in pred_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            ok = rec["status"] == "ok"
            scores[rec.get("family") or "unknown"].append(float(rec["score"]["official"]) if ok else 0.0)
    return {f: sum(v) / len(v) for f, v in sorted(scores.items())}


def evaluate(run: Run, model: Path, data: Path, out: Path) -> dict[str, dict[str, float]]:
    from videor1.eval.runner import evaluate as run_eval
    from videor1.infer import Predictor

    predictor = Predictor(str(model), media=media(run))
    views = {}
    for view, shuffled in (("ordered", False), ("shuffled", True)):
        run_dir = out / f"eval-{view}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_eval(
            predictor,
            data / "test.json",
            data,
            out_dir=run_dir,
            bench_names=["videor1-synth"],
            label=f"{run.name} ({view})",
            media=media(run),
            greedy=True,
            max_new_tokens=120 if run.cot == "full" else 80,
            batch_size=16,
            shuffle_frames=shuffled,
            shuffle_unit="frame",
            seed=run.seed,
            system_prompt=SYSTEM_PROMPT,
        )
        views[view] = per_family(run_dir / "predictions.jsonl")
    return {f: {"ordered": views["ordered"][f], "shuffled": views["shuffled"][f]} for f in views["ordered"]}


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
        family=run.model_family, tokenizer="small", rope_theta=run.rope_theta, seed=run.seed, **run.tiny
    )
    base = build_tiny_model(tiny, out / "model-base")
    t1 = time.perf_counter()
    model = base
    if run.curriculum == "images-first":
        cfg = sft_config(run, data, model, out / "sft-images", steps=run.image_steps, images_only=True)
        model = sft.train(cfg)
        cfg = sft_config(run, data, model, out / "sft", steps=run.steps - run.image_steps, images_only=False)
        model = sft.train(cfg)
    elif run.curriculum == "none":
        model = sft.train(sft_config(run, data, model, out / "sft", steps=run.steps, images_only=False))
    else:
        raise ValueError(f"{run.name}: unknown curriculum {run.curriculum!r}")
    t_sft = time.perf_counter() - t1
    t2 = time.perf_counter()
    scores = evaluate(run, Path(model), data, out)
    t_eval = time.perf_counter() - t2
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    losses = [json.loads(x)["loss"] for x in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    return {
        "run": dataclasses.asdict(run),
        "vit_position_embedding": run.model_family == "qwen3-vl",
        "scores": scores,
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
    families = sorted({f for r in results for f in r["scores"]}, key=lambda f: (f not in FOUR, f))
    header = ["run", "model (RoPE)", "θ", "ViT pos. emb.", "curriculum", "CoT", "steps", "SFT s"]
    header += [f"{f} ord/shuf" for f in families]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in results:
        run = r["run"]
        rope = "Qwen3-VL (interleaved)" if run["model_family"] == "qwen3-vl" else "Qwen2.5-VL (blocks)"
        row = [
            run["name"],
            rope,
            f"{run['rope_theta']:g}",
            "yes" if r["vit_position_embedding"] else "no",
            run["curriculum"] + (f" ({run['image_steps']})" if run["curriculum"] == "images-first" else ""),
            run["cot"],
            str(run["steps"]),
            f"{r['seconds']['sft']:.0f}",
        ]
        for f in families:
            s = r["scores"].get(f)
            row.append(f"{100 * s['ordered']:.0f} / {100 * s['shuffled']:.0f}" if s else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


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
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared 2-core machine two threads ran 10x slower)",
    )
    args = parser.parse_args(argv)

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
