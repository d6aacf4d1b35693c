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
run concurrently, each bounded as a whole by --timeout and its reply by --max-reply-mb, with
retries; failures are counted by kind and retried on rerun. A rerun reuses a reply only when the
teacher, API model, decoding, media budget and prompt are the same; the threshold is applied anew.
--out must be new, empty or annotate's own earlier output, and not the --data file.

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
    parser.add_argument(
        "--timeout", type=float, help="seconds one HTTP request may take as a whole (connect, wait, read)"
    )
    parser.add_argument(
        "--max-reply-mb",
        type=float,
        help="largest HTTP reply read, in MiB (default 8: videor1.teachers.MAX_REPLY_BYTES); larger ones fail",
    )
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

    from videor1.annotate import MAX_REPLY_BYTES, annotate, claim_annotation_output, make_teacher
    from videor1.config import ConfigError, load_config
    from videor1.data.frames import fixed_frame_count_error
    from videor1.utils.runlock import run_lock

    cfg = load_config(args.config, args.overrides)
    flags = {
        "threshold": args.threshold,
        "concurrency": args.concurrency,
        "timeout_s": args.timeout,
        "max_retries": args.retries,
        "api_model": args.api_model,
    }
    an = dataclasses.replace(cfg.annotate, **{k: v for k, v in flags.items() if v is not None})
    an.validate("annotate (with --threshold/--concurrency/--timeout/--retries)")
    teacher_name = args.teacher or an.teacher
    data_file = args.data or cfg.data.train_file
    out = args.out or an.output
    for flag, value in (("--teacher", teacher_name), ("--data", data_file), ("--out", out)):
        if not value:
            raise ConfigError(f"give {flag} (or set it in --config)")
    claim_annotation_output(data_file, out)  # before loading a teacher or sending any request
    if args.max_reply_mb is not None and args.max_reply_mb <= 0:
        raise ConfigError(f"--max-reply-mb must be > 0, got {args.max_reply_mb}")
    max_reply = MAX_REPLY_BYTES if args.max_reply_mb is None else int(args.max_reply_mb * 2**20)
    media = cfg.data.media
    if args.frames is not None:
        media = dataclasses.replace(media, nframes=args.frames, max_frames=max(media.max_frames, args.frames))
    media.validate("data.media")
    teacher = make_teacher(
        teacher_name,
        media=media,
        sampling=an.sampling,
        api_model=an.api_model,
        timeout_s=an.timeout_s,
        max_retries=an.max_retries,
        image_format=an.image_format,
        api_key_env=args.api_key_env,
        device=args.device,
        dtype=cfg.model.dtype,
        max_reply_bytes=max_reply,
    )
    if args.frames is not None and (why := fixed_frame_count_error(args.frames, teacher.geometry)):
        raise ConfigError(f"--frames {args.frames} {why}")
    media_root = args.media_root or (cfg.data.media_root if args.config else str(Path(data_file).parent))
    out_path = Path(out)
    with run_lock(out_path.parent, "videor1 annotate", name=f".{out_path.name}.lock"):
        report = annotate(
            teacher,
            data_file,
            media_root,
            out,
            media=media,
            threshold=an.threshold,
            concurrency=an.concurrency,
            batch_size=args.batch_size,
            limit=args.limit,
            reward_mode=an.reward_mode,
        )
    print(  # noqa: T201 - CLI output
        f"kept {report['kept']} of {report['answered']} answered ({report['total']} records; "
        f"{report['failed']} failed, {report['media_errors']} media errors) -> {out}"
    )
    return 0 if report["failed"] == 0 else 1
