"""Run by ``test_collectives_cpu.py`` under ``torchrun``: a recipe with one probe patched in.

``python collectives_worker.py MODE CONFIG OUT_DIR``; each rank writes ``OUT_DIR/rank-<r>.json``.

- ``sft-grad-bytes``: SFT; before each micro-batch's forward, the gradient bytes this rank holds
  (every ``.grad`` of the module's parameters and, under FSDP2, the unsharded and accumulated
  gradients FSDP keeps aside), with this rank's shard bytes and the largest FSDP group's bytes.
- ``rl-one-rank-degenerate``: RL; rank 1's groups get a reward spread, rank 0's keep the random
  model's tied rewards (it never answers, so every group is signal-free); records per step the
  batches each rank rolled out and trained on.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def gradient_bytes(model: torch.nn.Module) -> int:
    """Bytes of every distinct gradient tensor the model holds (each storage counted once)."""
    from torch.distributed.fsdp import FSDPModule

    grads = [p.grad for p in model.parameters()]
    for m in model.modules():
        if isinstance(m, FSDPModule):
            group = m._get_fsdp_state()._fsdp_param_group
            for fp in group.fsdp_params if group is not None else ():
                unsharded = getattr(fp, "_unsharded_param", None)
                grads += [fp.sharded_param.grad, fp.unsharded_accumulated_grad]
                grads.append(unsharded.grad if unsharded is not None else None)
    seen: dict[int, int] = {}
    for g in grads:
        if g is not None:
            t = _local(g)
            seen[t.data_ptr()] = t.numel() * t.element_size()
    return sum(seen.values())


def shard_and_layer_bytes(model: torch.nn.Module) -> tuple[int, int, int]:
    """fp32 bytes of this rank's shard of the trainable parameters, of all of them, and of the
    largest FSDP group (one layer's gradients, unsharded), read from FSDP2's own records (the
    module's parameters may be unsharded at the time)."""
    from torch.distributed.fsdp import FSDPModule

    shard = full = layer = 0
    for m in model.modules():
        if isinstance(m, FSDPModule):
            group = m._get_fsdp_state()._fsdp_param_group
            params = [fp.sharded_param for fp in group.fsdp_params] if group is not None else []
            params = [p for p in params if p.requires_grad]
            shard += sum(_local(p).numel() * 4 for p in params)
            full += sum(p.numel() * 4 for p in params)
            layer = max(layer, sum(p.numel() * 4 for p in params))
    return shard, full, layer


def main(mode: str, config: str, out_dir: str) -> None:
    from videor1.config import load_config

    cfg = load_config(config, [])
    rank = int(os.environ.get("RANK", "0"))
    record: dict = {}
    if mode == "sft-grad-bytes":
        import videor1.train.sft as sft

        original = sft.target_token_loss
        record["grad_bytes"] = []

        def probed(model, inputs):
            if "shard_bytes" not in record:
                record["shard_bytes"], record["full_bytes"], record["layer_bytes"] = shard_and_layer_bytes(
                    model
                )
            record["grad_bytes"].append(gradient_bytes(model))
            return original(model, inputs)

        sft.target_token_loss = probed
        sft.train(cfg)
    elif mode == "rl-one-rank-degenerate":
        import videor1.train.rl as rl

        score, collect = rl.score, rl.collect
        record["rolled_out"], record["trained"] = [], []

        def spread(rl_cfg, rollouts):
            scored = score(rl_cfg, rollouts)
            if rank == 0:
                return scored
            rewards = tuple(replace(r, total=[1.0] + [0.0] * (len(r.total) - 1)) for r in scored.rewards)
            return replace(scored, rewards=rewards)

        def counted(state, step, generators):
            collected = collect(state, step, generators)
            record["rolled_out"].append(len(collected.rolled_out))
            record["trained"].append([len(b.questions) for b in collected.batches])
            return collected

        rl.score, rl.collect = spread, counted
        rl.train(cfg)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    Path(out_dir, f"rank-{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:])
    gc.collect()  # as videor1.cli does: a model collected at interpreter shutdown can abort gloo
