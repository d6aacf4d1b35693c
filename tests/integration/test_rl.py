"""T-GRPO end to end on CPU: a tiny model on procedural data trains, logs, resumes and runs on 2 ranks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videor1.config import load_config, save_config
from videor1.utils.rundir import read_metrics

REPO = Path(__file__).resolve().parents[2]

EXPECTED_METRICS = [
    "reward/accuracy",
    "reward/format",
    "reward/length",
    "reward/temporal",
    "reward/total",
    "temporal/p",
    "temporal/p_shuffled",
    "temporal/fire_rate",
    "temporal/advantage_shift",
    "temporal/still_clips",
    "reward/scorer_error_rate",
    "dynamic_sampling/dropped",
    "accuracy/ordered",
    "accuracy/shuffled",
    "completion_length",
    "kl",
    "clip_fraction",
    "entropy",
    "zero_variance_rate",
    "rollout_tokens_per_s",
    "time/rollout",
    "time/score",
    "time/update",
    "time/step",
    "vit_passes_per_video_question",
    "loss",
    "grad_norm",
    "lr",
]


MEDIA_OVERRIDES = [  # 8 frames of 56x56..112x112 px: a few visual tokens each
    "data.media.nframes=8",
    "data.media.video_min_pixels=3136",
    "data.media.video_max_pixels=12544",
    "data.media.image_min_pixels=3136",
    "data.media.image_max_pixels=12544",
]


def tiny_cfg(tmp: Path, model_dir: Path, train_file: Path, media_root: Path, **overrides: str):
    base = [
        f"model.path={model_dir}",
        f"data.train_file={train_file}",
        f"data.media_root={media_root}",
        *MEDIA_OVERRIDES,
        f"train.output_dir={tmp}",
        "train.max_steps=3",
        "train.per_device_batch_size=2",
        "train.lr=1e-3",
        "train.save_every=1",
        "train.keep_last=3",
        "rl.num_generations=4",
        "rl.shuffled_generations=2",
        "rl.sampling.max_new_tokens=6",
        "rl.length_min=2",
        "rl.length_max=4",
    ]
    return load_config(None, base + [f"{k}={v}" for k, v in overrides.items()])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def tgrpo_run(tmp_path_factory, tiny_model_dir, synth_dir):
    from videor1.train.rl import train

    out = tmp_path_factory.mktemp("tgrpo")
    cfg = tiny_cfg(out, tiny_model_dir, synth_dir / "train.json", synth_dir, **{"rl.shuffle_unit": "frame"})
    final = train(cfg)
    return cfg, out, final


def test_every_parameter_trains_and_metrics_are_logged(tgrpo_run, tiny_model_dir):
    _, out, final = tgrpo_run
    before, after = _weights(tiny_model_dir), _weights(final)
    assert before.keys() == after.keys()
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert unchanged == [], f"parameters that did not train: {unchanged[:10]}"

    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in EXPECTED_METRICS:
        assert all(key in r for r in records), key
    # 2 questions per step; every video question went through the ViT 1 (rollout) + 1 (shuffled,
    # unit=frame) + 1 (policy, with grad) + 1 (reference) = 4 times
    videos = [r for r in records if r["temporal/p"] is not None]
    assert videos, "no step had a video question"
    assert all(r["vit_passes_per_video_question"] == 4 for r in videos)
    # the bonus moves advantages only on steps where it fired
    assert all(r["temporal/advantage_shift"] >= 0 for r in videos)
    assert all(r["temporal/advantage_shift"] == 0 for r in videos if r["temporal/fire_rate"] == 0)
    assert all(0 <= r["zero_variance_rate"] <= 1 for r in records)


def test_resume_reproduces_the_uninterrupted_run(tgrpo_run, tmp_path):
    from videor1.train.rl import train

    cfg, out, final = tgrpo_run
    # an "interrupted" run: the run directory as it was after step 2
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(out / "checkpoints" / "step-00000002", resumed / "checkpoints" / "step-00000002")
    shutil.copy(out / "metrics.jsonl", resumed / "metrics.jsonl")
    cfg.train.output_dir = str(resumed)
    final_resumed = train(cfg, resume="auto")
    a, b = _weights(final), _weights(final_resumed)
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=0, msg=k)
    first, second = read_metrics(out / "metrics.jsonl"), read_metrics(resumed / "metrics.jsonl")
    assert [r["step"] for r in second] == [1, 2, 3]
    for key in ("reward/total", "completion_length", "loss", "kl"):
        assert second[2][key] == pytest.approx(first[2][key], abs=1e-6), key


def test_temporal_patch_reuse_and_frozen_vit(tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.rl import train

    # temporal_patch shuffle reuses the rollout encodings; a frozen ViT serves policy and reference
    # forwards from them too: one ViT pass per video question
    cfg = tiny_cfg(
        tmp_path,
        tiny_model_dir,
        synth_dir / "train.json",
        synth_dir,
        **{
            "train.max_steps": "2",
            "train.save_every": "0",
            "model.freeze_vision": "true",
            "rl.shuffle_unit": "temporal_patch",
            "rl.temporal_form": "advantage",
            "rl.num_iterations": "2",
            "rl.loss_agg": "token-mean",
        },
    )
    final = train(cfg)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["vit_passes_per_video_question"] for r in records if r["temporal/p"] is not None]
    assert all(r["vit_passes_per_video_question"] == 1 for r in records if r["temporal/p"] is not None)
    before, after = _weights(tiny_model_dir), _weights(final)
    vision = [k for k in before if k.startswith("visual.") or ".visual." in k]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)
    assert any(not torch.equal(before[k], after[k]) for k in before if k not in vision)


def test_two_processes_one_rank_images_only(tmp_path, tiny_model_dir, synth_dir, rank_split_file):
    train_file = rank_split_file(tmp_path, per_device=2, steps=2, seed=0)
    cfg = tiny_cfg(
        tmp_path / "run",
        tiny_model_dir,
        train_file,
        synth_dir,
        **{"train.max_steps": "2", "train.save_every": "0", "rl.shuffle_unit": "temporal_patch"},
    )
    config = tmp_path / "rl.yaml"
    save_config(cfg, config)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port on localhost
        "--nproc_per_node",
        "2",
        "-m",
        "videor1.cli",
        "rl",
        "--config",
        str(config),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    # rank 0 had the videos, rank 1 only images: the temporal stats come from rank 0's questions
    assert all(r["temporal/p"] is not None for r in records)


def test_dynamic_sampling_refills_and_trains(tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.rl import train

    # a random-init model never answers correctly: every group has zero variance, so each round is
    # dropped, max_resample_rounds more rounds are rolled out, and the batch is topped up with leftovers
    cfg = tiny_cfg(
        tmp_path,
        tiny_model_dir,
        synth_dir / "train.json",
        synth_dir,
        **{
            "train.max_steps": "1",
            "train.save_every": "0",
            "rl.dynamic_sampling": "true",
            "rl.max_resample_rounds": "2",
            "rl.temporal": "false",
            "rl.shuffled_generations": "null",
        },
    )
    train(cfg)
    (record,) = read_metrics(tmp_path / "metrics.jsonl")
    # 2 questions + 2 rounds x 2 refill questions seen, all zero-variance
    assert record["zero_variance_rate"] == 1.0
    # every rolled-out video is encoded once; only the kept ones again for the policy and reference
    vit = record["vit_passes_per_video_question"]
    assert vit is None or 1.0 < vit <= 3.0


def test_token_mean_divides_by_every_completion_token_of_the_step(
    tmp_path, tiny_model_dir, synth_dir, monkeypatch
):
    import videor1.train.rl as recipe
    import videor1.train.rl_update as update_phase

    calls = []
    real = update_phase.policy_loss

    def spy(logp, old_logp, advantages, mask, **kwargs):
        calls.append({"tokens": int(mask.sum()), "rows": mask.shape[0], **kwargs})
        return real(logp, old_logp, advantages, mask, **kwargs)

    monkeypatch.setattr(update_phase, "policy_loss", spy)
    cfg = tiny_cfg(
        tmp_path,
        tiny_model_dir,
        synth_dir / "train.json",
        synth_dir,
        **{
            "train.max_steps": "1",
            "train.save_every": "0",
            "train.per_device_batch_size": "1",
            "train.gradient_accumulation_steps": "2",
            "rl.loss_agg": "token-mean",
            "rl.temporal": "false",
            "rl.shuffled_generations": "null",
        },
    )
    recipe.train(cfg)
    assert len(calls) == 2  # one per micro-batch
    step_tokens, step_rows = sum(c["tokens"] for c in calls), sum(c["rows"] for c in calls)
    assert all(c["num_tokens"] == step_tokens and c["num_sequences"] == step_rows for c in calls)
    (record,) = read_metrics(tmp_path / "metrics.jsonl")
    assert record["completion_length"] * step_rows == pytest.approx(step_tokens)


def test_step_generators_live_where_they_draw():
    from videor1.train.rl import step_generators

    gens = step_generators(0, 3, 1, torch.device("cpu"))
    assert gens.data.device == torch.device("cpu") and gens.sampling.device == torch.device("cpu")
    again = step_generators(0, 3, 1, torch.device("cpu"))
    assert torch.equal(torch.randperm(9, generator=gens.data), torch.randperm(9, generator=again.data))
    other = step_generators(0, 3, 0, torch.device("cpu"))  # another rank draws differently
    assert not torch.equal(torch.rand(8, generator=gens.sampling), torch.rand(8, generator=other.sampling))
