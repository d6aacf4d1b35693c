"""The resumable distributed sampler: distinct records per rank, exact resume, epoch reshuffles."""

from __future__ import annotations

import pytest
import torch

from videor1.config import ConfigError
from videor1.train.data import StepSampler
from videor1.train.distributed import Dist


def dist(rank: int, world: int) -> Dist:
    return Dist(rank=rank, world_size=world, local_rank=rank, device=torch.device("cpu"))


def sampler(rank=0, world=2, start=0, end=6, n=10, per_device=2, accumulation=1, seed=0, shuffle=True):
    return StepSampler(
        n,
        per_device=per_device,
        accumulation=accumulation,
        dist=dist(rank, world),
        seed=seed,
        start_step=start,
        end_step=end,
        shuffle=shuffle,
    )


def test_unshuffled_layout_by_hand():
    # n=10, 2 ranks x 2 per device x 2 micro-batches = 8 per step -> 1 step per epoch (2 records dropped).
    # step 0: global batch [0..7]; micro m of rank r = [(m*2 + r)*2, +2)
    s0 = sampler(rank=0, accumulation=2, shuffle=False)
    s1 = sampler(rank=1, accumulation=2, shuffle=False)
    assert s0.steps_per_epoch == 1
    assert s0.step_micro_batches(0) == [[0, 1], [4, 5]]
    assert s1.step_micro_batches(0) == [[2, 3], [6, 7]]


def test_ranks_read_distinct_records_covering_each_global_batch():
    ranks = [sampler(rank=r, world=2, n=12, end=3) for r in range(2)]  # 4 per step, 3 steps per epoch
    seen = []
    for step in range(3):
        per_rank = [set(i for mb in s.step_micro_batches(step) for i in mb) for s in ranks]
        assert per_rank[0].isdisjoint(per_rank[1])
        seen += [i for r in per_rank for i in r]
    assert sorted(seen) == list(range(12))  # one epoch reads every record exactly once


def test_resume_reads_the_same_stream():
    whole = list(sampler(rank=1, start=0, end=6))
    first, rest = list(sampler(rank=1, start=0, end=3)), list(sampler(rank=1, start=3, end=6))
    assert first + rest == whole
    assert len(sampler(rank=1, start=3, end=6)) == 3


def test_each_epoch_is_a_new_permutation():
    s = sampler(world=1, per_device=5, n=10, end=4)  # 2 steps per epoch
    e0, e1 = s.order(0), s.order(1)
    assert sorted(e0) == sorted(e1) == list(range(10)) and e0 != e1
    assert s.step_micro_batches(2) == [e1[:5]]


def test_resume_state_mismatch_is_refused():
    s = sampler()
    state = s.state_dict(3)
    assert state["next_step"] == 3 and state["epoch"] == 3 / s.steps_per_epoch
    s.check_resume(state, "ckpt")
    with pytest.raises(ConfigError, match="num_samples was 10 when saved and is 12 now"):
        sampler(n=12).check_resume(state, "ckpt")
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        sampler(n=3)
