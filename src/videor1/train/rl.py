"""GRPO / T-GRPO recipe (``videor1 rl``): ``setup`` → ``train`` (one :func:`rl_step` per step) → cleanup.

One step, as the code runs it (``rl_rollout``, ``rl_advantages``, ``rl_update`` hold the phases;
``rl_types`` the values they hand each other)::

    gens = step_generators(seed, step, rank, device)                 # rl_step
    engine.wake()                                                     # vLLM: weights + KV back
    for indices in sampler.step_micro_batches(step):                  # collect
        questions = load_questions(cfg, samples[indices])              # media under the budgets
        rollouts = rollout(state, questions, gens)                     # G ordered + G_s shuffled per video
        batch = advantages(cfg.rl, score(cfg.rl, rollouts))            # rewards, then T-GRPO advantages
    while rl.dynamic_sampling and any_rank(groups_wanted(batches)): roll out more   # refill rounds
    batches = [pack(run, batches, picks) for picks in informative_groups(...)]  # per_device each
    engine.sleep()                                                    # vLLM: frees weights + KV
    seqs = [sequences(state, b) for b in batches]                      # prompt + completion rows
    caches = logprob_caches(state, batches, seqs)                      # reference (and old) log-probs
    stats = [update(state, batches, seqs, caches) for _ in range(rl.num_iterations)]
    engine.sync_weights(model)                                         # vLLM: wake, load, reset caches
    log step_metrics(...) when due; save a checkpoint when due          # run_steps

The reference (Video-R1, https://arxiv.org/abs/2503.21776): one question per GPU, G = 8 rollouts on
the ordered video and G/2 = 4 on one permutation of its frames; the temporal bonus (decided and
placed in ``videor1.algorithms.temporal``, the one home of that rule and our departures from it);
total = accuracy (+ temporal) + format (+ length); std-normalised group advantages; one update per
rollout batch with the k3 KL to a frozen reference (β = 0.04), mean over each sequence's tokens then
over sequences. Departures in this recipe:

- several questions per micro-batch, images and videos mixed, with gradient accumulation;
- each question's media encoded once for the rollout, once with grad for the update, once for the
  reference (``vit_passes_per_video_question``; the reference encoded each video 18 times);
- optional ratio clipping with ``rl.num_iterations`` updates per rollout batch, Dr.GRPO advantages,
  token- / sequence-mean losses over the whole step (``videor1.algorithms.losses``) and dynamic
  sampling (``videor1.algorithms.dynamic_sampling``);
- still clips (no shuffled copy differs) and reward scorers that raise are counted in the step
  metrics and logged once per run, never fatal or hidden;
- reproducible sampling: generators seeded from (seed, step, rank), so a resumed run repeats an
  uninterrupted one.

How it runs on several processes and GPUs (FSDP2, vLLM, precision, fps): ``docs/systems.md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videor1.algorithms.advantages import zero_variance_groups
from videor1.config import Config
from videor1.models.vision import VisionCounter
from videor1.rollout.base import RolloutEngine
from videor1.rollout.hf import HFRolloutEngine
from videor1.train import guards
from videor1.train.distributed import Dist, all_reduce_metrics, any_rank, peak_memory_mb, wrap_model
from videor1.train.rl_advantages import advantages, groups_wanted, informative_groups, pack, score
from videor1.train.rl_rollout import join_rollout, load_questions, rollout
from videor1.train.rl_types import Collected, RLState, StepGenerators, TrainBatch, UpdateStats
from videor1.train.rl_update import logprob_caches, sequences, update
from videor1.train.run import close_run, result_dir, run_steps, start_run
from videor1.utils.logging import get_logger

log = get_logger(__name__)


def setup(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> RLState:
    """The shared run setup (``videor1.train.run.start_run``), then the reference model and the engine."""
    from videor1.models.loading import load_model_and_processor
    from videor1.rewards import prepare_scorers

    cfg.validate(("data", "train", "rl"))
    rl = cfg.rl
    if rl.engine == "vllm":
        _require_vllm()  # before any data or model is touched
    run = start_run(
        cfg,
        recipe="rl",
        resume=resume,
        stop_at_step=stop_at_step,
        updates_per_step=rl.num_iterations,
        needs_base_model=rl.beta > 0,
    )
    try:
        prepare_scorers({s.problem_type for s in run.samples})  # not inside the first step
        if rl.temporal and not any(s.data_type == "video" for s in run.samples):
            log.warning(
                "rl.temporal is true but %s has no video records: this runs as plain GRPO",
                cfg.data.train_file,
            )
        ref_model = None
        if rl.beta > 0:
            ref_model, _ = load_model_and_processor(cfg.model, for_training=False, weights=run.dist.is_main)
            ref_model = wrap_model(ref_model, run.dist, cfg.train, trainable=False)
        tokenizer = run.processor.tokenizer
        eos = run.policy.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
        engine = _engine(
            cfg,
            run.dist,
            run.policy,
            run.model,
            eos_ids,
            pad,
            tokenizer,
            resumed=run.last_checkpoint is not None,
        )
        counter = VisionCounter().install(run.policy)
        if ref_model is not None:
            counter.install(ref_model)
    except BaseException:
        close_run(run)
        raise
    log.info(
        "RL: %d samples, %d steps, %d questions per step, starting at step %d",
        len(run.samples),
        run.total_steps,
        run.sampler.global_batch,
        run.start_step,
    )
    return RLState(run=run, ref_model=ref_model, engine=engine, counter=counter, pad_token_id=pad)


def train(cfg: Config, *, resume: str | None = None, stop_at_step: int | None = None) -> Path:
    """Run (or resume) RL training; returns the last checkpoint directory.

    ``resume`` and ``stop_at_step``: see :func:`videor1.train.run.start_run`.
    """
    state = setup(cfg, resume=resume, stop_at_step=stop_at_step)
    try:
        run_steps(state.run, "rl", lambda step: rl_step(state, step), shown=("reward/total", "loss"))
    finally:
        cleanup(state)
    return result_dir(state.run)


def cleanup(state: RLState) -> None:
    state.counter.remove()
    close_run(state.run)


def rl_step(state: RLState, step: int) -> dict[str, Any]:
    """One optimiser step (``step`` 0-based): rollout, score, advantages, caches, update; its metrics."""
    run, rl = state.run, state.run.cfg.rl
    state.counter.reset()
    started = time.perf_counter()
    generators = step_generators(run.cfg.train.seed, step, run.dist.rank, run.dist.device)
    state.engine.wake()  # vLLM: weights and KV cache back on the GPU (no-op for transformers)
    collected = collect(state, step, generators)
    state.engine.sleep()  # vLLM: frees its weights and KV cache for the update
    updating = time.perf_counter()
    lr = run.scheduler.get_last_lr()[0]  # the rate this step's (first) update uses
    seqs = [sequences(state, batch) for batch in collected.batches]
    caches = logprob_caches(state, collected.batches, seqs)
    stats = [update(state, collected.batches, seqs, caches) for _ in range(rl.num_iterations)]
    state.engine.sync_weights(run.model)  # vLLM: wake, load the updated policy, reset its caches
    seconds = {
        "rollout": collected.rollout_seconds,
        "score": collected.score_seconds,
        "update": time.perf_counter() - updating,
        "step": time.perf_counter() - started,
    }
    return step_metrics(state, step + 1, collected, stats, lr=lr, seconds=seconds)


def step_generators(seed: int, step: int, rank: int, device: torch.device) -> StepGenerators:
    """Generators of one rank at one step, seeded from (seed, step, rank): a resume repeats them exactly."""
    base = ((seed * 1_000_003 + step) * 1009 + rank) * 7
    return StepGenerators(
        data=torch.Generator().manual_seed(base),
        sampling=torch.Generator(device=device).manual_seed(base + 1),
    )


def collect(state: RLState, step: int, generators: StepGenerators) -> Collected:
    """Phases 1-3 for this rank's micro-batches, with dynamic sampling's refill rounds.

    The result is exactly ``gradient_accumulation_steps`` batches of ``per_device_batch_size``
    questions on every rank, so every rank runs the same sharded forwards and backwards. With dynamic
    sampling each refill round is decided for all ranks at once (``any_rank``: some rank still
    wants informative groups); a rank whose batch is full joins the round's collectives without
    rolling out (``join_rollout``). The kept groups are then packed, in arrival order, into batches
    of ``per_device_batch_size`` (a batch kept whole is not collated again).
    """
    run = state.run
    cfg = run.cfg
    seconds = {"rollout": 0.0, "score": 0.0}

    def one(indices: list[int]) -> TrainBatch:
        t0 = time.perf_counter()
        questions = load_questions(cfg, [run.samples[i] for i in indices], geometry=run.adapter.geometry)
        rollouts = rollout(state, questions, generators)
        t1 = time.perf_counter()
        batch = advantages(cfg.rl, score(cfg.rl, rollouts))
        seconds["rollout"] += t1 - t0
        seconds["score"] += time.perf_counter() - t1
        _warn_once(state, batch)
        return batch

    pool = [one(indices) for indices in run.sampler.step_micro_batches(step)]
    kept, dropped = tuple(pool), 0
    if cfg.rl.dynamic_sampling:
        target, size = sum(len(b.questions) for b in pool), cfg.train.per_device_batch_size
        for _ in range(cfg.rl.max_resample_rounds):
            wanted = groups_wanted(pool, target)
            if not any_rank(wanted, run.dist):  # one decision for all ranks: the same rounds everywhere
                break
            if wanted:
                pool.append(one(torch.randint(len(run.samples), (size,), generator=generators.data).tolist()))
            else:
                join_rollout(run)
        chosen, dropped = informative_groups(pool, target)
        picks = [(m, k) for m, keep in sorted(chosen.items()) for k in keep]
        kept = tuple(pack(run, pool, picks[i : i + size]) for i in range(0, len(picks), size))
    return Collected(kept, tuple(pool), dropped, seconds["rollout"], seconds["score"])


def _warn_once(state: RLState, batch: TrainBatch) -> None:
    """Log the first still clip and the first scorer error of the run (both are counted every step)."""
    found = {
        "still clip": [
            f"{why}; it gets no shuffled group and no temporal decision" for why in batch.rollouts.still_clips
        ],
        "scorer": [
            f"{q.sample.source}: the reward scorer raised ({r.scorer_error}); scored 0"
            for q, r in zip(batch.questions, batch.rewards)
            if r.scorer_errors
        ],
    }
    for kind, messages in found.items():
        if messages and kind not in state.warned:
            state.warned.add(kind)
            log.warning("%s (logged once; counted in the step metrics)", messages[0])


def step_metrics(
    state: RLState,
    step: int,
    collected: Collected,
    stats: list[UpdateStats],
    *,
    lr: float,
    seconds: dict[str, float],
) -> dict[str, Any]:
    """The step's metrics over every rank: rewards, temporal decisions, update, timing and memory."""
    dist = state.run.dist
    totals = all_reduce_metrics(_rank_sums(collected, stats, vit_videos=state.counter.videos), dist, op="sum")

    def ratio(a: str, b: str) -> float:
        return totals[a] / totals[b] if totals[b] else float("nan")

    record: dict[str, Any] = {"step": step}
    for name in ("accuracy", "format", "length", "temporal", "total"):
        record[f"reward/{name}"] = ratio(f"sum_{name}", "n_rollouts")
    updates = max(len(stats), 1)
    record.update(
        {
            "reward/scorer_error_rate": ratio("scorer_errors", "scored"),
            "temporal/p": ratio("sum_p", "n_decided"),
            "temporal/p_shuffled": ratio("sum_p_shuffled", "n_decided"),
            "temporal/fire_rate": ratio("n_fired", "n_decided"),
            "temporal/advantage_shift": ratio("sum_shift", "n_decided"),
            "temporal/still_clips": totals["still_clips"],
            "accuracy/ordered": ratio("sum_accuracy", "n_rollouts"),
            "accuracy/shuffled": ratio("sum_acc_shuffled", "n_shuffled"),
            "completion_length": ratio("sum_tokens", "n_rollouts"),
            "parse_failure_rate": ratio("sum_parse_failures", "n_rollouts"),
            "zero_variance_rate": ratio("n_zero_variance", "n_groups"),
            "dynamic_sampling/dropped": totals["n_dropped"],
            "vit_passes_per_video_question": ratio("vit_videos", "n_video_questions"),
            "loss": totals["loss"] / updates,
            "kl": totals["kl"] / max(totals["update_tokens"], 1.0),
            "clip_fraction": totals["clip"] / max(totals["update_tokens"], 1.0),
            "entropy": totals["entropy"] / max(totals["update_tokens"], 1.0),
            "grad_norm": sum(s.grad_norm for s in stats) / updates,
            "nonfinite_skipped": float(guards.skipped(state.run.optimizer)),
        }
    )
    rolled_out = [b.rollouts for b in collected.rolled_out]
    local = {f"time/{k}": v for k, v in seconds.items()}
    local["rollout_tokens_per_s"] = sum(r.tokens for r in rolled_out) / max(
        sum(r.engine_seconds for r in rolled_out), 1e-9
    )
    record.update(all_reduce_metrics(local, dist, op="mean"))
    record["lr"] = lr
    record["peak_memory_mb"] = peak_memory_mb(dist.device)
    return record


