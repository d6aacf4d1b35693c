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
4. RL from the same SFT checkpoint with the same budget, once per variant (GRPO, T-GRPO with the
   paper's rule and the bonus in the reward, T-GRPO with the bonus in the advantage, optionally
   T-GRPO with a stricter firing rule) and per seed, on the ``rl.families`` training items;
5. evaluate base, SFT and every RL run on the held-out items, once with ordered frames and once
   with the frames of every video shuffled (the same permutations for every stage);
6. write ``report.json``, ``report.md`` and plots.

Departures from the reference, all deliberate for a model trained from scratch in minutes: every
stage uses the evaluation prompt wording and the same system message (so the tiny model sees one
prompt distribution); frames are small (128 px, 16 visual tokens a frame pair); the SFT targets are
answer-only (an empty ``<think>``, ``data.cot_detail: none``) and the lr is 1e-4, because with a
templated CoT, or at lr 1e-3, the from-scratch model learnt neither position nor order in this
budget (``docs/tiny_model_ablation.md``, produced by ``experiments/tiny_ablation.py``); evaluation
is greedy with a short token budget. Accuracy is the mean accuracy reward (default mode) over the
held-out items: exact for multiple choice and numerical answers, MRA-like for regression, 1 - WER
for OCR and ROUGE for free-form.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from videor1.config import (
    Config,
    DataConfig,
    EvalConfig,
    MediaConfig,
    ModelConfig,
    RLConfig,
    SamplingConfig,
    SFTConfig,
    TrainConfig,
    to_dict,
)
from videor1.demo.settings import VARIANTS, DemoSettings, load_demo_settings
from videor1.utils.logging import get_logger

log = get_logger(__name__)

SYSTEM_PROMPT = "You are a helpful assistant"
IMAGE_TRAIN_FILE = "train_cot_images.json"
"""The image records of ``train_cot.json``: what the first SFT phase trains on."""
SFT_TRAIN_FILE = "train_cot_sft.json"
"""``train_cot.json`` without the shortcut items a cue-following teacher would have got wrong."""
RL_TRAIN_FILE = "train_rl.json"
"""The records of ``train.json`` from the families RL trains on."""


# --------------------------------------------------------------------------------------------------
# Stage configs, derived from the settings
# --------------------------------------------------------------------------------------------------


def media_config(s: DemoSettings) -> MediaConfig:
    """Every stage samples all ``data.frames`` frames at exactly ``data.size``² pixels."""
    pixels = s.data.size * s.data.size
    return MediaConfig(
        fps=2.0,
        min_frames=4,
        max_frames=s.data.frames,
        video_min_pixels=pixels,
        video_max_pixels=pixels,
        image_min_pixels=pixels,
        image_max_pixels=pixels,
    )


def _data(s: DemoSettings, data_dir: Path, train_file: str) -> DataConfig:
    return DataConfig(
        train_file=str(data_dir / train_file),
        eval_file=str(data_dir / "test.json"),
        media_root=str(data_dir),
        media=media_config(s),
        prompt_variant="eval",
        system_prompt=SYSTEM_PROMPT,
    )


def _train(
    s: DemoSettings, output_dir: Path, *, batch: int, steps: int, lr: float, warmup: int, seed: int
) -> TrainConfig:
    return TrainConfig(
        output_dir=str(output_dir),
        seed=seed,
        per_device_batch_size=batch,
        max_steps=steps,
        lr=lr,
        weight_decay=0.01,
        max_grad_norm=1.0,
        scheduler="constant",
        warmup_steps=warmup,
        max_seq_len=4096,
        keep_last=1,
    )


