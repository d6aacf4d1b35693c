"""RL step benchmark: our GRPO and T-GRPO steps against TRL 1.16 ``GRPOTrainer``, one process, one run.

Three measurements on the same random-init tiny Qwen2.5-VL (``videor1.models.tiny``), the same
procedural data (``videor1.data.synth``), the same G, completion budget and sampling
(temperature 1.0, top-p 1.0), KL beta 0.04 (so both sides run a reference model), fp32:

(a) our GRPO step on image prompts, and on the same video prompts for (b);
(b) our T-GRPO step on video prompts (G ordered + G/2 shuffled rollouts, ``shuffle_unit=temporal_patch``);
(c) TRL's ``GRPOTrainer`` step on the same image prompts (``per_device_train_batch_size = Q x G``,
    ``num_generations = G``: one step = Q questions x G completions, like ours).

A step is rollout + scoring + advantages + one optimiser update. The first step of every side is a
warm-up and is not timed; the median of the next ``--steps`` is reported. Peak memory is the
largest growth of the process's resident set during that side's timed steps (CPU), or the CUDA
allocator's peak (GPU). ViT counts are media items encoded per question per step (hooked on the
vision tower): ours encodes each question's media once per phase (rollout, policy, reference); TRL
encodes every one of the G copies in generation, policy and reference forwards.

Default size: Q = 4 questions x G = 8 rollouts x 256 new tokens per step. TRL 1.16's
``GRPOTrainer`` (with transformers 5.25) crashes in its reference-model forward on this model as soon
as two image prompts of different token lengths meet in one batch (``get_rope_index``: "shape
mismatch: value tensor of shape [3, 190] cannot be broadcast to indexing result of shape [3, 186]");
ours runs any Q. So with Q >= 2 and TRL, both sides train on the image questions whose prompt text
has the most common token length (every image has the same size, hence the same visual tokens).

Last line: one JSON object with ``ours_vs_trl`` (our GRPO image step / TRL's) and ``tgrpo_vs_grpo``
(our T-GRPO video step / our GRPO video step). Targets: <= 0.3 and <= 1.2.

Setup (once). TRL lives in the bench environment only (``.venv-bench`` reuses the project's
``.venv`` through a ``.pth`` file, see ``bench/decode.py``)::

    python3 -m venv .venv-bench
    SP=$(.venv/bin/python -c "import site; print(site.getsitepackages()[0])")
    BSP=$(.venv-bench/bin/python -c "import site; print(site.getsitepackages()[0])")
    echo "import site; site.addsitedir('$SP')" > "$BSP/videor1-main-venv.pth"
    .venv-bench/bin/pip install trl==1.16.0        # adds datasets, pandas, pyarrow; torch untouched

Run::

    OMP_NUM_THREADS=2 .venv-bench/bin/python bench/rl_step.py               # Q=4, G=8, 256 tokens
    .venv-bench/bin/python bench/rl_step.py --skip-trl --questions 4 --max-new-tokens 128
    .venv/bin/python bench/rl_step.py --toy    # seconds: proves the script runs (the test suite does this)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "true")  # no progress bars


class PeakRSS:
    """Largest resident-set growth (MiB) while active, sampled every 2 ms (CPU), or CUDA peak."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakRSS:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        self.base = self._rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
            return
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def build_assets(root: Path, *, train: int) -> tuple[Path, Path, Path]:
    """Tiny model + procedural data split into an image file and a video file."""
    from videor1.config import TinyModelConfig
    from videor1.data.synth import generate_dataset
    from videor1.models.tiny import build_tiny_model

    model_dir = build_tiny_model(TinyModelConfig(family="qwen2.5-vl", tokenizer="small"), root / "model")
    data = generate_dataset(root / "synth", train=train, test=4, seed=0, size=112, frames=8, jobs=1)
    records = json.loads((data / "train.json").read_text())
    for kind in ("image", "video"):
        subset = [r for r in records if r["data_type"] == kind]
        (data / f"{kind}s.json").write_text(json.dumps(subset))
    return model_dir, data / "images.json", data / "videos.json"


def equal_length_prompts(image_file: Path, model_dir: Path, *, need: int) -> Path:
    """The image records whose prompt text has the most common token length (TRL needs them equal)."""
    from collections import Counter

    from transformers import AutoTokenizer

    from videor1.data.prompts import build_prompt
    from videor1.data.records import load_records

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    records = json.loads(image_file.read_text())
    lengths = [len(tokenizer(build_prompt(s))["input_ids"]) for s in load_records(image_file)]
    common, count = Counter(lengths).most_common(1)[0]
    if count < need:
        raise SystemExit(f"{image_file}: only {count} image prompts share a length ({common}); need {need}")
    out = image_file.with_name("images_equal.json")
    out.write_text(json.dumps([r for r, n in zip(records, lengths) if n == common]))
    print(f"{count} image prompts of {common} text tokens (TRL needs equal lengths)")
    return out


