"""The shipped Qwen2.5-VL-7B recipes, run as shipped at tiny size on 2 CPU processes (their CPU twin).

Each ``configs/qwen2_5_vl_7b/{sft,grpo,tgrpo}.yaml`` is loaded as shipped and changed only where a
CPU must: ``model.path`` -> a tiny Qwen2.5-VL, attention -> ``sdpa``, data -> a small procedural set
(rank 0 reads only videos, rank 1 only images) and sizes (steps, pixels, frames, rollouts, new
tokens). Everything else is the 7B run's: ``distributed: fsdp2`` (and ``ddp``), ``dtype: bfloat16``
with ``precision: bf16`` (fp32 master weights), gradient checkpointing, the trained ViT, lr 1e-6,
the reference's reward rules, KL to the reference model, the SFT recipe's DataLoader workers.

Each run must exit 0, move every trainable parameter's fp32 master, keep losses and KL finite, and a
run resumed from its step-2 checkpoint must log the uninterrupted run's step 3 and end at the same
masters.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videor1.config import load_config, save_config
from videor1.train.sharded import read_sharded
from videor1.utils.rundir import read_metrics

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "configs" / "qwen2_5_vl_7b"
STEPS = 3
VOLATILE = ("time/", "_per_s", "peak_memory_mb", "step_time_s")  # wall-clock and memory readings


def cpu_twin(recipe: str, out: Path, model_dir: Path, train_file: Path, media_root: Path, distributed: str):
    """The shipped config with only the CPU-forced changes."""
    overrides = [
        f"model.path={model_dir}",
        "model.attn_implementation=sdpa",
        f"data.train_file={train_file}",
        f"data.media_root={media_root}",
        "data.media.max_frames=4",
        "data.media.video_min_pixels=3136",
        "data.media.video_max_pixels=12544",
        "data.media.image_min_pixels=3136",
        "data.media.image_max_pixels=12544",
        f"train.output_dir={out}",
        f"train.max_steps={STEPS}",
        "train.save_every=1",
        f"train.keep_last={STEPS}",
        f"train.distributed={distributed}",
    ]
    if recipe == "sft":
        overrides += ["train.epochs=null", "train.max_seq_len=4096"]
    else:
        overrides += ["rl.num_generations=4", "rl.sampling.max_new_tokens=8", "rl.max_prompt_length=4096"]
    return load_config(SHIPPED / f"{recipe}.yaml", overrides)


def launch(recipe: str, config: Path, *extra: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "videor1.cli", "sft" if recipe == "sft" else "rl", "--config", str(config), *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]


def masters(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Every trained tensor's fp32 master, by parameter name."""
    if (checkpoint / "masters").is_dir():
        return read_sharded(checkpoint / "masters")
    return parameters(checkpoint)  # a float32 checkpoint is its own master copy


def parameters(model_dir: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32)
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def assert_same_metrics(a: dict, b: dict) -> None:
    keys = {k for k in a if not any(mark in k for mark in VOLATILE)}
    assert keys == {k for k in b if not any(mark in k for mark in VOLATILE)}
    for k in sorted(keys):
        x, y = a[k], b[k]
        if x is None or y is None or (isinstance(x, float) and math.isnan(x)):
            assert (x is None and y is None) or (math.isnan(x) and math.isnan(y)), (k, x, y)
        else:
            assert y == pytest.approx(x, rel=1e-6, abs=1e-9), (k, x, y)


@pytest.fixture(scope="module")
def initial(tiny_model_dir) -> dict[str, torch.Tensor]:
    return parameters(tiny_model_dir)


@pytest.mark.parametrize("distributed", ["fsdp2", "ddp"])
@pytest.mark.parametrize("recipe", ["sft", "grpo", "tgrpo"])
def test_shipped_7b_config_trains_and_resumes_on_two_cpu_processes(
    recipe, distributed, tmp_path, tiny_model_dir, synth_dir, rank_split_file, initial
):
    shipped = load_config(SHIPPED / f"{recipe}.yaml")
    assert shipped.train.distributed == "fsdp2" and shipped.train.precision == "bf16"
    source = "train_cot.json" if recipe == "sft" else "train.json"
    train_file = rank_split_file(tmp_path, source=source, per_device=1, steps=STEPS, seed=shipped.train.seed)

    whole = tmp_path / "whole"
    cfg = cpu_twin(recipe, whole, tiny_model_dir, train_file, synth_dir, distributed)
    config = tmp_path / f"{recipe}.yaml"
    save_config(cfg, config)
    launch(recipe, config)

    records = read_metrics(whole / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    for r in records:
        assert math.isfinite(r["loss"]), r
        if recipe != "sft":
            assert math.isfinite(r["kl"]) and r["kl"] >= 0, r
        if recipe == "tgrpo":  # rank 0's video questions got their shuffled twins
            assert r["temporal/p"] is not None and math.isfinite(r["temporal/p"]), r
    final = whole / "checkpoints" / f"step-{STEPS:08d}"
    trained = masters(final)
    assert set(trained) == set(initial), "the masters must cover every parameter (all of them train)"
    unchanged = [k for k in trained if torch.equal(trained[k], initial[k])]
    assert unchanged == [], f"fp32 masters that did not move: {unchanged[:8]}"
    assert all(v.dtype == torch.float32 for v in trained.values())
    stored = load_file(str(final / "model.safetensors"))
    assert {v.dtype for v in stored.values()} == {getattr(torch, cfg.model.dtype)}

    # an interrupted run: the run directory as it was after step 2, resumed
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    name = f"step-{STEPS - 1:08d}"
    shutil.copytree(whole / "checkpoints" / name, resumed / "checkpoints" / name)
    shutil.copy(whole / "metrics.jsonl", resumed / "metrics.jsonl")
    cfg.train.output_dir = str(resumed)
    save_config(cfg, config)
    launch(recipe, config, "--resume", "auto")
    again = read_metrics(resumed / "metrics.jsonl")
    assert [r["step"] for r in again] == list(range(1, STEPS + 1))
    assert_same_metrics(records[-1], again[-1])
    end = masters(resumed / "checkpoints" / f"step-{STEPS:08d}")
    for k in trained:
        torch.testing.assert_close(end[k], trained[k], rtol=0, atol=0, msg=k)