def _rank_sums(collected: Collected, stats: list[UpdateStats], *, vit_videos: int) -> dict[str, float]:
    """This rank's sums and counts (every rank produces the same keys; reduced by sum)."""
    sums: dict[str, float] = dict.fromkeys(
        [f"sum_{name}" for name in ("accuracy", "format", "length", "temporal", "total")]
        + ["n_rollouts", "n_decided", "n_fired", "n_shuffled", "sum_p", "sum_p_shuffled", "sum_acc_shuffled"]
        + ["sum_shift", "sum_tokens", "sum_parse_failures", "n_groups", "n_zero_variance", "still_clips"]
        + ["scorer_errors", "scored", "n_video_questions"],
        0.0,
    )
    for batch in collected.batches:  # what the update trained on
        adv = batch.advantages
        for k, (r, group, decision) in enumerate(zip(batch.rewards, batch.rollouts.ordered, adv.decisions)):
            sums["n_rollouts"] += len(group)
            sums["sum_tokens"] += sum(len(c.token_ids) for c in group)
            sums["sum_parse_failures"] += r.parse_failures
            for name in ("accuracy", "format", "length", "total"):
                sums[f"sum_{name}"] += sum(getattr(r, name))
            sums["sum_temporal"] += float(adv.bonuses[k].sum())
            if decision.decided:
                sums["n_decided"] += 1
                sums["n_fired"] += float(decision.fired)
                sums["sum_p"] += decision.p
                sums["sum_p_shuffled"] += decision.p_shuffled
                sums["n_shuffled"] += decision.num_shuffled
                sums["sum_acc_shuffled"] += decision.p_shuffled * decision.num_shuffled
                sums["sum_shift"] += float(adv.shift[k])
    for batch in collected.rolled_out:  # everything rolled out, refills and dropped groups included
        totals = torch.tensor([r.total for r in batch.rewards])  # [Q, G]
        sums["n_groups"] += len(batch.questions)
        sums["n_zero_variance"] += int(zero_variance_groups(totals).sum())
        sums["still_clips"] += len(batch.rollouts.still_clips)
        sums["scorer_errors"] += sum(r.scorer_errors for r in batch.rewards)
        sums["scored"] += sum(len(r.accuracy) + len(r.shuffled_accuracy) for r in batch.rewards)
        sums["n_video_questions"] += sum(q.is_video for q in batch.questions)
    sums.update(
        n_dropped=float(collected.dropped),
        vit_videos=float(vit_videos),
        loss=sum(s.loss for s in stats),
        kl=sum(s.kl_sum for s in stats),
        clip=sum(s.clip_sum for s in stats),
        entropy=sum(s.entropy_sum for s in stats),
        update_tokens=float(sum(s.tokens for s in stats)),
    )
    return sums


