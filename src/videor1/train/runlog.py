"""Run logs: rank 0 writes ``config.yaml`` and one ``metrics.jsonl`` line per logged step (TensorBoard / W&B
optional), plus one plain log line per logged step when no progress bar is drawn (a cluster job's log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videor1.config import Config, ConfigError, save_config
from videor1.train.distributed import Dist
from videor1.utils.logging import StepLog
from videor1.utils.rundir import MetricsWriter

# Logging
# --------------------------------------------------------------------------------------------------


class RunLogger:
    """Rank 0 writes ``config.yaml`` and one ``metrics.jsonl`` line per call; optional TensorBoard / W&B.

    On resume, lines after the resumed step are dropped first so the file never repeats a step.
    Other ranks hold a disabled logger (``log`` is a no-op there), so recipes call it unconditionally.
    ``recipe`` / ``total_steps`` name the plain step lines (``sft step 12/400  loss 0.61 ...``);
    :meth:`due` says whether a step is logged (every ``train.log_every`` steps and the run's last).
    """

    def __init__(
        self, cfg: Config, dist: Dist, *, resume_step: int = 0, recipe: str = "", total_steps: int = 0
    ) -> None:
        self.enabled = dist.is_main
        self.every = cfg.train.log_every
        self._line = StepLog(recipe, total_steps, resume_step) if recipe and dist.is_main else None
        out = Path(cfg.train.output_dir)
        self.metrics = MetricsWriter(out / "metrics.jsonl", enabled=self.enabled)
        self._tb = None
        self._wandb = None
        if not self.enabled:
            return
        save_config(cfg, out / "config.yaml")
        self.metrics.truncate_after_step(resume_step)
        if "tensorboard" in cfg.train.report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError(
                    "train.report_to has tensorboard but it is not installed: pip install tensorboard"
                ) from e
            self._tb = SummaryWriter(log_dir=str(out / "tensorboard"))
        if "wandb" in cfg.train.report_to:
            try:
                import wandb
            except ImportError as e:
                raise ConfigError(
                    "train.report_to has wandb but it is not installed: pip install wandb"
                ) from e
            from videor1.config import to_dict

            self._wandb = wandb.init(dir=str(out), config=to_dict(cfg), resume="allow")

    def due(self, step: int, end: int) -> bool:
        """Whether optimiser step ``step`` (1-based) is logged in a run that stops after ``end``."""
        return step % self.every == 0 or step == end

    def log(self, record: dict[str, Any], **line: float) -> None:
        """Write ``record``; ``line`` values also go to the plain step line (when no bar is drawn)."""
        if not self.enabled:
            return
        self.metrics.write(record)
        if self._line is not None and line:
            self._line(int(record.get("step", 0)), **line)
        step = int(record.get("step", 0))
        scalars = {k: v for k, v in record.items() if isinstance(v, int | float) and k != "step"}
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
