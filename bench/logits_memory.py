"""Update-phase memory of the LM head: full ``[R, C, V]`` logits vs the chunked head, on CPU.

One policy forward + GRPO loss (k3 KL to fixed reference log-probs, ``token-mean``) + backward + the
entropy metric, as ``videor1.train.rl_update.update`` runs per micro-batch, over R rows of a prompt
and a long completion, on a text-only Qwen2.5-VL with Qwen's vocabulary (V = 151,936) and a small
body, so the head dominates as it does at 7B with long completions:

- ``full`` (before): ``model(..., logits_to_keep=C + 1).logits`` then ``token_logprobs`` and
  ``token_entropy`` over the ``[R, C, V]`` logits (the update's path before the chunked head);
- ``chunked`` (after): ``videor1.train.head.completion_logprobs`` (``head_token_logprobs``, chunks of
  ``--chunk`` tokens, each checkpointed; default 256, so the chunk is 1/8 of the R x C = 2,048 tokens as
  the default ``HEAD_CHUNK_TOKENS`` = 1,024 is of a 7B micro-batch of 8 rows x 1,024 tokens).

Each variant runs in a fresh process with ``MALLOC_MMAP_THRESHOLD_=131072`` (glibc then returns every
freed block of 128 KiB or more to the system, so the resident set follows the live tensors); the
peak is the kernel's resident high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``)
during the update, minus the resident set just before it. The log-probs of both variants are
compared (max |diff|). Last line: one JSON object with both peaks in MiB and their ratio.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python bench/logits_memory.py            # R 2, C 1024
    .venv/bin/python bench/logits_memory.py --toy                          # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _model(args: argparse.Namespace):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    head_dim = args.hidden // 4
    cfg = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": args.vocab,
            "hidden_size": args.hidden,
            "intermediate_size": 2 * args.hidden,
            "num_hidden_layers": args.layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [head_dim // 8, head_dim // 8 * 3 // 2, head_dim // 8 * 3 // 2],
            },
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": args.hidden,
        },
    )
    return Qwen2_5_VLForConditionalGeneration(cfg).train()


def run_variant(args: argparse.Namespace) -> dict:
    import torch

    from videor1.algorithms.losses import policy_loss, token_entropy, token_logprobs
    from videor1.train.head import completion_logprobs

    model = _model(args)
    g = torch.Generator().manual_seed(1)
    rows, width = args.rows, args.completion
    ids = torch.randint(0, args.vocab, (rows, args.prompt + width), generator=g)  # [R, P + C]
    targets = ids[:, args.prompt :]  # [R, C]
    mask = torch.ones(rows, width, dtype=torch.long)
    ref = torch.randn(rows, width, generator=g) - 12.0  # [R, C] fixed reference log-probs
    advantages = torch.linspace(-1, 1, rows)
    base_kib = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    start = time.perf_counter()
    if args.variant == "full":
        logits = model(input_ids=ids, use_cache=False, logits_to_keep=width + 1).logits[:, :-1]  # [R, C, V]
        logp = token_logprobs(logits, targets)
    else:
        logp, entropy = completion_logprobs(
            model, targets, 1.0, chunk=args.chunk, input_ids=ids, use_cache=False
        )
    loss, _ = policy_loss(logp, logp.detach(), advantages, mask, ref_logp=ref, agg="token-mean")
    loss.backward()
    if args.variant == "full":
        with torch.no_grad():
            entropy = token_entropy(logits.detach())
    entropy_mean = float(entropy.mean())
    seconds = time.perf_counter() - start
    peak_kib = _status_kib("VmHWM")
    return {
        "variant": args.variant,
        "peak_mib": round((peak_kib - base_kib) / 1024, 1),
        "seconds": round(seconds, 2),
        "logp": logp.detach().flatten()[:: max(1, logp.numel() // 64)].tolist(),
        "entropy_mean": entropy_mean,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--toy", action="store_true", help="small sizes, seconds")
    p.add_argument("--rows", type=int, default=2)
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--completion", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument(
        "--chunk",
        type=int,
        default=256,
        help="tokens per head chunk; 256 of R x C = 2,048 is the 1-in-8 of the default HEAD_CHUNK_TOKENS "
        "(1,024) over 8 rows x 1,024 tokens at 7B",
    )
    p.add_argument("--variant", choices=["full", "chunked"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.toy:
        args.rows, args.prompt, args.completion, args.vocab, args.hidden = 2, 8, 64, 4096, 64
        args.chunk = 32
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    results = {}
    for variant in ("full", "chunked"):
        cmd = [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--rows",
            str(args.rows),
            "--prompt",
            str(args.prompt),
        ]
        cmd += [
            "--completion",
            str(args.completion),
            "--vocab",
            str(args.vocab),
            "--hidden",
            str(args.hidden),
        ]
        cmd += ["--layers", str(args.layers), "--chunk", str(args.chunk)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(f"{variant} variant failed:\n{out.stderr[-3000:]}")
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    full, chunked = results["full"], results["chunked"]
    diff = max(abs(a - b) for a, b in zip(full["logp"], chunked["logp"]))
    for r in (full, chunked):
        print(
            f"{r['variant']:8s} peak +{r['peak_mib']:9.1f} MiB  {r['seconds']:6.2f} s  entropy {r['entropy_mean']:.4f}"
        )
    summary = {
        "rows": args.rows,
        "prompt": args.prompt,
        "completion": args.completion,
        "vocab": args.vocab,
        "chunk": args.chunk,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "full_peak_mib": full["peak_mib"],
        "chunked_peak_mib": chunked["peak_mib"],
        "chunked_vs_full": round(chunked["peak_mib"] / full["peak_mib"], 3) if full["peak_mib"] > 0 else None,
        "full_seconds": full["seconds"],
        "chunked_seconds": chunked["seconds"],
        "logp_max_abs_diff": diff,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
