"""A diverging run stops with a clear error, never saves non-finite weights, and logs NaN as NaN."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_rl import tiny_cfg
from test_sft import make_cfg
from torch import nn

from videor1.train.distributed import Dist
from videor1.train.guards import NonFiniteError, check_finite_weights, check_update, skipped
from videor1.utils.rundir import MetricsWriter, read_metrics

SOLO = Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _model_with_grads() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Linear(3, 2)
    model(torch.ones(1, 3)).sum().backward()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def test_a_finite_update_passes_a_nan_one_is_dropped_then_stops():
    model, optimizer = _model_with_grads()
    assert check_update(model, optimizer, loss=1.0, grad_norm=2.0, dist=SOLO, allowed_skips=1, update=1)
    before = [p.detach().clone() for p in model.parameters()]
    assert not check_update(
        model, optimizer, loss=math.nan, grad_norm=2.0, dist=SOLO, allowed_skips=1, update=2
    )
    optimizer.step()  # every grad is None: AdamW leaves the weights (and weight decay) alone
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert skipped(optimizer) == 1
    model(torch.ones(1, 3)).sum().backward()
    with pytest.raises(
        NonFiniteError, match=r"update 3: .*gradient norm inf.*train.nonfinite_skip \(now 1\)"
    ):
        check_update(model, optimizer, loss=1.0, grad_norm=math.inf, dist=SOLO, allowed_skips=1, update=3)


def test_non_finite_weights_are_never_saved():
    model = nn.Linear(3, 2)
    check_finite_weights(model, SOLO, "ckpt")
    with torch.no_grad():
        model.bias[0] = math.inf
    with pytest.raises(NonFiniteError, match="ckpt: refusing to save non-finite weights \\(bias\\)"):
        check_finite_weights(model, SOLO, "ckpt")


def test_metrics_keep_nan_and_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.write({"step": 1, "loss": float("nan"), "grad_norm": float("inf")})
    writer.write({"step": 2, "loss": 0.5})
    assert path.read_text().splitlines()[0] == '{"step": 1, "loss": NaN, "grad_norm": Infinity}'
    with path.open("a") as f:
        f.write('{"step": 3, "lo')  # killed mid-write
    records = read_metrics(path)
    assert [r["step"] for r in records] == [1, 2] and math.isnan(records[0]["loss"])
    writer.truncate_after_step(2)  # what a resume does
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_sft_with_a_huge_lr_stops_and_saves_nothing(tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.sft import train

    cfg = make_cfg(
        tmp_path / "run", tiny_model_dir, synth_dir, lr=1e6, max_steps=8, save_every=1, max_grad_norm=0.0
    )
    with pytest.raises(NonFiniteError, match="not finite"):
        train(cfg)
    assert len(_assert_finite_checkpoints(tmp_path / "run")) < 8


def _assert_finite_checkpoints(run_dir) -> list:
    """The checkpoints saved before the divergence hold only finite weights."""
    from safetensors.torch import load_file

    checkpoints = sorted((run_dir / "checkpoints").glob("step-*"))
    for ckpt in checkpoints:
        assert all(bool(torch.isfinite(t).all()) for t in load_file(str(ckpt / "model.safetensors")).values())
    return checkpoints


def test_rl_with_a_huge_lr_stops(tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.rl import train

    cfg = tiny_cfg(
        tmp_path,
        tiny_model_dir,
        synth_dir / "train.json",
        synth_dir,
        **{"train.lr": "1e6", "train.max_steps": "6", "train.max_grad_norm": "0", "rl.beta": "0"},
    )
    with pytest.raises(NonFiniteError, match="not finite"):
        train(cfg)
    _assert_finite_checkpoints(tmp_path)
