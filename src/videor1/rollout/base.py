"""The rollout interface every engine implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from videor1.config import SamplingConfig
from videor1.types import Completion


@dataclass
class RolloutOutput:
    """What one ``generate`` call produced, plus counters for the step metrics."""

    completions: list[list[Completion]]  # [prompt][sample]
    generated_tokens: int  # completion tokens over all rows (EOS included)
    seconds: float  # wall time of the call
    prompt_token_ids: list[list[int]] | None = None  # [prompt] the engine's own tokenisation, when it has one


class RolloutEngine(ABC):
    """Samples ``n`` completions per prompt row of a collated batch."""

    @abstractmethod
    def generate(
        self,
        batch: Mapping[str, Any],
        n: int | Sequence[int],
        sampling: SamplingConfig,
        **kwargs: Any,
    ) -> RolloutOutput:
        """``batch`` is a collated, LEFT-padded generation batch (``videor1.data.collate.collate``).

        ``n`` is the number of samples for every row, or one count per row (T-GRPO rolls out G on
        an ordered prompt and G/2 on its shuffled twin in the same call). Returns completions with
        token ids (EOS included when generation stopped on it) and per-token sampling log-probs.
        """

    def sync_weights(self, model: Any) -> None:  # noqa: B027 - optional hook, a no-op for colocated HF
        """Copy the policy's current weights into the engine (no-op when the engine is the policy)."""

    def sleep(self) -> None:  # noqa: B027 - optional hook, a no-op for colocated HF
        """Free the engine's own GPU memory for the update (no-op when the engine is the policy)."""

    def wake(self) -> None:  # noqa: B027 - optional hook, a no-op for colocated HF
        """Take back what :meth:`sleep` freed, before the next rollout (no-op when the engine is the policy)."""
