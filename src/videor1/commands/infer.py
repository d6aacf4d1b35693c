"""``videor1 infer``: ask a checkpoint one question about a video or an image."""

from __future__ import annotations

import argparse

HELP = "ask a model one question about a video or image; prints its reasoning and answer"
DESCRIPTION = """Ask a checkpoint one question about a video (or an image) with the evaluation prompt and
decoding of the reference (temperature 0.1, top-p 0.001, 1024 new tokens), and print the reasoning
and the answer. Options given as plain texts are lettered A, B, C, ...

The frames and pixels default to the budget the checkpoint was trained with (its config.yaml), else
to the evaluation default (2 fps, 4..16 frames, 256*28*28 pixels per frame); the budget used is printed.

  videor1 infer --model runs/tgrpo/final --video clip.mp4 \\
      --question "Which way does the red square move?" --options left right up down
  videor1 infer --model Qwen2.5-VL-7B --image photo.jpg --question "How many cats?" --problem-type numerical
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint directory")
    media = parser.add_mutually_exclusive_group(required=True)
    media.add_argument("--video", help="video file")
    media.add_argument("--image", help="image file")
    parser.add_argument("--question", required=True, help="the question text")
    parser.add_argument("--options", nargs="+", help="answer options (plain texts or 'A. text')")
    parser.add_argument(
        "--problem-type",
        choices=["multiple choice", "numerical", "OCR", "free-form", "regression"],
        help="answer format (default: multiple choice with --options, else free-form)",
    )
    parser.add_argument(
        "--frames",
        type=int,
        help="frames sampled from the video (default: the checkpoint's training budget, else 2 fps, 4..16)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="largest area per frame (default: the checkpoint's training budget, else 256*28*28)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="generation length")
    parser.add_argument("--greedy", action="store_true", help="exact greedy decoding")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from videor1.config import ConfigError
    from videor1.infer import EVAL_SAMPLING, Predictor, make_sample, resolve_media
    from videor1.utils.logging import get_logger

    try:  # the question and options are checked before the model loads
        make_sample(
            args.question,
            video=args.video,
            image=args.image,
            options=args.options,
            problem_type=args.problem_type,
        )
    except ValueError as e:
        raise ConfigError(f"--question/--options: {e}") from e

    if args.frames is not None:
        from videor1.data.frames import fixed_frame_count_error
        from videor1.models.adapters import vision_geometry

        if why := fixed_frame_count_error(args.frames, vision_geometry(args.model)):
            raise ConfigError(f"--frames {args.frames} {why}")
    explicit = {
        key: value
        for key, value in (("nframes", args.frames), ("video_max_pixels", args.max_pixels))
        if value is not None
    }
    media, origin = resolve_media(args.model, explicit)
    if args.json:
        get_logger(__name__).info("media budget: %s", origin)
    else:
        print(f"media budget: {origin}")  # noqa: T201 - CLI output
    if args.max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=args.max_new_tokens)
    predictor = Predictor(
        args.model,
        media=media,
        sampling=sampling,
        greedy=args.greedy,
        device=args.device,
        dtype=args.dtype,
    )
    out = predictor.predict(
        args.question,
        video=args.video,
        image=args.image,
        options=args.options,
        problem_type=args.problem_type,
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(out), ensure_ascii=False))  # noqa: T201 - CLI output
        return 0
    print(f"reasoning: {out.reasoning or '(none)'}")  # noqa: T201 - CLI output
    print(f"answer: {out.answer}" + ("" if out.has_answer_tag else "  (no <answer> tag: whole output)"))  # noqa: T201
    return 0
