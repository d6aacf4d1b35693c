"""Does the temporal bonus itself change what the policy learns? GRPO, T-GRPO and the α = 0 control.

The demo's RL comparison (``docs/demo_rl.md``) could not separate T-GRPO from GRPO or from the
control that draws T-GRPO's shuffled rollouts but rewards nothing for order (α = 0): 24 held-out
items a family, 30 RL steps, 3 seeds, and an SFT model that already read frame order on the
shortcut family. This experiment reuses the demo's pieces (``videor1.data.synth``,
``videor1.demo.pipeline.run_sft``, ``videor1.demo.stages.rl_config``, ``videor1.train.rl``,
``videor1.demo.evaluation``) in a setting built to answer the question:

- **An SFT model that has partly learnt the shortcut.** SFT trains on the demo's families minus
  ``--sft-exclude`` (default ``event_quarter``: the cue-free version of the question), and keeps
  only the ``quarter_shortcut`` items whose colour cue is right (``data.sft_shortcut_items: cue``),
  so in SFT the colour always names the quarter and nothing forces the model to read time. It is
  measured before RL with ordered and shuffled frames on held-out ``quarter_shortcut`` items whose
  colour agrees with the answer and on those where it does not.
- **Resolution.** ``--eval-items`` held-out items per family (default 96); the shortcut family's
  held-out colours are independent of the answer (cue-free: the cue agrees about a quarter of the
  time, by chance).
- **Paired runs.** Every variant and seed starts from the one SFT checkpoint; the RL data order
  depends only on (seed, step) (``videor1.train.rl.step_generators``), so seed k of every variant
  sees the same questions in the same order. Variants: GRPO, T-GRPO ``reference`` (the paper: α
  added to the correct rollouts' reward), ``advantage`` (α added to the normalised advantage),
  the margin rule (fires only when p >= p_shuffled + 0.25) and the control T-GRPO with α = 0.
  RL trains on every ``quarter_shortcut`` training item (the cue names the quarter in 86%).
- **Learning curves.** Every ``--curve-every`` RL steps the checkpoint is scored on the held-out
  ``quarter_shortcut`` items (ordered frames); the RL metrics give the training-reward curves.

Each (variant, seed) writes ``<out>/results/<variant>-seed<k>.json`` and is skipped when it exists,
so an interrupted run resumes (an RL run cut mid-way resumes from its last checkpoint). The
statistics (``videor1.demo.stats``) are over seeds: mean with a 95% t interval, and for each T-GRPO
variant against GRPO and against the control the per-seed difference, its interval and an exact
sign-flip p-value (2^seeds assignments; with 5 seeds the smallest two-sided p is 0.0625).

Run from the repository root (one thread: on the shared 2-core machine two threads were slower)::

    PYTHONPATH=src python experiments/tgrpo_power.py --pilot        # time one RL step and one eval
    PYTHONPATH=src python experiments/tgrpo_power.py                # the full design
    PYTHONPATH=src python experiments/tgrpo_power.py --quick        # 2 seeds, 20 steps: ~20 min
    PYTHONPATH=src python experiments/tgrpo_power.py --table        # rebuild docs/tgrpo_power.md

``--table`` (alone, or after a run) writes the generated tables between the markers of
``docs/tgrpo_power.md``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tgrpo_power_tables import SHORTCUT, VARIANTS, metric, tables, write_doc  # this script's folder

DOC = Path("docs/tgrpo_power.md")


@dataclasses.dataclass(frozen=True)
class Design:
    """What one experiment runs; everything else is the demo's ``full`` preset."""

    seeds: int = 5
    steps: int = 100
    eval_items: int = 96  # held-out items per family
    sft_steps: int = 300
    sft_exclude: tuple[str, ...] = ("event_quarter",)
    curve_every: int = 20
    rl_lr: float = 1e-4  # the demo's 2e-5 left GRPO flat over 40 steps from this checkpoint (pilot)
    train_items: int = 1500
    variants: tuple[str, ...] = VARIANTS


QUICK = Design(seeds=2, steps=20, curve_every=10)
"""The reduced setting: same data and SFT, 2 seeds, 20 RL steps. Run end to end on 2026-12-05 on the
2-core machine: 1,220 s of CPU in all (SFT 250 s, 10 RL runs with their evaluations 970 s), one
thread, so about 20 minutes on a free core; 41 minutes of wall time with four jobs sharing the two
cores."""


