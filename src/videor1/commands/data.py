"""``videor1 data``: generate, validate and inspect Video-R1 records files."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "generate a procedural dataset, validate records and media, inspect a records file"
DESCRIPTION = """Work with Video-R1 records files (JSON array or JSONL; the Video-R1 data format).

  videor1 data synth --out data/synth --train 2000 --test 200 --seed 0
  videor1 data validate data/Video-R1-260k.json --media-root data --jobs 8 --report bad.jsonl
  videor1 data inspect data/synth/train.json --n 8 --out sheet.png

`validate` exits with status 1 when any record fails (unless --allow-bad); media are never replaced.
Outputs (synth --out, validate --report, inspect --out) must be new, empty or the same action's own
earlier output (a .videor1-data-ACTION marker in or beside it); anything else is refused before any work.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "validate",
        help="check every record's schema and media; write failing records to a JSONL report",
        description=(
            "Check types, problem types, options, <answer> solutions and paths of every record, and that\n"
            "each media file stays inside --media-root, exists, and decodes (videos: first and last frame).\n"
            "Duplicate problem_ids are warnings.\n\n"
            "  videor1 data validate train.json --media-root data --jobs 8 --report bad.jsonl"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="records file (JSON array or JSONL)")
    p.add_argument(
        "--media-root", type=Path, help="directory record paths are relative to (default: FILE's dir)"
    )
    p.add_argument("--jobs", type=int, default=None, help="threads decoding media (default: min(8, CPUs))")
    p.add_argument(
        "--report",
        type=Path,
        help="JSONL of failing records (default: ./<FILE stem>.validation.jsonl, written only on problems)",
    )
    p.add_argument("--allow-bad", action="store_true", help="exit 0 even when records fail")
    p.add_argument("--skip-media", action="store_true", help="schema checks only; do not open media files")
    p.add_argument("--limit", type=int, default=None, help="check only the first N records")
    p.add_argument(
        "--probe-frames",
        type=int,
        default=2,
        help="frames decoded per video, spread over the clip (default 2: first and last)",
    )

    p = sub.add_parser(
        "inspect",
        help="counts, length / frame-count distributions and a PNG contact sheet of sampled records",
        description=(
            "Print counts (data_type x problem_type, data_source), question lengths, video frame counts,\n"
            "durations and fps (container metadata), and draw N sampled records into a PNG.\n\n"
            "  videor1 data inspect data/synth/train.json --n 8 --out sheet.png --seed 1"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="records file (JSON array or JSONL)")
    p.add_argument(
        "--media-root", type=Path, help="directory record paths are relative to (default: FILE's dir)"
    )
    p.add_argument("--n", type=int, default=8, help="records drawn in the contact sheet (default 8)")
    p.add_argument("--out", type=Path, help="write the contact sheet PNG here")
    p.add_argument("--seed", type=int, default=0, help="seed for the sampled records and probed videos")
    p.add_argument("--frames", type=int, default=8, help="frames per video in the contact sheet (default 8)")
    p.add_argument(
        "--probe-limit", type=int, default=1000, help="most video files whose metadata is read (0: none)"
    )
    p.add_argument("--jobs", type=int, default=None, help="threads reading video metadata")

    p = sub.add_parser(
        "synth",
        help="generate a procedural temporal-reasoning dataset (videos, images, records)",
        description=(
            "Write train.json, test.json, train_cot.json, meta.json and media under --out.\n\n"
            "  videor1 data synth --out data/synth --train 2000 --test 200 --seed 0 --jobs 4"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=Path, required=True, help="output directory (new, empty or an earlier synth output)"
    )
    p.add_argument("--train", type=int, required=True, help="training records")
    p.add_argument("--test", type=int, required=True, help="test records")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same dataset)")
    p.add_argument("--families", nargs="+", default=None, help="task families to generate (default: all)")
    p.add_argument("--size", type=int, default=112, help="frame side in pixels (default 112)")
    p.add_argument("--frames", type=int, default=16, help="frames per video, a multiple of 8 (default 16)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    p.add_argument(
        "--cot-detail",
        choices=("none", "short", "full"),
        default="short",
        help="length of the reasoning written to train_cot.json: none (empty <think>), short (default), full",
    )


def run(args: argparse.Namespace) -> int:
    return {"validate": _validate, "inspect": _inspect, "synth": _synth}[args.data_command](args)


def _validate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from videor1.data.records import RecordError
    from videor1.data.validate import summary_tables, validate_file, write_report
    from videor1.utils.logging import get_logger
    from videor1.utils.rundir import atomic_path, check_output, claim_output

    log = get_logger(__name__)
    report = args.report or Path.cwd() / f"{args.file.stem}.validation.jsonl"
    check_output(report, "data validate", directory=False, flag="--report")
    try:
        result = validate_file(
            args.file,
            args.media_root,
            jobs=args.jobs,
            limit=args.limit,
            check_media=not args.skip_media,
            probe_frames=args.probe_frames,
        )
    except RecordError as e:
        log.error("%s", e)
        return 2
    console = Console()
    for table in summary_tables(result):
        console.print(table)
    if result.failures or result.warnings or args.report:
        claim_output(report, "data validate", directory=False, flag="--report")
        with atomic_path(report) as tmp:
            write_report(result, tmp)
        log.info("report: %s (%d problems)", report, len(result.failures) + len(result.warnings))
    bad = len(result.failed_indices)
    if bad:
        log.error("%d of %d records failed validation", bad, result.total)
        return 0 if args.allow_bad else 1
    log.info("all %d records valid (%d media files checked)", result.total, result.media_checked)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from rich.console import Console

    from videor1.data.frames import fixed_frame_count_error
    from videor1.data.inspect import inspect_file, summary_tables
    from videor1.data.records import RecordError
    from videor1.models.known import QWEN2_5_VL_GEOMETRY
    from videor1.utils.logging import get_logger
    from videor1.utils.rundir import atomic_path, claim_output

    log = get_logger(__name__)
    if why := fixed_frame_count_error(args.frames, QWEN2_5_VL_GEOMETRY):
        log.error("--frames %d %s", args.frames, why)
        return 2
    if args.out is not None:
        claim_output(args.out, "data inspect", directory=False)
    try:
        with atomic_path(args.out) if args.out is not None else nullcontext() as sheet:
            result = inspect_file(
                args.file,
                media_root=args.media_root,
                n=args.n,
                seed=args.seed,
                out=sheet,
                probe_limit=args.probe_limit,
                sheet_frames=args.frames,
                jobs=args.jobs,
            )
    except RecordError as e:
        log.error("%s", e)
        return 2
    console = Console()
    for table in summary_tables(result):
        console.print(table)
    if args.out is not None:
        log.info("contact sheet: %s", args.out)
    return 0


def _synth(args: argparse.Namespace) -> int:
    from videor1.data.synth import generate_dataset
    from videor1.utils.logging import get_logger
    from videor1.utils.rundir import claim_output

    log = get_logger(__name__)
    claim_output(args.out, "data synth", directory=True)
    try:
        out = generate_dataset(
            args.out,
            train=args.train,
            test=args.test,
            seed=args.seed,
            families=args.families,
            size=args.size,
            frames=args.frames,
            jobs=args.jobs,
            cot_detail=args.cot_detail,
        )
    except ValueError as e:  # bad arguments (frame count, unknown family, ...): say which, no traceback
        log.error("data synth: %s", e)
        return 2
    log.info("dataset written to %s", out)
    return 0