def _require_vllm() -> None:
    import importlib.util

    from videor1.config import ConfigError

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            "rl.engine=vllm needs vLLM, which is not installed: pip install -e '.[gpu]' (or rl.engine=transformers)"
        )
    if not torch.cuda.is_available():
        raise ConfigError("rl.engine=vllm needs a CUDA GPU; on CPU use rl.engine=transformers")


def _engine(
    cfg: Config,
    dist: Dist,
    policy: nn.Module,
    model: nn.Module,
    eos_ids: list[int],
    pad: int,
    tokenizer: Any,
    *,
    resumed: bool,
) -> RolloutEngine:
    """The configured rollout engine: the policy itself (transformers) or a colocated vLLM engine."""
    rl = cfg.rl
    if rl.engine != "vllm":
        return HFRolloutEngine(policy, eos_token_ids=eos_ids, pad_token_id=pad, tokenizer=tokenizer)
    from videor1.models.loading import ensure_model, storage_dtype
    from videor1.rollout.vllm import VLLMRolloutEngine

    engine = VLLMRolloutEngine(
        str(ensure_model(cfg.model)),
        eos_token_ids=eos_ids,
        suppress_token_ids=HFRolloutEngine.media_token_ids(policy),
        gpu_memory_utilization=rl.vllm_gpu_memory_utilization,
        max_model_len=rl.max_prompt_length + rl.sampling.max_new_tokens,
        dtype=storage_dtype(cfg.model),
        seed=cfg.train.seed + dist.rank,
    )
    if resumed:
        engine.sync_weights(model)  # it loaded model.path; the policy has moved on
    return engine