def settings(d: Design, threads: int):
    """The demo's ``full`` settings with this experiment's sizes."""
    from videor1.demo.settings import load_demo_settings

    s = load_demo_settings("full")
    families = list(s.data.families)
    s = dataclasses.replace(
        s,
        threads=threads,
        data=dataclasses.replace(s.data, train_items=d.train_items, test_items=d.eval_items * len(families)),
        sft=dataclasses.replace(s.sft, steps=d.sft_steps, curve_every=100),
        rl=dataclasses.replace(
            s.rl, steps=d.steps, lr=d.rl_lr, families=[SHORTCUT], variants=list(d.variants)
        ),
    )
    return s.validate("tgrpo_power settings")


# --------------------------------------------------------------------------------------------------
# Data, SFT and its measurement
# --------------------------------------------------------------------------------------------------


def prepare_data(s, d: Design, out: Path) -> Path:
    """Generate the data (once), the RL file, the SFT file without ``sft_exclude`` and without the
    shortcut items whose cue is wrong."""
    from videor1.demo.stages import SFT_TRAIN_FILE, generate_data, write_rl_train_file, write_sft_train_file

    data = out / "data"
    generate_data(s, data)
    write_sft_train_file(data)  # the demo's cue filter, then this experiment's family filter
    sft_records = json.loads((data / SFT_TRAIN_FILE).read_text(encoding="utf-8"))
    kept = [r for r in sft_records if r["family"] not in d.sft_exclude]
    (data / SFT_TRAIN_FILE).write_text(json.dumps(kept, ensure_ascii=False, indent=1), encoding="utf-8")
    write_rl_train_file(data, s.rl_families)
    return data


def prepare_curve_data(out: Path) -> Path:
    """``data-qs/``: the held-out shortcut items alone, for the learning curves; its videos are hard
    links to the data's (the evaluation refuses media reached through a symlink out of its root)."""
    qs = out / "data-qs"
    (qs / "videos").mkdir(parents=True, exist_ok=True)
    test = json.loads((out / "data" / "test.json").read_text(encoding="utf-8"))
    records = [r for r in test if r["family"] == SHORTCUT]
    for r in records:
        link = qs / r["path"]
        if not link.exists():
            try:
                os.link(out / "data" / r["path"], link)
            except FileExistsError:  # another --shard process linked it first
                pass
    (qs / "test.json").write_text(json.dumps(records), encoding="utf-8")
    return qs


