"""Training recipes (``sft.py``, ``rl.py``) and what they share.

Recipes read top to bottom: ``setup`` (processes, data, model, optimiser, resume) -> ``train`` (the
step loop) -> ``save`` -> ``cleanup``. They share ``distributed`` (process groups, DDP / FSDP2
wrapping, full weights for generation, autocast), ``optim`` (AdamW, exact step counts, schedules,
clipping), ``checkpoint`` (atomic checkpoints with full resume state, fp32 masters, plain HF model
directories), ``runlog`` (config.yaml + metrics.jsonl), ``guards`` (non-finite losses, gradients and
weights) and ``data`` (dataset bootstrap, the resumable distributed sampler, media loading).

The SFT and RL recipes call them in the same order::

    dist = init_distributed()                                   # torchrun env -> gloo (CPU) / nccl (GPU)
    model, processor = load_model_and_processor(model_cfg, for_training=True)  # fp32 masters, freeze, LoRA
    total = total_steps(cfg.train, num_samples, dist.world_size)  # steps or epochs -> exact steps
    model = wrap_model(model, dist, cfg.train)                  # DDP or FSDP2 (single process: unchanged)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train, total)
    state = load_checkpoint(path, model=..., optimizer=..., scheduler=..., dist=dist)  # resume
    logger = RunLogger(cfg, dist, resume_step=...)              # config.yaml + metrics.jsonl (rank 0)
    ... train; logger.log(all_reduce_metrics(...)) ...
    save_checkpoint(cfg, step, model=..., processor=..., optimizer=..., scheduler=..., dist=dist,
                    train_state={...})
    cleanup_distributed()

Submodules are imported directly (this file stays import-light).
"""
