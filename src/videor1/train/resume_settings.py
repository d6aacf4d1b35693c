"""What a resume may change: the run's settings compared with the checkpoint's before anything loads.

A resumed run must compute what the interrupted one would have. :func:`check_resume_settings`
compares the settings of the recipe's config sections and the training file's content hash with the
checkpoint's ``config.yaml`` and ``trainer_state.json`` and refuses every difference that changes the
run, unless the user names it in ``train.allow_changed`` (then it is logged and recorded in
``<output_dir>/changed_on_resume.jsonl``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from videor1.config import Config
from videor1.config_loader import flatten
from videor1.train.checkpoint import DATA_FINGERPRINT, CheckpointError, read_trainer_state
from videor1.train.data import data_fingerprint
from videor1.train.distributed import Dist
from videor1.utils.logging import get_logger

log = get_logger(__name__)

CHANGES_FILE = "changed_on_resume.jsonl"

RESUME_SECTIONS = {"sft": ("model", "data", "train", "sft"), "rl": ("model", "data", "train", "rl")}
"""The config sections that shape each recipe's run; the others (eval, annotate, the other recipe) are never compared."""

NOT_A_DIFFERENCE = frozenset(
    {
        "train.output_dir",  # a moved run directory is the same run
        "train.log_every",
        "train.save_every",
        "train.keep_last",
        "train.collective_timeout_s",
        "train.report_to",
        "train.allow_changed",
        "data.eval_file",
        "model.gradient_checkpointing",  # memory only: the same gradients
        "rl.vllm_gpu_memory_utilization",  # memory only
    }
)
"""Keys that cannot change what a run computes: a resume may change them without a word."""

FIXED_BY_CHECKPOINT = {
    "train.lr": "the peak LR lives in scheduler.pt and optimizer/param_groups.json",
    "train.weight_decay": "it lives in optimizer/param_groups.json",
    "train.adam_betas": "they live in optimizer/param_groups.json",
}
"""Keys whose old value the restored optimiser state would keep: allowing a change would be a lie."""

_PATH_KEYS = ("model.path", "data.train_file", "data.media_root")


def _same(key: str, old: Any, new: Any) -> bool:
    if old == new:
        return True
    if key in _PATH_KEYS and old and new:
        return Path(old).resolve() == Path(new).resolve()  # ./data vs /abs/data
    return False


def resume_differences(cfg: Config, checkpoint: Path, recipe: str) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (saved, now)}`` for every setting of ``recipe``'s sections that differs from the
    checkpoint's ``config.yaml`` (paths compared resolved), plus the training file's content
    (``data.train_file (content)``), leaving out :data:`NOT_A_DIFFERENCE`."""
    from videor1.config import ConfigError, from_dict, load_raw, to_dict

    try:
        saved = from_dict(Config, load_raw(checkpoint / "config.yaml"))
    except ConfigError as e:
        raise CheckpointError(f"{checkpoint}: its config.yaml does not load: {e}") from None
    old, new = flatten(to_dict(saved)), flatten(to_dict(cfg))
    sections = RESUME_SECTIONS[recipe]
    changed = {
        key: (old[key], new[key])
        for key in new
        if key.split(".", 1)[0] in sections
        and key not in NOT_A_DIFFERENCE
        and not _same(key, old[key], new[key])
    }
    saved_hash = read_trainer_state(checkpoint).get(DATA_FINGERPRINT)
    if saved_hash is None:
        log.warning(
            "%s records no fingerprint of its training file: its content cannot be compared", checkpoint
        )
    elif (now := data_fingerprint(cfg.data.train_file)) != saved_hash:
        changed["data.train_file (content)"] = (f"sha256 {saved_hash[:12]}", f"sha256 {now[:12]}")
    else:
        changed.pop("data.train_file", None)  # the same records under another path
    return changed


def check_resume_settings(cfg: Config, checkpoint: Path | None, dist: Dist, *, recipe: str) -> None:
    """Refuse to resume ``checkpoint`` with settings that change the run, unless ``train.allow_changed``
    names them (a key, or a section such as ``rl.sampling``); allowed changes are logged and rank 0
    appends them to ``<output_dir>/changed_on_resume.jsonl``. Every rank calls it (all raise alike).

    Compared: :data:`RESUME_SECTIONS` of ``recipe`` (model, data with the training file's content
    hash, optimiser and schedule, batch shape, seeds, media budgets, G and sampling ...) except
    :data:`NOT_A_DIFFERENCE`. :data:`FIXED_BY_CHECKPOINT` keys cannot be allowed.
    """
    from videor1.config import ConfigError, explain

    if checkpoint is None:
        return
    allowed = cfg.train.allow_changed
    known = {row[0] for row in explain(Config)}
    for entry in allowed:
        if entry not in known and not any(k.startswith(entry + ".") for k in known):
            raise ConfigError(f"train.allow_changed: {entry!r} is not a config key or section")
    changed = resume_differences(cfg, checkpoint, recipe)

    def is_allowed(key: str) -> bool:
        key = key.removesuffix(" (content)")
        return any(key == a or key.startswith(a + ".") for a in allowed)

    def lines(keys: list[str]) -> str:
        return "".join(f"\n  {k}: {changed[k][0]!r} -> {changed[k][1]!r}" for k in keys)

    fixed = [k for k in changed if k in FIXED_BY_CHECKPOINT]
    if fixed:
        raise CheckpointError(
            f"{checkpoint}: cannot resume with a different {', '.join(fixed)}"
            + lines(fixed)
            + "\n"
            + "; ".join(f"{k}: {FIXED_BY_CHECKPOINT[k]}" for k in fixed)
            + " and the resumed run would keep the old value. Keep it, or start a new run from these weights"
        )
    refused = [k for k in changed if not is_allowed(k)]
    if refused:
        raise CheckpointError(
            f"{checkpoint}: these settings differ from the run being resumed:"
            + lines(refused)
            + "\nrestore them, start a new train.output_dir, or accept them by name with "
            f"--allow-changed {','.join(k.removesuffix(' (content)') for k in refused)} (train.allow_changed)"
        )
    if changed:
        log.warning(
            "resuming %s with changed settings (train.allow_changed):%s", checkpoint, lines(list(changed))
        )
        if dist.is_main:
            record = {"checkpoint": str(checkpoint), "time": time.time(), "changed": changed}
            out = Path(cfg.train.output_dir) / CHANGES_FILE
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