def cue_split(pred_file: Path, test_records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy on the held-out shortcut items whose colour agrees with the answer and on the rest."""
    cue = {r["problem_id"]: r["shortcut_cue"] for r in test_records if r["family"] == SHORTCUT}
    groups: dict[str, list[float]] = {"agree": [], "conflict": []}
    for line in pred_file.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line) if line.strip() else None
        if rec is None or rec["problem_id"] not in cue:
            continue
        score = float(rec["score"]["official"]) if rec["status"] == "ok" else 0.0
        groups["agree" if cue[rec["problem_id"]] else "conflict"].append(score)
    return {k: {"accuracy": sum(v) / len(v) if v else None, "n": len(v)} for k, v in groups.items()}


def evaluate(model: Path, s, out: Path, name: str) -> dict[str, Any]:
    """The demo's ordered + shuffled evaluation, with the shortcut family split by cue agreement."""
    from videor1.demo.evaluation import evaluate_stage

    result = evaluate_stage(model, s, out, name)
    test = json.loads((out / "data" / "test.json").read_text(encoding="utf-8"))
    result["cue_split"] = {
        view: cue_split(out / "eval" / f"{name}-{view}" / "predictions.jsonl", test)
        for view in ("ordered", "shuffled")
    }
    return result


def shortcut_curve_point(model: Path, s, out: Path, name: str) -> float:
    """Held-out ``quarter_shortcut`` accuracy with ordered frames (a learning-curve point)."""
    from videor1.demo.evaluation import evaluate_view
    from videor1.demo.stages import media_config
    from videor1.infer import Predictor

    result = evaluate_view(
        Predictor(str(model), media=media_config(s)),
        out / "data-qs",
        out / "eval-curve" / name,
        media_config(s),
        shuffled=False,
        seed=s.seed,
        max_new_tokens=s.eval.max_new_tokens,
        batch=s.eval.batch,
        label=name,
    )
    return result["per_family"][SHORTCUT]


def ensure_sft(s, d: Design, out: Path) -> dict[str, Any]:
    """Data, base model, SFT and its evaluation, once per experiment (``<out>/sft.json``)."""
    from videor1.demo.pipeline import run_sft
    from videor1.models.tiny import build_tiny_model

    path = out / "sft.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    t0, c0 = time.perf_counter(), time.process_time()
    data = prepare_data(s, d, out)
    base = out / "model-base"
    if not (base / "config.json").exists():
        build_tiny_model(dataclasses.replace(s.model, seed=s.seed), base)
    t1 = time.perf_counter()
    checkpoint, curve, _ = run_sft(s, out, base)
    t2 = time.perf_counter()
    result = evaluate(checkpoint, s, out, "sft")
    t3 = time.perf_counter()
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    sft_records = json.loads((data / "train_cot_sft.json").read_text(encoding="utf-8"))
    result.update(
        checkpoint=str(checkpoint),
        sft_curve=curve,
        sft_items={f: sum(r["family"] == f for r in sft_records) for f in s.data.families},
        cue_agreement=meta["families"][SHORTCUT]["cue_agreement"],
        seconds={"data": round(t1 - t0, 1), "sft": round(t2 - t1, 1), "eval": round(t3 - t2, 1)},
        cpu_seconds=round(time.process_time() - c0, 1),
    )
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


# --------------------------------------------------------------------------------------------------
# One RL run
# --------------------------------------------------------------------------------------------------


def rl_run(s, d: Design, out: Path, sft: dict[str, Any], variant: str, seed: int) -> dict[str, Any]:
    """RL of one variant and seed from the SFT checkpoint, with held-out curve points, then the
    full evaluation; the run's checkpoints are deleted once its result is written (metrics kept)."""
    import torch

    from videor1.demo.stages import rl_config, rl_dir
    from videor1.demo.summary import rl_curve
    from videor1.train import rl as rl_recipe

    cfg = rl_config(s, out, Path(sft["checkpoint"]), variant=variant, seed=seed)
    name = f"{variant}-seed{seed}"
    t0, c0 = time.perf_counter(), time.process_time()
    t_train, curve = 0.0, []
    stops = list(range(d.curve_every, d.steps, d.curve_every)) if d.curve_every else []
    for stop in stops:
        t = time.perf_counter()
        checkpoint = rl_recipe.train(cfg, resume="auto", stop_at_step=stop)
        t_train += time.perf_counter() - t
        curve.append(
            {"step": stop, "ordered": shortcut_curve_point(Path(checkpoint), s, out, f"{name}-step{stop}")}
        )
    t = time.perf_counter()
    checkpoint = rl_recipe.train(cfg, resume="auto")
    t_train += time.perf_counter() - t
    t = time.perf_counter()
    result = evaluate(Path(checkpoint), s, out, name)
    t_eval = time.perf_counter() - t
    curve.append({"step": d.steps, "ordered": result["per_family"][SHORTCUT]["ordered"]})
    run_dir = rl_dir(out, variant, seed)
    result.update(
        variant=variant,
        seed=seed,
        steps=d.steps,
        lr=s.rl.lr,
        heldout_curve=[{"step": 0, "ordered": sft["per_family"][SHORTCUT]["ordered"]}, *curve],
        rl_curve=rl_curve(run_dir),
        seconds={
            "rl": round(t_train, 1),
            "total": round(time.perf_counter() - t0, 1),
            "final_eval": round(t_eval, 1),
        },
        cpu_seconds=round(time.process_time() - c0, 1),
        threads=torch.get_num_threads(),
        date=datetime.date.today().isoformat(),
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
    )
    for child in run_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    return result


def pilot(s, d: Design, out: Path, sft: dict[str, Any], steps: int = 3) -> dict[str, Any]:
    """Seconds per RL step of GRPO and of T-GRPO (``steps`` steps each, seed 1000, the experiment's
    sizes) and of one full evaluation (ordered + shuffled, every held-out item) and one curve point."""
    from videor1.demo.stages import rl_config, rl_dir
    from videor1.train import rl as rl_recipe

    short = dataclasses.replace(s, rl=dataclasses.replace(s.rl, steps=steps))
    per_step = {}
    for variant in ("grpo", "tgrpo-reference"):
        cfg = rl_config(short, out, Path(sft["checkpoint"]), variant=variant, seed=1000)
        shutil.rmtree(rl_dir(out, variant, 1000), ignore_errors=True)
        t = time.perf_counter()
        checkpoint = rl_recipe.train(cfg, resume=None)
        per_step[variant] = round((time.perf_counter() - t) / steps, 2)
    t = time.perf_counter()
    shortcut_curve_point(Path(checkpoint), s, out, "pilot-curve")
    t_curve = time.perf_counter() - t
    for variant in per_step:
        shutil.rmtree(rl_dir(out, variant, 1000), ignore_errors=True)
    return {
        "seconds_per_rl_step": per_step,
        "seconds_full_eval": sft["seconds"]["eval"],
        "seconds_curve_point": round(t_curve, 1),
        "steps_timed": steps,
    }


def planned_runs(design: Design, shard: tuple[int, int] = (0, 1)) -> list[tuple[int, str]]:
    """(seed, variant) pairs in seed-major order (a partial run holds complete paired sets); of
    them, shard (k, n) takes runs k, k + n, k + 2n, ..."""
    k, n = shard
    runs = [(seed, variant) for seed in range(design.seeds) for variant in design.variants]
    return runs[k::n]


def _shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (k, n), 0 <= k < n."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants K/N (e.g. 0/2), got {text!r}") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= K < N")
    return k, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run directory (default runs/tgrpo_power[-quick])"
    )
    parser.add_argument("--quick", action="store_true", help="the reduced setting: 2 seeds, 20 RL steps")
    parser.add_argument("--seeds", type=int, default=None, help="RL seeds per variant (0 .. seeds-1)")
    parser.add_argument("--steps", type=int, default=None, help="RL steps per run")
    parser.add_argument("--eval-items", type=int, default=None, help="held-out items per family")
    parser.add_argument("--sft-steps", type=int, default=None, help="SFT steps")
    parser.add_argument("--rl-lr", type=float, default=None, help="RL learning rate (default 1e-4)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=None, help="variants to run")
    parser.add_argument("--pilot", action="store_true", help="time RL steps and an evaluation, then stop")
    parser.add_argument(
        "--table", action="store_true", help="write the tables into --doc (alone: no training)"
    )
    parser.add_argument("--doc", type=Path, default=DOC, help="markdown file for --table")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="K/N",
        help="run only the runs k, k+N, k+2N, ... of the seed-major order (0-based k), so N processes "
        "started with 0/N .. N-1/N share the design; run the SFT first with one process (--pilot or "
        "--shard 0/1) so that they do not both build it",
    )
    args = parser.parse_args(argv)

    base = QUICK if args.quick else Design()
    design = dataclasses.replace(
        base,
        **{
            k: v
            for k, v in (
                ("seeds", args.seeds),
                ("steps", args.steps),
                ("eval_items", args.eval_items),
                ("sft_steps", args.sft_steps),
                ("rl_lr", args.rl_lr),
            )
            if v is not None
        },
        **({"variants": tuple(args.variants)} if args.variants else {}),
    )
    out = args.out or Path("runs/tgrpo_power-quick" if args.quick else "runs/tgrpo_power")
    only_table = (
        args.table
        and not args.pilot
        and not any(x is not None for x in (args.seeds, args.steps, args.variants))
    )
    if only_table:
        if not (out / "sft.json").exists():
            parser.error(f"{out}/sft.json not found: run the experiment first")
        write_doc(args.doc, tables(out, design))
        return 0

    import torch

    torch.set_num_threads(args.threads)
    s = settings(design, args.threads)
    out.mkdir(parents=True, exist_ok=True)
    (out / "design.json").write_text(
        json.dumps(dataclasses.asdict(design), indent=1) + "\n", encoding="utf-8"
    )
    sft = ensure_sft(s, design, out)
    prepare_curve_data(out)
    if args.pilot:
        result = pilot(s, design, out, sft)
        (out / "pilot.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    (out / "results").mkdir(exist_ok=True)
    for seed, variant in planned_runs(design, args.shard):
        path = out / "results" / f"{variant}-seed{seed}.json"
        if path.exists():
            done = json.loads(path.read_text(encoding="utf-8"))
            if (done["steps"], done.get("lr")) != (design.steps, design.rl_lr):
                parser.error(
                    f"{path} ran {done['steps']} steps at lr {done.get('lr')}, not {design.steps} at "
                    f"{design.rl_lr}: give this design its own --out"
                )
            continue
        result = rl_run(s, design, out, sft, variant, seed)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        sys.stdout.write(f"{variant} seed {seed}: {SHORTCUT} ordered {metric(result, 'qs_ordered'):.1f}\n")
    if args.table:
        write_doc(args.doc, tables(out, design))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
