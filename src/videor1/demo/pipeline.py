"""The end-to-end demo: procedural data → tiny model → SFT → GRPO and T-GRPO → evaluation → report.

Every stage is the real one (``videor1.data.synth``, ``videor1.models.tiny``, ``videor1.train.sft``,
``videor1.train.rl``, ``videor1.eval.runner``); the demo only chooses sizes that fit a 2-core CPU
(``configs/demo/full.yaml``, loaded by ``videor1.demo.settings``) and wires the stages together:

1. generate a procedural temporal dataset (train with CoT targets, held-out test), including the
   shortcut-control family ``quarter_shortcut`` whose training items give the answer away by
   colour about 85% of the time while its held-out items do not;
2. build a random-init tiny model (``model`` settings; the shipped default is Qwen3-VL with the
   ViT position table scaled, see ``videor1.models.tiny``) with the small BPE tokenizer;
3. SFT (optionally images first: ``sft.image_steps``), evaluating per-family held-out accuracy
   every ``sft.curve_every`` steps for the learning curve. With ``data.sft_shortcut_items: cue``
   SFT sees only the shortcut items whose cue is right, as if a cue-following teacher's traces had
   been filtered by correctness: SFT never sees the cue fail, RL trains on every item;
4. RL from the same SFT checkpoint with the same budget, once per variant (``rl.variants``;
   ``videor1.demo.settings.VARIANTS`` says what each changes) and per seed, on the
   ``rl.families`` training items;
5. evaluate base, SFT and every RL run on the held-out items, once with ordered frames and once
   with the frames of every video shuffled (the same permutations for every stage);
6. write ``report.json``, ``report.md`` and plots.

The stage configs and training files are ``videor1.demo.stages``, the evaluation
``videor1.demo.evaluation``, the RL summaries ``videor1.demo.summary`` and the report
``videor1.demo.report``.

Departures from the reference, all deliberate for a model trained from scratch in minutes: every
stage uses the evaluation prompt wording and the same system message (so the tiny model sees one
prompt distribution); frames are small (128 px, 16 visual tokens a frame pair); the SFT targets are
answer-only (an empty ``<think>``, ``data.cot_detail: none``) and the lr is 1e-4, because with a
templated CoT, or at lr 1e-3, the from-scratch model learnt neither position nor order in this
budget (``docs/tiny_model_ablation.md``, produced by ``experiments/tiny_ablation.py``); evaluation
is greedy with a short token budget (``videor1.demo.evaluation`` says how it is scored).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from videor1.config import Config, ConfigError, to_dict
from videor1.demo.evaluation import evaluate_checkpoint, evaluate_stage, ordered_point
from videor1.demo.resume import check_stage_settings, record_stage
from videor1.demo.settings import DemoSettings, load_demo_settings
from videor1.demo.stages import (
    generate_data,
    rl_config,
    rl_dir,
    sft_config,
    write_image_train_file,
    write_rl_train_file,
    write_sft_train_file,
)
from videor1.demo.summary import rl_curve, rl_summary
from videor1.utils.logging import get_logger

log = get_logger(__name__)


def _curve_stops(phase_steps: int, offset: int, every: int) -> list[int]:
    """Steps within a phase (starting at global step ``offset``) that are multiples of ``every`` globally.

    >>> _curve_stops(300, 0, 100), _curve_stops(400, 300, 100), _curve_stops(5, 0, 0)
    ([100, 200, 300], [100, 200, 300, 400], [])
    """
    if not every:
        return []
    first = (offset // every + 1) * every
    return [g - offset for g in range(first, offset + phase_steps + 1, every)]


def run_sft(
    s: DemoSettings, out: Path, base_dir: Path
) -> tuple[Path, list[dict[str, Any]], dict[str, Config]]:
    """Both SFT phases; returns the final checkpoint, the learning curve (global step, per family)
    and the config of each phase (``images``, ``all``)."""
    from videor1.train import sft as sft_recipe

    curve_file = out / "sft_curve.json"
    curve: dict[str, Any] = json.loads(curve_file.read_text(encoding="utf-8")) if curve_file.exists() else {}
    phases = [("images", s.sft.image_steps)] if s.sft.image_steps else []
    phases.append(("all", s.sft.steps))
    model, offset, total = base_dir, 0, s.sft.image_steps + s.sft.steps
    configs: dict[str, Config] = {}
    for phase, steps in phases:
        cfg = configs[phase] = sft_config(s, out, model, phase=phase)
        for stop in _curve_stops(steps, offset, s.sft.curve_every):
            checkpoint = sft_recipe.train(cfg, resume="auto", stop_at_step=stop)
            key = str(offset + stop)
            if key not in curve and offset + stop < total:  # the last point is the SFT stage's own eval
                curve[key] = evaluate_checkpoint(Path(checkpoint), s, out, f"sft-step{key}", shuffled=False)
                curve_file.write_text(json.dumps(curve, indent=1), encoding="utf-8")
        model = sft_recipe.train(cfg, resume="auto")
        offset += steps
    points = [{"step": int(k), **v} for k, v in sorted(curve.items(), key=lambda kv: int(kv[0]))]
    return Path(model), points, configs


class _Timer:
    def __init__(self, seconds: dict[str, float], stage: str) -> None:
        self.seconds, self.stage = seconds, stage

    def __enter__(self) -> None:
        log.info("demo stage: %s", self.stage)
        self.t = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.stage] = round(self.seconds.get(self.stage, 0.0) + time.perf_counter() - self.t, 1)
        log.info("demo stage %s took %.0f s", self.stage, self.seconds[self.stage])


def run_demo(
    out_dir: str | Path,
    *,
    settings: DemoSettings | str | Path = "full",
    fresh: bool = False,
    seeds: int | None = None,
) -> dict[str, Any]:
    """Run every stage into ``out_dir`` and return the results written to ``report.json``.

    ``settings``: a ``DemoSettings``, a preset name (``full``, ``quick``) or a YAML path. ``seeds``
    overrides ``rl.seeds`` (RL and its evaluation repeated from the one SFT checkpoint).
    A rerun into ``out_dir`` resumes every stage already there, after ``videor1.demo.resume`` has
    checked that none of them was built with other settings (``ConfigError`` listing each difference).
    """
    import torch

    from videor1.demo.report import headline_rows, write_report
    from videor1.models.tiny import build_tiny_model
    from videor1.train import rl as rl_recipe

    s = settings if isinstance(settings, DemoSettings) else load_demo_settings(settings)
    if seeds is not None:
        s = dataclasses.replace(s, rl=dataclasses.replace(s.rl, seeds=seeds))
    s.validate()
    if s.threads:
        torch.set_num_threads(s.threads)
    out = Path(out_dir)
    _claim_output_dir(out, fresh=fresh)
    rl_stages = {
        (variant, seed): f"rl/{variant}-seed{seed}"
        for seed in range(s.seed, s.seed + s.rl.seeds)
        for variant in s.rl.variants
    }
    check_stage_settings(
        out,
        s,
        ["data", "model", "sft", *rl_stages.values(), "eval"],
        has_outputs=any(p.name != MARKER for p in out.iterdir()),
    )
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    data_dir = out / "data"
    with _Timer(seconds, "data"):
        record_stage(out, s, "data")
        generate_data(s, data_dir)
        if s.sft.image_steps:
            write_image_train_file(data_dir)
        if s.data.sft_shortcut_items == "cue":
            write_sft_train_file(data_dir)
        write_rl_train_file(data_dir, s.rl_families)
    meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))

    base_dir = out / "model-base"
    with _Timer(seconds, "model"):
        record_stage(out, s, "model")
        if not (base_dir / "config.json").exists():
            build_tiny_model(dataclasses.replace(s.model, seed=s.seed), base_dir)

    with _Timer(seconds, "sft"):
        record_stage(out, s, "eval")  # the learning curve evaluates
        record_stage(out, s, "sft")
        sft_ckpt, sft_curve, sft_configs = run_sft(s, out, base_dir)

    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in s.rl.variants}
    checkpoints: dict[tuple[str, int], Path] = {}
    for seed in range(s.seed, s.seed + s.rl.seeds):
        for variant in s.rl.variants:
            with _Timer(seconds, variant if seed == s.seed else f"{variant} (other seeds)"):
                record_stage(out, s, rl_stages[variant, seed])
                cfg = rl_config(s, out, sft_ckpt, variant=variant, seed=seed)
                checkpoints[variant, seed] = Path(rl_recipe.train(cfg, resume="auto"))

    stages: dict[str, Any] = {}
    with _Timer(seconds, "eval"):
        stages["base"] = evaluate_stage(base_dir, s, out, "base")
        stages["sft"] = evaluate_stage(sft_ckpt, s, out, "sft")
        for (variant, seed), ckpt in checkpoints.items():
            result = evaluate_stage(ckpt, s, out, f"{variant}-seed{seed}")
            runs[variant].append(
                {"seed": seed, "eval": result, "curve": rl_curve(rl_dir(out, variant, seed))}
            )
            if seed == s.seed:
                stages[variant] = result
    sft_curve.append({"step": s.sft.image_steps + s.sft.steps, **ordered_point(stages["sft"])})

    test_records = json.loads((data_dir / "test.json").read_text(encoding="utf-8"))
    chance_per_family = {f: info["chance"] for f, info in meta["families"].items()}
    chance = sum(chance_per_family[r["family"]] for r in test_records) / max(1, len(test_records))
    shortcut = sorted(f for f, i in meta["families"].items() if i.get("shortcut"))
    seconds["total"] = round(time.perf_counter() - started, 1)
    results: dict[str, Any] = {
        "stages": stages,
        "variants": list(s.rl.variants),
        "chance": chance,
        "chance_per_family": chance_per_family,
        "order_dependent_families": sorted(f for f, i in meta["families"].items() if i["order_dependent"]),
        "shortcut_families": shortcut,
        "shortcut_cue_agreement": {f: meta["families"][f]["cue_agreement"] for f in shortcut},
        "rl_families": s.rl_families,
        "held_out_items": len(test_records),
        "seconds": seconds,
        "sft_curve": sft_curve,
        "sft_phase_steps": [s.sft.image_steps, s.sft.steps],
        "rl_runs": runs,
        "rl_summary": rl_summary(runs, shortcut),
        "config": {
            "settings": dataclasses.asdict(s),
            "sft_images": to_dict(sft_configs["images"]) if "images" in sft_configs else None,
            "sft": to_dict(sft_configs["all"]),
            **{v: to_dict(rl_config(s, out, Path(sft_ckpt), variant=v, seed=s.seed)) for v in s.rl.variants},
        },
        "torch_threads": torch.get_num_threads(),
    }
    report = write_report(results, out)
    log.info("report: %s", report)
    results["_headline"] = headline_rows(results)
    return results


MARKER = ".videor1-demo"
"""File that marks a directory as a demo's output: only such a directory is resumed or deleted."""


def _claim_output_dir(out: Path, *, fresh: bool) -> None:
    """Create ``out`` (with its marker), or reuse it when it is a demo's output or empty; ``fresh``
    deletes a demo's output first. Anything else is an error, so a mistyped ``--out`` never mixes
    the demo's files into (or deletes) a directory that holds other files."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"demo output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        action = "delete" if fresh else "write into"
        raise ConfigError(
            f"demo output {out} holds files and is not a demo's output (no {MARKER} file): "
            f"refusing to {action} it; choose another --out"
        )
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
