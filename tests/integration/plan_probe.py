"""Under ``torchrun --nproc_per_node 2``: one warm-up RL step, then one step measured on every rank
(``videor1.utils.memory.CPUTensorPeak``); rank 0 writes the measured peaks and ``videor1 plan``'s
per-rank peak for the same config to ``argv[1]`` (JSON). Arguments after it: config overrides.

The plan's one free input, the prompt's text tokens, is read off the run: the widest prompt the
update saw minus the visual tokens the plan counts for the config's media budget.
"""

from __future__ import annotations

import gc
import json
import sys

import torch.distributed as dist

from videor1.config import load_config
from videor1.plan import architecture, memory_plan, peak, visual_tokens
from videor1.train import rl, rl_update
from videor1.utils.memory import CPUTensorPeak


def main() -> None:
    out, *overrides = sys.argv[1:]
    cfg = load_config(None, overrides)
    widths: list[int] = []
    build = rl_update.build_sequences

    def recording(prompts, *args, **kwargs):
        widths.append(int(prompts["input_ids"].shape[1]))
        return build(prompts, *args, **kwargs)

    rl_update.build_sequences = recording
    state = rl.setup(cfg)
    try:
        rl.rl_step(state, 0)
        with CPUTensorPeak() as measured:
            rl.rl_step(state, 1)
        peaks: list[int] = [0] * dist.get_world_size()
        dist.all_gather_object(peaks, measured.peak)
        bases: list[int] = [0] * dist.get_world_size()
        dist.all_gather_object(bases, measured.base)
        wheres: list[list[str]] = [[]] * dist.get_world_size()
        dist.all_gather_object(wheres, measured.where[:4])
        prompt = [max(widths)]
        all_prompts: list[list[int]] = [[]] * dist.get_world_size()
        dist.all_gather_object(all_prompts, prompt)
        if dist.get_rank() == 0:
            arch = architecture(cfg.model)
            text = max(p[0] for p in all_prompts) - visual_tokens(cfg, arch)
            rows = memory_plan(
                cfg, arch, world_size=dist.get_world_size(), gpu_memory_gb=80, prompt_text_tokens=text
            )
            result = {
                "measured": peaks,
                "base": bases,
                "where": wheres,
                "plan": peak(rows),
                "prompt_text_tokens": text,
                "rows": {f"{r.phase}: {r.name}": r.bytes for r in rows},
            }
            with open(out, "w") as f:
                json.dump(result, f)
    finally:
        rl.cleanup(state)


if __name__ == "__main__":
    main()
    gc.collect()  # as videor1.cli does: a model collected at interpreter shutdown can abort gloo