def sft_config(s: DemoSettings, out: Path, base_model: Path, *, phase: str = "all") -> Config:
    """SFT config of one phase: ``"images"`` (image records only, from the base model) or ``"all"``
    (every record, from the images phase's checkpoint, or from the base model without curriculum)."""
    if phase not in ("images", "all"):
        raise ValueError(f"phase must be 'images' or 'all', got {phase!r}")
    images = phase == "images"
    steps = s.sft.image_steps if images else s.sft.steps
    train_file = SFT_TRAIN_FILE if s.data.sft_shortcut_items == "cue" else "train_cot.json"
    return Config(
        model=ModelConfig(path=str(base_model)),
        data=_data(s, out / "data", IMAGE_TRAIN_FILE if images else train_file),
        train=_train(
            s,
            out / ("sft-images" if images else "sft"),
            batch=s.sft.batch,
            steps=steps,
            lr=s.sft.lr,
            warmup=min(s.sft.warmup_steps, steps // 10),
            seed=s.seed,
        ),
        sft=SFTConfig(system_prompt=SYSTEM_PROMPT),
    )


def rl_config(s: DemoSettings, out: Path, sft_model: Path, *, variant: str, seed: int) -> Config:
    """RL config of one variant and seed (``VARIANTS`` says what each variant changes)."""
    spec = VARIANTS[variant]
    return Config(
        model=ModelConfig(path=str(sft_model)),
        data=_data(s, out / "data", RL_TRAIN_FILE),
        train=_train(
            s, rl_dir(out, variant, seed), batch=s.rl.batch, steps=s.rl.steps, lr=s.rl.lr, warmup=0, seed=seed
        ),
        rl=RLConfig(
            num_generations=s.rl.num_generations,
            temporal=bool(spec["temporal"]),
            shuffle_unit="temporal_patch",
            temporal_form=spec.get("temporal_form", "reference"),  # type: ignore[arg-type]
            temporal_margin=s.rl.margin if spec.get("margin") else None,
            **({"temporal_alpha": spec["alpha"]} if "alpha" in spec else {}),
            length_reward=False,
            beta=s.rl.beta,
            max_prompt_length=4096,
            sampling=SamplingConfig(
                temperature=s.rl.temperature, top_p=1.0, max_new_tokens=s.rl.max_new_tokens
            ),
        ),
    )


def rl_dir(out: Path, variant: str, seed: int) -> Path:
    return out / "rl" / f"{variant}-seed{seed}"


def rl_seeds(s: DemoSettings) -> list[int]:
    return [s.seed + k for k in range(s.rl.seeds)]


# --------------------------------------------------------------------------------------------------
# Data files of the stages
# --------------------------------------------------------------------------------------------------


def _write_subset(source: Path, target: Path, keep, what: str) -> int:
    records = json.loads(source.read_text(encoding="utf-8"))
    chosen = [r for r in records if keep(r)]
    if not chosen:
        raise ValueError(f"{source}: no {what} records")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(chosen, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(target)
    return len(chosen)


def write_image_train_file(data_dir: Path) -> int:
    """Write ``IMAGE_TRAIN_FILE`` (the image records of ``train_cot.json``); returns their count."""
    return _write_subset(
        data_dir / "train_cot.json",
        data_dir / IMAGE_TRAIN_FILE,
        lambda r: r.get("data_type") == "image",
        "image records for the images SFT phase: no",
    )


def write_sft_train_file(data_dir: Path) -> int:
    """Write ``SFT_TRAIN_FILE``: every CoT record except shortcut-family items whose cue is wrong.

    It models a teacher that answered the shortcut family by its static cue, filtered by
    correctness as the CoT annotation stage does: exactly the items where the cue gives the right
    answer survive, so SFT never sees the cue fail (RL still trains on every item).
    """
    return _write_subset(
        data_dir / "train_cot.json",
        data_dir / SFT_TRAIN_FILE,
        lambda r: r.get("shortcut_cue", True),
        "SFT: no",
    )


def write_rl_train_file(data_dir: Path, families: list[str]) -> int:
    """Write ``RL_TRAIN_FILE`` (the records of ``train.json`` from ``families``); returns their count."""
    wanted = set(families)
    return _write_subset(
        data_dir / "train.json",
        data_dir / RL_TRAIN_FILE,
        lambda r: r.get("family") in wanted,
        f"RL training: no {', '.join(sorted(wanted))}",
    )


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def _stage_accuracy(pred_file: Path) -> dict[str, Any]:
    """Mean default-mode accuracy over all items, and per family, from a predictions.jsonl."""
    per_family: dict[str, list[float]] = defaultdict(list)
    scores: list[float] = []
    errors = 0
    for line in pred_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec["status"] != "ok":
            errors += 1
            score = 0.0
        else:
            score = float(rec["score"]["official"])
        scores.append(score)
        per_family[rec.get("family") or "unknown"].append(score)
    return {
        "accuracy": sum(scores) / max(1, len(scores)),
        "per_family": {f: sum(v) / len(v) for f, v in per_family.items()},
        "counts": {f: len(v) for f, v in per_family.items()},
        "errors": errors,
    }


def evaluate_view(
    predictor: Any,
    data_dir: Path,
    run_dir: Path,
    media: MediaConfig,
    *,
    shuffled: bool,
    seed: int,
    max_new_tokens: int,
    batch: int,
    label: str,
    limit: int | None = None,
) -> dict[str, Any]:
    """Greedy evaluation of ``data_dir/test.json`` into ``run_dir`` (resumed if it holds the same
    run), frames in order or shuffled (``shuffle_unit: frame``, seeded per item); returns the mean
    accuracy over all items and per family (``_stage_accuracy``)."""
    from videor1.eval.runner import evaluate

    settings = EvalConfig(
        benches=[str(data_dir / "test.json")],
        bench_names=["videor1-synth"],
        output_dir=str(run_dir),
        greedy=True,
        sampling=SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=max_new_tokens),
        batch_size=batch,
        shuffle_frames=shuffled,
        shuffle_unit="frame",
        seed=seed,
        limit=limit,
    )
    evaluate(predictor, settings, media=media, media_root=data_dir, label=label, system_prompt=SYSTEM_PROMPT)
    return _stage_accuracy(run_dir / "predictions.jsonl")


def _evaluate(model_dir: Path, s: DemoSettings, out: Path, run_name: str, *, shuffled: bool) -> dict:
    from videor1.infer import Predictor

    return evaluate_view(
        Predictor(str(model_dir), media=media_config(s)),
        out / "data",
        out / "eval" / run_name,
        media_config(s),
        shuffled=shuffled,
        seed=s.seed,
        max_new_tokens=s.eval.max_new_tokens,
        batch=s.eval.batch,
        label=run_name,
    )


def evaluate_stage(model_dir: Path, s: DemoSettings, out: Path, name: str) -> dict[str, Any]:
    """Evaluate one checkpoint with ordered and with shuffled frames."""
    views = {
        view: _evaluate(model_dir, s, out, f"{name}-{view}", shuffled=view == "shuffled")
        for view in ("ordered", "shuffled")
    }
    families = sorted(set(views["ordered"]["per_family"]) | set(views["shuffled"]["per_family"]))
    return {
        "model": str(model_dir),
        "accuracy_ordered": views["ordered"]["accuracy"],
        "accuracy_shuffled": views["shuffled"]["accuracy"],
        "errors": views["ordered"]["errors"] + views["shuffled"]["errors"],
        "per_family": {
            f: {
                "ordered": views["ordered"]["per_family"].get(f, 0.0),
                "shuffled": views["shuffled"]["per_family"].get(f, 0.0),
                "n": views["ordered"]["counts"].get(f, 0),
            }
            for f in families
        },
    }


# --------------------------------------------------------------------------------------------------
# SFT with its learning curve
# --------------------------------------------------------------------------------------------------


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
                curve[key] = _evaluate(Path(checkpoint), s, out, f"sft-step{key}", shuffled=False)
                curve_file.write_text(json.dumps(curve, indent=1), encoding="utf-8")
        model = sft_recipe.train(cfg, resume="auto")
        offset += steps
    points = [{"step": int(k), **v} for k, v in sorted(curve.items(), key=lambda kv: int(kv[0]))]
    return Path(model), points, configs


# --------------------------------------------------------------------------------------------------
# RL curves and summaries
# --------------------------------------------------------------------------------------------------

CURVE_KEYS = {
    "reward": "reward/total",
    "accuracy": "reward/accuracy",
    "accuracy_shuffled": "accuracy/shuffled",
    "fire_rate": "temporal/fire_rate",
    "advantage_shift": "temporal/advantage_shift",
}


def _rl_curve(run_dir: Path) -> list[dict[str, float | None]]:
    from videor1.utils.rundir import read_metrics

    points = []
    for rec in read_metrics(run_dir / "metrics.jsonl"):
        point: dict[str, float | None] = {"step": rec["step"]}
        for name, key in CURVE_KEYS.items():
            value = rec.get(key)
            point[name] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
        points.append(point)
    return points


def _mean_std(values: list[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "values": values}


def _run_mean(points: list[dict[str, Any]], key: str) -> float | None:
    values = [p[key] for p in points if p.get(key) is not None]
    return sum(values) / len(values) if values else None


def rl_summary(runs: dict[str, list[dict[str, Any]]], focus: list[str]) -> dict[str, Any]:
    """Per variant: mean ± std over seeds of held-out accuracy (all items and ``focus`` families),
    ordered and shuffled, the gap, the bonus firing rate and the advantage shift (means over steps)."""
    summary: dict[str, Any] = {}
    for variant, seeds in runs.items():
        row: dict[str, Any] = {"seeds": [r["seed"] for r in seeds]}
        for scope in ["all", *focus]:
            for view in ("ordered", "shuffled"):
                if scope == "all":
                    vals = [r["eval"][f"accuracy_{view}"] for r in seeds]
                else:
                    vals = [r["eval"]["per_family"][scope][view] for r in seeds]
                row[f"{scope}/{view}"] = _mean_std(vals)
            row[f"{scope}/gap"] = _mean_std(
                [a - b for a, b in zip(row[f"{scope}/ordered"]["values"], row[f"{scope}/shuffled"]["values"])]
            )
        for key in ("fire_rate", "advantage_shift", "reward", "accuracy"):
            vals = [_run_mean(r["curve"], key) for r in seeds]
            row[key] = (
                _mean_std([v for v in vals if v is not None]) if any(v is not None for v in vals) else None
            )
        summary[variant] = row
    return summary


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


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
    """
    import torch

    from videor1.data.synth import generate_dataset
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
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    data_dir = out / "data"
    with _Timer(seconds, "data"):
        if not (data_dir / "meta.json").exists():
            generate_dataset(
                data_dir,
                train=s.data.train_items,
                test=s.data.test_items,
                seed=s.seed,
                families=s.data.families,
                size=s.data.size,
                frames=s.data.frames,
                jobs=2,
                cot_detail=s.data.cot_detail,
            )
        if s.sft.image_steps:
            write_image_train_file(data_dir)
        if s.data.sft_shortcut_items == "cue":
            write_sft_train_file(data_dir)
        write_rl_train_file(data_dir, s.rl_families)
    meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))

    base_dir = out / "model-base"
    with _Timer(seconds, "model"):
        if not (base_dir / "config.json").exists():
            build_tiny_model(dataclasses.replace(s.model, seed=s.seed), base_dir)

    with _Timer(seconds, "sft"):
        sft_ckpt, sft_curve, sft_configs = run_sft(s, out, base_dir)

    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in s.rl.variants}
    checkpoints: dict[tuple[str, int], Path] = {}
    for seed in rl_seeds(s):
        for variant in s.rl.variants:
            with _Timer(seconds, variant if seed == s.seed else f"{variant} (other seeds)"):
                cfg = rl_config(s, out, sft_ckpt, variant=variant, seed=seed)
                checkpoints[variant, seed] = Path(rl_recipe.train(cfg, resume="auto"))

    stages: dict[str, Any] = {}
    with _Timer(seconds, "eval"):
        stages["base"] = evaluate_stage(base_dir, s, out, "base")
        stages["sft"] = evaluate_stage(sft_ckpt, s, out, "sft")
        for (variant, seed), ckpt in checkpoints.items():
            result = evaluate_stage(ckpt, s, out, f"{variant}-seed{seed}")
            runs[variant].append(
                {"seed": seed, "eval": result, "curve": _rl_curve(rl_dir(out, variant, seed))}
            )
            if seed == s.seed:
                stages[variant] = result
    sft_curve.append({"step": s.sft.image_steps + s.sft.steps, **_final_point(stages["sft"])})

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
    from videor1.config import ConfigError

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


def _final_point(stage: dict[str, Any]) -> dict[str, Any]:
    """The SFT stage's ordered evaluation in the learning curve's shape."""
    return {
        "accuracy": stage["accuracy_ordered"],
        "per_family": {f: v["ordered"] for f, v in stage["per_family"].items()},
        "counts": {f: v["n"] for f, v in stage["per_family"].items()},
        "errors": stage["errors"],
    }
