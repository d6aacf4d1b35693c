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
--out must be new, empty or an earlier `videor1 eval` output (its .videor1-eval marker).

  videor1 eval --model runs/tgrpo/final --bench eval_vsibench.json --bench eval_mvbench.json \\
      --media-root data/Evaluation --frames 32 --out runs/eval/tgrpo-32f
  videor1 eval --model base --model runs/sft/final --bench synth/test.json --limit 16 --out runs/cmp
  videor1 eval --config configs/tiny/eval.yaml --limit 8

Every flag is an alias for a dotted override (--batch-size 4 is eval.batch_size=4); giving both is
an error. Media budgets: data.media keys given in --config, as overrides or as --frames/--max-pixels
win; the rest come from the checkpoint's training budget (its config.yaml), else the evaluation
default (2 fps up to 16 frames, 256*28*28 pixels per frame); each model's budget is printed. The
exit status is 1 when more than eval.max_error_rate (default 0) of a benchmark's items failed.
"""


# Each flag is an alias for one dotted override, so flags, overrides and the config file merge in
# one place (``load_config``) and are range-checked the same way.
ALIASES: dict[str, str] = {
    "bench": "eval.benches",
    "bench_name": "eval.bench_names",
    "media_root": "data.media_root",
    "frames": "data.media.nframes",
    "max_pixels": "data.media.video_max_pixels",
    "scoring": "eval.scoring",
    "out": "eval.output_dir",
    "batch_size": "eval.batch_size",
    "limit": "eval.limit",
    "max_new_tokens": "eval.sampling.max_new_tokens",
    "greedy": "eval.greedy",
    "shuffle_frames": "eval.shuffle_frames",
    "seed": "eval.seed",
    "task_field": "eval.task_field",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (model, data.media, eval sections)")
    parser.add_argument("--model", action="append", help="checkpoint directory (repeat to compare several)")
    parser.add_argument("--label", action="append", help="display name of each --model (same order)")
    parser.add_argument(
        "--bench", action="append", help="benchmark file: JSON, JSONL, parquet or datasets dir (eval.benches)"
    )
    parser.add_argument(
        "--bench-name", action="append", help="name of each --bench, same order (eval.bench_names)"
    )
    parser.add_argument(
        "--media-root",
        help="directory the records' ./paths resolve under (data.media_root; default: the file's)",
    )
    parser.add_argument(
        "--frames", type=int, help="frames per video, e.g. 16, 32, 64 (data.media.nframes; default: fps rule)"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="largest area per frame in pixels (data.media.video_max_pixels; default: the checkpoint's "
        "training budget, else 256*28*28)",
    )
    parser.add_argument(
        "--scoring", choices=["video-r1", "official", "both"], help="which scoring to print (eval.scoring)"
    )
    parser.add_argument("--out", help="output directory (eval.output_dir)")
    parser.add_argument("--batch-size", type=int, help="questions per generation batch (eval.batch_size)")
    parser.add_argument(
        "--limit", type=int, help="evaluate only the first N items of each benchmark (eval.limit)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, help="decoding length (eval.sampling.max_new_tokens; reference: 1024)"
    )
    parser.add_argument(
        "--greedy", action="store_true", default=None, help="exact greedy decoding (eval.greedy)"
    )
    parser.add_argument(
        "--shuffle-frames",
        action="store_true",
        default=None,
        help="permute video frames (eval.shuffle_frames)",
    )
    parser.add_argument("--seed", type=int, help="seed for frame permutations and sampling (eval.seed)")
    parser.add_argument(
        "--retry-errors", action="store_true", help="on resume, retry items that failed (e.g. fixed media)"
    )
    parser.add_argument(
        "--task-field", help="record field holding the task type (eval.task_field; default: auto)"
    )
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. eval.batch_size=8")


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """The dotted overrides the given flags stand for; a key given both ways is an error."""
    import json

    from videor1.config import ConfigError

    dotted = {item.split("=", 1)[0].strip() for item in args.overrides}
    out = []
    for dest, key in ALIASES.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if key in dotted:
            raise ConfigError(f"{key} is given twice: as --{dest.replace('_', '-')} and as {key}=...")
        out.append(f"{key}={json.dumps(value)}")
    return out


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from videor1.config import ConfigError, explicit_section, load_config, load_raw
    from videor1.data.procedural import ensure_procedural
    from videor1.eval.report import write_combined_report
    from videor1.eval.runner import evaluate
    from videor1.infer import resolve_media
    from videor1.utils.logging import get_logger
    from videor1.utils.rundir import check_output, claim_output
    from videor1.utils.runlock import run_lock

    log = get_logger(__name__)
    overrides = flag_overrides(args) + list(args.overrides)
    # data.media is resolved per model below (explicit keys over the checkpoint's training budget),
    # where it is type- and range-checked; everything else merges and is checked here.
    media_keys = [o for o in overrides if o.split("=", 1)[0].strip().startswith("data.media.")]
    cfg = load_config(args.config, [o for o in overrides if o not in media_keys])
    raw = load_raw(args.config, overrides)
    ev = cfg.eval
    models = args.model or ([cfg.model.path] if cfg.model.path else [])
    if not models:
        raise ConfigError("give --model DIR (or model.path in --config)")
    labels = args.label or [Path(m).name or m for m in models]
    if len(labels) != len(models):
        raise ConfigError(f"{len(labels)} --label for {len(models)} --model")
    if not ev.benches:
        raise ConfigError("give --bench FILE (or eval.benches in --config)")
    check_output(ev.output_dir, "eval", directory=True)  # before generating data or loading models
    ensure_procedural(cfg.data, {f"eval.benches[{i}]": b for i, b in enumerate(ev.benches)})
    if args.model is None and cfg.model.tiny is not None:
        from videor1.models.loading import ensure_model

        ensure_model(cfg.model)
    if args.frames is not None:
        from videor1.data.frames import fixed_frame_count_error
        from videor1.models.adapters import vision_geometry

        for model in models:
            if why := fixed_frame_count_error(args.frames, vision_geometry(model)):
                raise ConfigError(f"--frames {args.frames} {why} ({model})")
    out = claim_output(ev.output_dir, "eval", directory=True)
    media_root = cfg.data.media_root if "media_root" in explicit_section(raw, "data") else None
    explicit_media = explicit_section(raw, "data.media")

    with run_lock(out, "videor1 eval"):  # one evaluation at a time writes here
        summaries = {}
        for model, label in zip(models, labels):
            run_dir = out if len(models) == 1 else out / label
            media, origin = resolve_media(model, explicit_media)
            print(f"{label}: media budget {origin}")  # noqa: T201 - CLI output
            summaries[label] = evaluate(
                model,
                dataclasses.replace(ev, output_dir=str(run_dir)),
                media=media,
                media_root=media_root,
                label=label,
                retry_errors=args.retry_errors,
                device=args.device,
                dtype=cfg.model.dtype,
            )
        if len(models) > 1:
            write_combined_report(summaries, out)
    failed = []
    for label, summary in summaries.items():
        for s in summary["benchmarks"].values():
            parts = [f"{label} / {s['display']}: n={s['n']} scored={s['scored']} errors={s['errors']}"]
            for name in ("video-r1", "official") if ev.scoring == "both" else (ev.scoring,):
                value = s[name]["overall"]
                parts.append(f"{name} overall={'n/a' if value is None else f'{100 * value:.1f}'}")
            print("  ".join(parts))  # noqa: T201 - CLI output
            if s["n"] and s["errors"] / s["n"] > ev.max_error_rate:
                failed.append(f"{label} / {s['display']}: {s['errors']} of {s['n']} items failed")
    print(f"wrote {out}/summary.md" if len(models) == 1 else f"wrote {out}/combined.md")  # noqa: T201
    if failed:
        log.error(
            "%s (more than eval.max_error_rate=%g; see the error lines in predictions.jsonl)",
            "; ".join(failed),
            ev.max_error_rate,
        )
        return 1
    return 0
