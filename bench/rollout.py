"""Rollout benchmark: decoded tokens per second of the transformers engine (``videor1.rollout.hf``).

A random-init tiny Qwen2.5-VL (2 layers, hidden 64, vocab 300; built in memory) samples ``G``
completions for each of ``P`` left-padded video prompts (``HFRolloutEngine.generate``: one prefill
per prompt, a shared KV cache, temperature 1). A handful of token ids count as EOS, so rows finish
at different steps and the loop's row-dropping path runs as in RL rollouts. The number reported is
generated tokens / wall seconds of ``generate`` (prefill included), median over ``--repeats``.

``--against FILE`` also times another version of the engine module (e.g. ``git show
main:src/videor1/rollout/hf.py > /tmp/hf_main.py``) in the same process, alternating runs, with the
same seeds, and checks that both produce the same completions. On CPU there is no device to wait
for, so this measures the decode loop's host-side cost only; on a GPU each device->host sync in the
loop also stalls the device (the engine does one per decoded token).

    OMP_NUM_THREADS=1 .venv/bin/python bench/rollout.py --against /tmp/hf_main.py
    .venv/bin/python bench/rollout.py --toy

The last line is one JSON object: ``tokens_per_s`` (and ``against_tokens_per_s``, ``speedup``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path
from types import ModuleType

import torch

from videor1.config import SamplingConfig
from videor1.models.tiny import bare_qwen2_5_vl

VIDEO, IMAGE, VSTART, VEND, PAD = 291, 290, 292, 293, 0
EOS_IDS = [2, 11, 47, 101, 150, 199, 233, 271]


def tiny_model() -> torch.nn.Module:
    return bare_qwen2_5_vl(eos_token_id=EOS_IDS[0])


def video_prompts(num_prompts: int, frames: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    t, h, w = frames // 2, 4, 4
    rows = []
    for i in range(num_prompts):
        text = torch.randint(3, 280, (6 + 3 * i,), generator=g).tolist()
        rows.append([*text[:3], VSTART, *([VIDEO] * (t * h * w // 4)), VEND, *text[3:]])
    width = max(len(r) for r in rows)
    input_ids = torch.full((num_prompts, width), PAD)
    attention_mask = torch.zeros(num_prompts, width, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row)
        attention_mask[i, width - len(row) :] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "pixel_values_videos": torch.randn(num_prompts * t * h * w, 3 * 2 * 14 * 14, generator=g),
        "video_grid_thw": torch.tensor([[t, h, w]] * num_prompts),
        "second_per_grid_ts": torch.tensor([1.0] * num_prompts),
    }


def load_engine_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("videor1_rollout_hf_against", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_once(module: ModuleType, model, batch, g: int, sampling: SamplingConfig, seed: int):
    engine = module.HFRolloutEngine(model, eos_token_ids=EOS_IDS, pad_token_id=PAD)
    t0 = time.perf_counter()
    out = engine.generate(batch, g, sampling, generator=torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - t0
    completions = [(c.token_ids, c.logprobs, c.finished) for group in out.completions for c in group]
    return out.generated_tokens, seconds, completions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--generations", type=int, default=8, help="G completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another version of rollout/hf.py to time alongside")
    parser.add_argument(
        "--toy", action="store_true", help="tiny sizes for the test suite; numbers meaningless"
    )
    args = parser.parse_args()
    if args.toy:
        args.prompts, args.generations, args.max_new_tokens, args.repeats = 1, 2, 4, 1

    import videor1.rollout.hf as ours

    model = tiny_model()
    batch = video_prompts(args.prompts)
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens)
    sides = {"ours": ours}
    if args.against is not None:
        sides["against"] = load_engine_module(args.against)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    tokens = 0
    with torch.no_grad():
        run_once(ours, model, batch, args.generations, sampling, seed=0)  # warm-up
        for r in range(args.repeats):
            outputs = {}
            for name, module in sides.items():
                n, seconds, completions = run_once(module, model, batch, args.generations, sampling, seed=r)
                rates[name].append(n / seconds)
                outputs[name] = completions
                tokens = n
            if "against" in outputs and outputs["against"] != outputs["ours"]:
                raise SystemExit(f"repeat {r}: the two engine versions produced different completions")
    result = {
        "tokens_per_s": round(statistics.median(rates["ours"]), 1),
        "generated_tokens": tokens,
        "rows": args.prompts * args.generations,
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "device": "cpu",
    }
    if args.against is not None:
        result["against"] = str(args.against)
        result["against_tokens_per_s"] = round(statistics.median(rates["against"]), 1)
        result["speedup"] = round(result["tokens_per_s"] / result["against_tokens_per_s"], 3)
        print(f"ours {result['tokens_per_s']} tok/s, against {result['against_tokens_per_s']} tok/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
