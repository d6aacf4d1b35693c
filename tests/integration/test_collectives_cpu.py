"""FSDP2's collectives stay aligned whatever each rank's data, and its gradients stay sharded (2 CPU
processes, gloo, the tiny Qwen2.5-VL).

- One rank holds an image and a video per micro-batch, the other two videos: SFT and T-GRPO finish
  under FSDP2 with the DDP run's metrics (before one vision call per micro-batch, rank 0 ran two
  vision forwards to rank 1's one and gloo aborted on mismatched all-gathers).
- Dynamic sampling where only rank 0's groups are signal-free: both ranks run the same refill
  rounds and train on the same batch shapes; FSDP2 matches DDP.
- Gradient accumulation under FSDP2: between micro-batches each rank holds exactly its shard of the
  gradients (``set_requires_gradient_sync(False)`` kept the whole model's unsharded gradients).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from videor1.config import load_config, save_config
from videor1.utils.rundir import read_metrics

WORKER = Path(__file__).with_name("collectives_worker.py")
VOLATILE = ("time/", "_per_s", "peak_memory_mb")  # wall-clock and memory readings
MEDIA = [
    "data.media.nframes=8",
    "data.media.video_min_pixels=3136",
    "data.media.video_max_pixels=12544",
    "data.media.image_min_pixels=3136",
    "data.media.image_max_pixels=12544",
]


def mixed_split(synth_dir: Path, out: Path, source: str, *, per_device: int, accumulation: int) -> Path:
    """``source``'s records reordered so that, in one step on 2 ranks (sampler seed 0), each of rank
    0's micro-batches holds an image then a video and each of rank 1's two videos."""
    from videor1.train.data import StepSampler
    from videor1.train.distributed import Dist

    assert per_device == 2
    records = json.loads((synth_dir / source).read_text())
    images = iter([r for r in records if r["data_type"] == "image"])
    videos = iter([r for r in records if r["data_type"] == "video"])
    n = 2 * per_device * accumulation
    slots: dict[int, dict] = {}
    for rank in (0, 1):
        sampler = StepSampler(
            n,
            per_device=per_device,
            accumulation=accumulation,
            dist=Dist(rank=rank, world_size=2, local_rank=rank, device=torch.device("cpu")),
            seed=0,
            start_step=0,
            end_step=1,
        )
        for mb in sampler.step_micro_batches(0):
            first, second = mb
            slots[first] = next(images) if rank == 0 else next(videos)
            slots[second] = next(videos)
    assert sorted(slots) == list(range(n))
    path = out / f"mixed-{Path(source).stem}.json"
    path.write_text(json.dumps([slots[i] for i in range(n)]))
    return path


def torchrun(*args: str, timeout: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def config(tmp_path: Path, name: str, *overrides: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    save_config(load_config(None, [f"train.output_dir={tmp_path / name}", *MEDIA, *overrides]), path)
    return path


def stable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not any(s in k for s in VOLATILE)} for r in rows]


def assert_same_metrics(a: Path, b: Path) -> None:
    ra, rb = stable(read_metrics(a / "metrics.jsonl")), stable(read_metrics(b / "metrics.jsonl"))
    assert ra and [r.keys() for r in ra] == [r.keys() for r in rb]
    for x, y in zip(ra, rb):
        for k in x:
            if isinstance(x[k], float) and x[k] == x[k]:
                assert y[k] == pytest.approx(x[k], rel=1e-4, abs=1e-6), k
            else:
                assert y[k] == x[k] or (x[k] != x[k] and y[k] != y[k]), k


def sft_overrides(tiny_model_dir: Path, synth_dir: Path, train_file: Path, engine: str, accumulation: int):
    return [
        f"model.path={tiny_model_dir}",
        f"data.train_file={train_file}",
        f"data.media_root={synth_dir}",
        "train.per_device_batch_size=2",
        f"train.gradient_accumulation_steps={accumulation}",
        "train.max_steps=1",
        "train.lr=1e-3",
        "train.scheduler=constant",
        "train.max_seq_len=4096",
        f"train.distributed={engine}",
    ]


@pytest.mark.slow
def test_sft_mixed_media_per_rank_fsdp2_matches_ddp(tmp_path, tiny_model_dir, synth_dir, torchrun_videor1):
    split = mixed_split(synth_dir, tmp_path, "train_cot.json", per_device=2, accumulation=2)
    for engine in ("ddp", "fsdp2"):
        cfg = config(tmp_path, engine, *sft_overrides(tiny_model_dir, synth_dir, split, engine, 2))
        proc = torchrun_videor1("sft", cfg, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
    (row,) = read_metrics(tmp_path / "fsdp2" / "metrics.jsonl")
    assert (row["images"], row["videos"]) == (2, 6)
    assert_same_metrics(tmp_path / "ddp", tmp_path / "fsdp2")


@pytest.mark.slow
def test_tgrpo_mixed_media_per_rank_fsdp2_matches_ddp(tmp_path, synth_dir, tiny_rl_config, torchrun_videor1):
    split = mixed_split(synth_dir, tmp_path, "train.json", per_device=2, accumulation=2)
    for engine in ("ddp", "fsdp2"):
        cfg = tiny_rl_config(
            tmp_path / engine,
            f"data.train_file={split}",
            "train.per_device_batch_size=2",
            "train.gradient_accumulation_steps=2",
            "train.max_steps=1",
            f"train.distributed={engine}",
        )
        path = tmp_path / f"{engine}.yaml"
        save_config(cfg, path)
        proc = torchrun_videor1("rl", path, timeout=400)
        assert proc.returncode == 0, proc.stderr[-4000:]
    (row,) = read_metrics(tmp_path / "fsdp2" / "metrics.jsonl")
    assert row["temporal/p"] == row["temporal/p"]  # videos were decided: T-GRPO ran
    assert_same_metrics(tmp_path / "ddp", tmp_path / "fsdp2")


@pytest.mark.slow
def test_dynamic_sampling_with_one_degenerate_rank_fsdp2_matches_ddp(tmp_path, tiny_rl_config):
    """Rank 0's groups never carry a signal, rank 1's always do: rank 0 wants every refill round,
    rank 1 none. Per-rank decisions left rank 0 all-gathering alone (a hang under FSDP2)."""
    runs = {}
    for engine in ("ddp", "fsdp2"):
        cfg = tiny_rl_config(
            tmp_path / engine,
            "train.per_device_batch_size=2",
            "train.gradient_accumulation_steps=1",
            "train.max_steps=1",
            "rl.dynamic_sampling=true",
            "rl.max_resample_rounds=2",
            f"train.distributed={engine}",
        )
        path = tmp_path / f"{engine}.yaml"
        save_config(cfg, path)
        out = tmp_path / f"{engine}-probe"
        out.mkdir()
        proc = torchrun(str(WORKER), "rl-one-rank-degenerate", str(path), str(out), timeout=400)
        assert proc.returncode == 0, proc.stderr[-4000:]
        runs[engine] = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    for ranks in runs.values():
        assert ranks[0]["rolled_out"] == [3] and ranks[1]["rolled_out"] == [1]  # 2 refill rounds on rank 0
        assert ranks[0]["trained"] == ranks[1]["trained"] == [[2]]  # the same batch shapes
    assert runs["ddp"] == runs["fsdp2"]
    assert_same_metrics(tmp_path / "ddp", tmp_path / "fsdp2")


def test_fsdp2_accumulation_keeps_only_the_gradient_shard(tmp_path, tiny_model_dir, synth_dir):
    """Between micro-batches each rank's gradients are exactly its shard (so at most shard + one
    layer): FSDP2 reduce-scatters every micro-batch. Disabling its sync kept them all unsharded."""
    split = mixed_split(synth_dir, tmp_path, "train_cot.json", per_device=2, accumulation=4)
    cfg = config(tmp_path, "fsdp2", *sft_overrides(tiny_model_dir, synth_dir, split, "fsdp2", 4))
    proc = torchrun(str(WORKER), "sft-grad-bytes", str(cfg), str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rank in (0, 1):
        r = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        assert len(r["grad_bytes"]) == 4 and r["grad_bytes"][0] == 0
        assert 0 < r["shard_bytes"] < r["full_bytes"]
        for held in r["grad_bytes"][1:]:  # after micro-batches 1, 2 and 3
            assert held == r["shard_bytes"] <= r["shard_bytes"] + r["layer_bytes"]


def test_one_vision_call_equals_encoding_each_kind_alone(tiny_model_dir, synth_dir):
    """``encode_media`` over an image and a video joined equals the model's own per-kind encodes."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videor1.data.collate import collate
    from videor1.data.media import load_media
    from videor1.data.records import load_records
    from videor1.models.adapters import core_model, get_adapter
    from videor1.models.vision import VisionCounter, encode_media

    cfg = load_config(None, [f"model.path={tiny_model_dir}", f"data.media_root={synth_dir}", *MEDIA])
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(str(tiny_model_dir))
    adapter = get_adapter(model)
    samples = load_records(synth_dir / "train.json")
    pair = [next(s for s in samples if s.data_type == kind) for kind in ("image", "video")]
    media = [load_media(s, synth_dir, cfg.data.media, geometry=adapter.geometry) for s in pair]
    batch = collate(pair, media, processor, variant=cfg.data.prompt_variant, adapter=adapter)
    counter = VisionCounter().install(model)
    try:
        with torch.no_grad():
            joined = encode_media(model, batch)
            core = core_model(model)
            image = core.get_image_features(batch["pixel_values"], batch["image_grid_thw"]).pooler_output
            video = core.get_video_features(
                batch["pixel_values_videos"], batch["video_grid_thw"]
            ).pooler_output
    finally:
        counter.remove()
    assert counter.calls == 3 and counter.videos == 2  # one joined call, then one per kind
    assert len(joined.images) == len(joined.videos) == 1
    torch.testing.assert_close(joined.images[0], image[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(joined.videos[0], video[0], rtol=1e-5, atol=1e-5)
