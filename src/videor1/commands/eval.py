"""``videor1 eval``: evaluate checkpoints on benchmark files, both scorings, resumable."""

from __future__ import annotations

import argparse

HELP = "evaluate checkpoints on Video-R1 benchmark files (resumable, both scorings, reports)"
DESCRIPTION = """Evaluate one or more checkpoints on Video-R1 evaluation files (VSI-Bench, VideoMMMU, MMVU,
MVBench, TempCompass, VideoMME, Video-Holmes, or any file in the same schema).

Predictions stream to OUT/predictions.jsonl; rerunning the same command resumes without
duplicating items. Items whose media fail are listed as errors and excluded (counted) from scores.
Both scorings are always computed: the reference's (exact match, MRA with <, (acc+MRA)/2) and the
official one (MRA with <=, VSI-Bench macro mean over task types, lenient letters reported apart).
Writes summary.json and summary.md; with several benchmarks or models also combined.md/.png.

  videor1 eval --model runs/tgrpo/final --bench eval_vsibench.json --bench eval_mvbench.json \\
      --media-root data/Evaluation --frames 32 --out runs/eval/tgrpo-32f
  videor1 eval --model base --model runs/sft/final --bench synth/test.json --limit 16 --out runs/cmp
  videor1 eval --config configs/tiny/eval.yaml --limit 8
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (model, data.media, eval sections)")
    parser.add_argument("--model", action="append", help="checkpoint directory (repeat to compare several)")
    parser.add_argument("--label", action="append", help="display name of each --model (same order)")
    parser.add_argument("--bench", action="append", help="benchmark JSON/JSONL file (repeatable)")
    parser.add_argument("--bench-name", action="append", help="benchmark name for each --bench (same order)")
    parser.add_argument(
        "--media-root", help="directory the records' ./paths resolve under (default: the file's)"
    )
    parser.add_argument("--frames", type=int, help="frames per video (e.g. 16, 32, 64); default: fps rule")
    parser.add_argument("--max-pixels", type=int, help="largest area per frame in pixels (default 256*28*28)")
    parser.add_argument(
        "--scoring", choices=["video-r1", "official", "both"], help="which scoring to print (both are saved)"
    )
    parser.add_argument("--out", help="output directory (default eval.output_dir)")
    parser.add_argument("--batch-size", type=int, help="questions per generation batch")
    parser.add_argument("--limit", type=int, help="evaluate only the first N items of each benchmark")
    parser.add_argument("--max-new-tokens", type=int, help="override the decoding length (reference: 1024)")
    parser.add_argument("--greedy", action="store_true", default=None, help="exact greedy decoding")
    parser.add_argument("--shuffle-frames", action="store_true", default=None, help="permute video frames")
    parser.add_argument("--seed", type=int, help="seed for frame permutations and sampling")
    parser.add_argument(
        "--retry-errors", action="store_true", help="on resume, retry items that failed (e.g. fixed media)"
    )
    parser.add_argument("--task-field", help="record field holding the task type (default: auto)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. eval.batch_size=8")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from videor1.config import ConfigError, load_config
    from videor1.eval.report import write_combined_report
    from videor1.eval.runner import evaluate

    cfg = load_config(args.config, args.overrides)
    ev = cfg.eval
    models = args.model or ([cfg.model.path] if cfg.model.path else [])
    if not models:
        raise ConfigError("give --model DIR (or model.path in --config)")
    if args.model is None and cfg.model.tiny is not None:
        from videor1.models.loading import ensure_model

        ensure_model(cfg.model)
    labels = args.label or [Path(m).name or m for m in models]
    if len(labels) != len(models):
        raise ConfigError(f"{len(labels)} --label for {len(models)} --model")
    benches = args.bench or ev.benches
    if not benches:
        raise ConfigError("give --bench FILE (or eval.benches in --config)")
    names = args.bench_name or ([ev.bench_name] * len(benches) if ev.bench_name else None)
    if names is not None and len(names) != len(benches):
        raise ConfigError(f"{len(names)} --bench-name for {len(benches)} --bench")
    media_root = args.media_root or (cfg.data.media_root if args.config else None)
    missing = [b for b in benches if not Path(b).exists()]
    if missing and cfg.data.synth is not None:
        from videor1.data.synth import generate_dataset

        synth = cfg.data.synth
        print(f"{missing[0]} does not exist: generating procedural data into {cfg.data.media_root}")  # noqa: T201
        generate_dataset(
            cfg.data.media_root,
            train=synth.train,
            test=synth.test,
            seed=synth.seed,
            families=synth.families or None,
            size=synth.size,
            frames=synth.frames,
        )
    out = Path(args.out or ev.output_dir)
    scoring = args.scoring or ev.scoring

    summaries = {}
    for model, label in zip(models, labels):
        run_dir = out if len(models) == 1 else out / label
        summaries[label] = evaluate(
            model,
            benches,
            media_root,
            out_dir=run_dir,
            bench_names=names,
            label=label,
            media=cfg.data.media if args.config else None,
            frames=args.frames,
            max_pixels=args.max_pixels,
            sampling=ev.sampling,
            greedy=ev.greedy if args.greedy is None else True,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size or ev.batch_size,
            limit=args.limit if args.limit is not None else ev.limit,
            shuffle_frames=ev.shuffle_frames if args.shuffle_frames is None else True,
            shuffle_unit=ev.shuffle_unit,
            seed=ev.seed if args.seed is None else args.seed,
            task_field=args.task_field or ev.task_field,
            retry_errors=args.retry_errors,
            device=args.device,
            dtype=cfg.model.dtype,
        )
    if len(models) > 1:
        write_combined_report(summaries, out)
    for label, summary in summaries.items():
        for s in summary["benchmarks"].values():
            parts = [f"{label} / {s['display']}: n={s['n']} scored={s['scored']} errors={s['errors']}"]
            for name in ("video-r1", "official") if scoring == "both" else (scoring,):
                value = s[name]["overall"]
                parts.append(f"{name} overall={'n/a' if value is None else f'{100 * value:.1f}'}")
            print("  ".join(parts))  # noqa: T201 - CLI output
    print(f"wrote {out}/summary.md" if len(models) == 1 else f"wrote {out}/combined.md")  # noqa: T201
    return 0
