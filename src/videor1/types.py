"""The named things that cross module boundaries.

``Sample`` (one Video-R1 record), ``VideoClip`` / ``ImageInput`` (decoded media), ``VisionGeometry``
(how the model's vision tower cuts media into tokens, which fixes media sizes and frame counts),
``Completion`` (one generated answer with its token ids and log-probs) and ``RewardBreakdown`` (named
reward components per rollout, so every component is logged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

DataType = Literal["image", "video"]
ProblemType = Literal["multiple choice", "numerical", "OCR", "free-form", "regression"]
PROBLEM_TYPES: tuple[str, ...] = ("multiple choice", "numerical", "OCR", "free-form", "regression")
DATA_TYPES: tuple[str, ...] = ("image", "video")


@dataclass
class Sample:
    """One Video-R1 record (the Video-R1 data format). Unknown keys are kept in ``extra`` and ignored."""

    problem_id: int | str
    problem: str
    data_type: str  # "image" | "video"
    problem_type: str  # one of PROBLEM_TYPES
    options: list[str]
    solution: str  # always "<answer>...</answer>"
    path: str  # relative to the media root, usually starting "./"
    data_source: str = ""
    process: str | None = None  # CoT file only: "<think>...</think>"
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # "file.json[17]": where the record came from, for error messages

    def to_record(self) -> dict[str, Any]:
        """The record as Video-R1 JSON (extra keys restored)."""
        rec: dict[str, Any] = {
            "problem_id": self.problem_id,
            "problem": self.problem,
            "data_type": self.data_type,
            "problem_type": self.problem_type,
            "options": list(self.options),
        }
        if self.process is not None:
            rec["process"] = self.process
        rec["solution"] = self.solution
        rec["path"] = self.path
        rec["data_source"] = self.data_source
        rec.update(self.extra)
        return rec


@dataclass
class VideoClip:
    """Decoded, sampled and resized video frames."""

    frames: torch.Tensor  # [T, 3, H, W] uint8, T even
    frame_indices: list[int]  # index of each frame in the source video
    sample_fps: float  # frames per second of the sampled sequence (T / covered duration)
    duration: float  # seconds covered by the source (or the start/end window)
    path: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclass
class ImageInput:
    """A decoded and resized image."""

    pixels: torch.Tensor  # [3, H, W] uint8
    path: str = ""


Media = VideoClip | ImageInput


@dataclass(frozen=True)
class VisionGeometry:
    """How a model's vision tower cuts media into visual tokens; media must fit it exactly.

    It comes from the model's own config (``videor1.models.adapters.get_adapter(model).geometry``)
    and every media function takes it explicitly: frame sides are multiples of ``pixel_factor``
    (28 for Qwen2/2.5-VL, 32 for Qwen3-VL) and frame counts multiples of ``temporal_patch_size``.
    """

    patch_size: int  # pixels per side of one ViT patch (14 Qwen2/2.5-VL, 16 Qwen3-VL)
    merge_size: int  # patches per side merged into one visual token (2)
    temporal_patch_size: int  # frames per temporal patch (2)

    @property
    def pixel_factor(self) -> int:
        """Side in pixels of one visual token (media are resized to multiples of this)."""
        return self.patch_size * self.merge_size


@dataclass
class Completion:
    """One sampled completion for one prompt."""

    text: str
    token_ids: list[int]  # generated ids, EOS included when generation stopped on it
    logprobs: list[float] | None = None  # sampling-time log-prob of each generated token
    finished: bool = True  # stopped on EOS (False when cut by max_new_tokens)


@dataclass(frozen=True)
class RewardBreakdown:
    """Reward components of one group of rollouts (one question), each a list over its ordered rollouts.

    ``total`` = accuracy + format + length (the T-GRPO bonus is not a component:
    ``videor1.algorithms.temporal``).
    """

    accuracy: list[float]
    format: list[float]
    length: list[float]
    total: list[float]
    shuffled_accuracy: list[float] = field(default_factory=list)  # [G_s] accuracy of the shuffled rollouts
    parse_failures: int = 0  # ordered completions whose answer could not be read for the problem type
    shuffled_parse_failures: int = 0
    scorer_errors: int = 0  # completions (ordered or shuffled) whose scoring raised; scored 0
    scorer_error: str = ""  # the first such error, for the log