def our_config(args: argparse.Namespace, out: Path, model_dir: Path, train_file: Path, *, temporal: bool):
    from videor1.config import load_config

    return load_config(
        None,
        [
            f"model.path={model_dir}",
            f"data.train_file={train_file}",
            f"data.media_root={train_file.parent}",
            "data.media.nframes=8",
            "data.media.video_min_pixels=3136",
            "data.media.video_max_pixels=12544",
            "data.media.image_min_pixels=3136",
            "data.media.image_max_pixels=12544",
            f"train.output_dir={out}",
            f"train.max_steps={args.steps + 1}",
            f"train.per_device_batch_size={args.questions}",
            "train.lr=1e-6",
            f"rl.num_generations={args.generations}",
            f"rl.temporal={str(temporal).lower()}",
            "rl.shuffle_unit=temporal_patch",
            "rl.beta=0.04",
            "rl.sampling.temperature=1.0",
            "rl.sampling.top_p=1.0",
            f"rl.sampling.max_new_tokens={args.max_new_tokens}",
        ],
    )


def run_ours(args: argparse.Namespace, sides: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Time our steps through the recipe's own step function, ``rl.rl_step`` (no checkpointing).

    The sides' steps are interleaved (side 1 step k, side 2 step k, ...) so that load from other
    processes on a shared machine hits all of them alike.
    """
    from videor1.train import rl

    states = {label: rl.setup(cfg) for label, cfg in sides.items()}
    rec: dict[str, dict[str, list[float]]] = {
        label: {"step": [], "rollout": [], "len": [], "vit": [], "mem": []} for label in sides
    }
    try:
        for step in range(args.steps + 1):
            for label, state in states.items():
                probe = PeakRSS(state.run.dist.device)
                with probe:
                    t0 = time.perf_counter()
                    record = rl.rl_step(state, step)
                    elapsed = time.perf_counter() - t0
                if step == 0:
                    continue  # warm-up
                r = rec[label]
                r["step"].append(elapsed)
                r["rollout"].append(record["time/rollout"])
                r["mem"].append(probe.mib)
                r["len"].append(record["completion_length"])
                r["vit"].append(state.counter.items / args.questions)
    finally:
        for state in states.values():
            rl.cleanup(state)
    out = {}
    for label, r in rec.items():
        out[label] = {
            "step_s": statistics.median(r["step"]),
            "rollout_s": statistics.median(r["rollout"]),
            "peak_mem_mib": max(r["mem"]),
            "completion_len": statistics.mean(r["len"]),
            "vit_items_per_question": statistics.mean(r["vit"]),
        }
        o = out[label]
        print(
            f"{label:<28} step {o['step_s']:.3f}s (rollout {o['rollout_s']:.3f}s)  mem +{o['peak_mem_mib']:.0f} MiB  "
            f"len {o['completion_len']:.1f}  ViT encodes/question {o['vit_items_per_question']:.1f}"
        )
    return out


def run_trl(args: argparse.Namespace, model_dir: Path, image_file: Path, out: Path) -> dict[str, float]:
    from datasets import Dataset
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from videor1.config import MediaConfig
    from videor1.data.media import load_media
    from videor1.data.prompts import build_prompt
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter
    from videor1.models.vision import VisionCounter
    from videor1.rewards import accuracy_reward, format_reward

    media = MediaConfig(image_min_pixels=3136, image_max_pixels=12544)
    samples = load_records(image_file)
    geometry = get_adapter(model_dir).geometry
    rows = []
    for s in samples:
        pixels = load_media(s, image_file.parent, media, geometry=geometry).pixels  # the image ours sees
        rows.append(
            {
                "prompt": [{"role": "user", "content": build_prompt(s)}],
                "image": Image.fromarray(pixels.permute(1, 2, 0).numpy()),
                "solution": s.solution,
                "problem_type": s.problem_type,
            }
        )
    dataset = Dataset.from_list(rows)

    def reward(completions, solution, problem_type, **_: Any) -> list[float]:
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        return [
            accuracy_reward(t, sol, pt) + format_reward(t)
            for t, sol, pt in zip(texts, solution, problem_type)
        ]

    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    counter = VisionCounter().install(model)
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    suppress = [getattr(model.config, n) for n in names]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.vit: list[float] = []
            self.mem = 0.0

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            counter.reset()
            self.probe = PeakRSS(device).__enter__()
            self.t0 = time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            elapsed = time.perf_counter() - self.t0
            self.probe.__exit__(None, None, None)
            self.times.append(elapsed)
            self.vit.append(counter.items / args.questions)
            if len(self.times) > 1:
                self.mem = max(self.mem, self.probe.mib)

    timer = Timer()
    config = GRPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=args.questions * args.generations,
        num_generations=args.generations,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        beta=0.04,
        learning_rate=1e-6,
        max_steps=args.steps + 1,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=device.type == "cpu",
        bf16=False,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        # like our engine: never sample media placeholder tokens (a random model otherwise emits them
        # and TRL's training forward then miscounts the image slots)
        generation_kwargs={"suppress_tokens": suppress},
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[timer],
    )
    trainer.train()
    counter.remove()
    lengths = [
        h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h
    ]
    out_stats = {
        "step_s": statistics.median(timer.times[1:]),
        "peak_mem_mib": timer.mem,
        "completion_len": statistics.mean(lengths[1:]) if len(lengths) > 1 else float("nan"),
        "vit_items_per_question": statistics.mean(timer.vit[1:]),
    }
    print(
        f"{'(c) TRL GRPO, images':<28} step {out_stats['step_s']:.3f}s  mem +{out_stats['peak_mem_mib']:.0f} MiB  "
        f"len {out_stats['completion_len']:.1f}  ViT encodes/question {out_stats['vit_items_per_question']:.1f}"
    )
    return out_stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions",
        type=int,
        default=4,
        help="questions per step (Q); with TRL and Q >= 2 only equal-length image prompts are used "
        "(TRL 1.16 fails on Qwen2.5-VL image batches whose prompts differ in length, module docstring)",
    )
    parser.add_argument("--generations", type=int, default=8, help="rollouts per question (G)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per side (after one warm-up)")
    parser.add_argument("--skip-trl", action="store_true", help="only our steps (no TRL installed)")
    parser.add_argument(
        "--toy",
        action="store_true",
        help="smoke run: Q=1, G=2, 4 new tokens, 1 timed step, no TRL (the test suite's)",
    )
    args = parser.parse_args()
    if args.toy:
        args.questions, args.generations, args.max_new_tokens, args.steps, args.skip_trl = 1, 2, 4, 1, True
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        root = Path(tmp)
        equal_prompts = args.questions > 1 and not args.skip_trl
        train = max(48, (48 if equal_prompts else 12) * args.questions * (args.steps + 1))
        model_dir, images, videos = build_assets(root, train=train)
        if equal_prompts:
            images = equal_length_prompts(images, model_dir, need=args.questions * (args.steps + 1))
        print(
            f"tiny Qwen2.5-VL, Q={args.questions} questions x G={args.generations}, {args.max_new_tokens} new tokens, "
            f"{args.steps} timed steps, {torch.get_num_threads()} threads, "
            f"{'cuda' if torch.cuda.is_available() else 'cpu'}"
        )
        ours = run_ours(
            args,
            {
                "(a) ours GRPO, images": our_config(args, root / "a_img", model_dir, images, temporal=False),
                "(a) ours GRPO, videos": our_config(args, root / "a_vid", model_dir, videos, temporal=False),
                "(b) ours T-GRPO, videos": our_config(args, root / "b_vid", model_dir, videos, temporal=True),
            },
        )
        a_img, a_vid, b_vid = ours.values()
        result: dict[str, Any] = {
            "ours_grpo_image_step_s": a_img["step_s"],
            "ours_grpo_video_step_s": a_vid["step_s"],
            "ours_tgrpo_video_step_s": b_vid["step_s"],
            "tgrpo_vs_grpo": b_vid["step_s"] / a_vid["step_s"],
            "ours_vit_per_question": {
                "grpo_image": a_img["vit_items_per_question"],
                "tgrpo_video": b_vid["vit_items_per_question"],
            },
            "ours_peak_mem_mib": a_img["peak_mem_mib"],
            "questions": args.questions,
            "generations": args.generations,
            "max_new_tokens": args.max_new_tokens,
        }
        if not args.skip_trl:
            c = run_trl(args, model_dir, images, root / "trl")
            result.update(
                trl_step_s=c["step_s"],
                ours_vs_trl=a_img["step_s"] / c["step_s"],
                trl_vit_per_question=c["vit_items_per_question"],
                trl_peak_mem_mib=c["peak_mem_mib"],
                trl_completion_len=c["completion_len"],
                ours_completion_len=a_img["completion_len"],
            )
            print(f"ours / TRL (image GRPO step): {result['ours_vs_trl']:.3f}   (target <= 0.3)")
        print(f"T-GRPO / GRPO (video step):   {result['tgrpo_vs_grpo']:.3f}   (target <= 1.2)")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
