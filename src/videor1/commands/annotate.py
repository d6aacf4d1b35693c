"""``videor1 annotate``: write CoT traces with a teacher and keep the ones that answer correctly."""

from __future__ import annotations

import argparse

HELP = "generate CoT traces with a teacher (local model or OpenAI-compatible URL), keep the correct ones"
DESCRIPTION = """Ask a teacher to reason about every record (evaluation prompt), score its answer against the
ground truth with the accuracy reward and keep traces scoring above the threshold (0.6 by default,
as the reference). Writes the Video-R1 CoT schema (a `process` field) to --out, a filtering report
to OUT.report.json, and an OUT.progress.jsonl log that makes reruns resume.

The teacher is a local checkpoint directory or an OpenAI-compatible chat-completions URL (vLLM,
SGLang, ...); videos are sent as their sampled frames (base64 JPEG image_url parts). HTTP requests
run concurrently with a timeout and retries; failures are counted by kind and retried on rerun.

  videor1 annotate --teacher http://127.0.0.1:8000/v1 --api-model Qwen2.5-VL-72B-Instruct \\
      --data data/train.json --media-root data --out data/train_cot.json --concurrency 16
  videor1 annotate --teacher runs/sft/final --data synth/train.json --media-root synth --out cot.json
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (annotate and data.media sections)")
    parser.add_argument("--teacher", help="model directory or http(s):// chat-completions base URL")
    parser.add_argument("--data", help="records file to annotate (JSON array or JSONL)")
    parser.add_argument(
        "--media-root", help="directory the records' ./paths resolve under (default: the file's)"
    )
    parser.add_argument("--out", help="output CoT JSON file")
    parser.add_argument("--threshold", type=float, help="keep traces whose reward is > this (default 0.6)")
    parser.add_argument("--api-model", help="model name sent to an HTTP teacher")
    parser.add_argument(
        "--api-key-env", help="environment variable holding a bearer token for the HTTP teacher"
    )
    parser.add_argument("--concurrency", type=int, help="concurrent HTTP requests")
    parser.add_argument("--timeout", type=float, help="per-request timeout in seconds")
    parser.add_argument(
        "--retries", type=int, help="retries after a timeout, connection error or malformed reply"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="generation batch for a local teacher")
    parser.add_argument("--frames", type=int, help="frames per video (default: the fps rule of data.media)")
    parser.add_argument("--limit", type=int, help="annotate only the first N records")
    parser.add_argument("--device", help="torch device for a local teacher")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. annotate.threshold=0.5")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from videor1.annotate import annotate, make_teacher
    from videor1.config import ConfigError, load_config
    from videor1.data.frames import fixed_frame_count_error

    cfg = load_config(args.config, args.overrides)
    an = cfg.annotate
    teacher_name = args.teacher or an.teacher
    data_file = args.data or cfg.data.train_file
    out = args.out or an.output
    for flag, value in (("--teacher", teacher_name), ("--data", data_file), ("--out", out)):
        if not value:
            raise ConfigError(f"give {flag} (or set it in --config)")
    media = cfg.data.media
    if args.frames is not None:
        media = dataclasses.replace(media, nframes=args.frames, max_frames=max(media.max_frames, args.frames))
    media.validate("data.media")
    teacher = make_teacher(
        teacher_name,
        media=media,
        sampling=an.sampling,
        api_model=args.api_model or an.api_model,
        timeout_s=args.timeout if args.timeout is not None else an.timeout_s,
        max_retries=args.retries if args.retries is not None else an.max_retries,
        image_format=an.image_format,
        api_key_env=args.api_key_env,
        device=args.device,
        dtype=cfg.model.dtype,
    )
    if args.frames is not None and (why := fixed_frame_count_error(args.frames, teacher.geometry)):
        raise ConfigError(f"--frames {args.frames} {why}")
    media_root = args.media_root or (cfg.data.media_root if args.config else str(Path(data_file).parent))
    report = annotate(
        teacher,
        data_file,
        media_root,
        out,
        media=media,
        threshold=args.threshold if args.threshold is not None else an.threshold,
        concurrency=args.concurrency or an.concurrency,
        batch_size=args.batch_size,
        limit=args.limit,
        reward_mode=an.reward_mode,
    )
    print(  # noqa: T201 - CLI output
        f"kept {report['kept']} of {report['answered']} answered ({report['total']} records; "
        f"{report['failed']} failed, {report['media_errors']} media errors) -> {out}"
    )
    return 0 if report["failed"] == 0 else 1
