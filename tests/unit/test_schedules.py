"""Warmup + constant / linear / cosine schedules over the run's exact step count; steps from epochs."""

from __future__ import annotations

import math

import pytest
import torch

from videor1.config import ConfigError, TrainConfig
from videor1.train.optim import (
    build_optimizer,
    build_scheduler,
    global_batch_size,
    lr_factor,
    steps_per_epoch,
    total_steps,
    warmup_steps,
)


def test_warmup_reaches_peak_on_last_warmup_step():
    # warmup 4: factors (s+1)/4 = 0.25, 0.5, 0.75, 1.0; never 0 on the first update.
    got = [lr_factor(s, total=10, warmup=4, schedule="constant") for s in range(6)]
    assert got == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_hand_values():
    # total 10, warmup 2: after warmup p = (s - 2) / 8.
    # s=2 -> p=0 -> 1.0; s=6 -> p=0.5 -> 0.5; s=9 -> p=7/8 -> (1 + cos(7pi/8)) / 2 = 0.0380602...
    f = [lr_factor(s, total=10, warmup=2, schedule="cosine") for s in range(10)]
    assert f[0] == 0.5 and f[1] == 1.0 and f[2] == 1.0
    assert f[6] == pytest.approx(0.5)
    assert f[9] == pytest.approx(0.03806023374435663)
    assert all(a >= b for a, b in zip(f[1:], f[2:]))  # non-increasing after warmup
    assert f[9] > 0  # the last update still learns


def test_linear_hand_values():
    # total 5, no warmup: p = s/5 -> 1, 0.8, 0.6, 0.4, 0.2
    assert [lr_factor(s, total=5, warmup=0, schedule="linear") for s in range(5)] == pytest.approx(
        [1.0, 0.8, 0.6, 0.4, 0.2]
    )


def test_scheduler_drives_optimizer_lr_over_exact_steps():
    cfg = TrainConfig(max_steps=4, lr=0.1, scheduler="linear", warmup_steps=1)
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, total_steps(cfg, num_samples=100, world_size=1))
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # warmup step 0: 1/1 = 1.0; then p = (s-1)/3: s=1 -> 1, s=2 -> 2/3, s=3 -> 1/3
    assert lrs == pytest.approx([0.1, 0.1, 0.1 * 2 / 3, 0.1 / 3])


def test_weight_decay_only_on_matrices():
    cfg = TrainConfig(max_steps=1, weight_decay=0.5)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    opt = build_optimizer(model, cfg)
    decays = {g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in opt.param_groups}
    assert decays == {0.5: 9, 0.0: 3 + 3 + 3}  # linear weight | linear bias + norm weight + norm bias


def test_epochs_to_steps():
    # 50 samples, batch 2 x accum 3 x 2 ranks = 12 per step -> 4 full steps per epoch (2 dropped).
    cfg = TrainConfig(epochs=1.5, per_device_batch_size=2, gradient_accumulation_steps=3)
    assert global_batch_size(cfg, 2) == 12
    assert steps_per_epoch(50, 12) == 4
    assert total_steps(cfg, 50, 2) == 6  # ceil(1.5 * 4)
    assert total_steps(TrainConfig(max_steps=7), 50, 2) == 7


def test_dataset_smaller_than_a_global_batch_raises():
    with pytest.raises(ConfigError, match="fewer than one global batch of 8"):
        total_steps(TrainConfig(epochs=1.0, per_device_batch_size=4), 5, 2)


def test_warmup_ratio_and_too_long_warmup():
    assert warmup_steps(TrainConfig(max_steps=10, warmup_ratio=0.25), 10) == 2  # round(2.5) = 2 (banker's)
    assert warmup_steps(TrainConfig(max_steps=10, warmup_ratio=0.3), 10) == 3
    with pytest.raises(ConfigError, match="longer than the run"):
        warmup_steps(TrainConfig(max_steps=3, warmup_steps=5), 3)


def test_cosine_never_negative_past_end():
    assert lr_factor(20, total=10, warmup=0, schedule="cosine") == pytest.approx(0.0)
    assert math.isclose(lr_factor(10, total=10, warmup=0, schedule="linear"), 0.0)
