"""``videor1 infer``: ask a checkpoint one question about a video or an image."""

from __future__ import annotations

import argparse

HELP = "ask a model one question about a video or image; prints its reasoning and answer"
DESCRIPTION = """Ask a checkpoint one question about a video (or an image) with the evaluation prompt and
decoding of the reference (temperature 0.1, top-p 0.001, 1024 new tokens), and print the reasoning
and the answer. Options given as plain texts are lettered A, B, C, ...

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
        "--frames", type=int, help="frames sampled from the video (default: 2 fps, at most 16)"
    )
    parser.add_argument("--max-pixels", type=int, help="largest area per frame (default 256*28*28)")
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="generation length")
    parser.add_argument("--greedy", action="store_true", help="exact greedy decoding")
    parser.add_argument("--device", help="torch device (default: cuda when available)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from videor1.eval.runner import media_from_flags
    from videor1.infer import EVAL_SAMPLING, Predictor

    sampling = dataclasses.replace(EVAL_SAMPLING, max_new_tokens=args.max_new_tokens)
    predictor = Predictor(
        args.model,
        media=media_from_flags(None, args.frames, args.max_pixels, None),
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
