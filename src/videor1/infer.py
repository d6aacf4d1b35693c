"""Ask a model about a video or an image: the ``Predictor`` Python API that ``videor1 infer`` wraps.

    predictor = Predictor("runs/tgrpo/final")
    out = predictor.predict("Which way does the square move?", video="clip.mp4", options=["left", "right"])
    out.answer, out.reasoning

The prompt is the reference's evaluation variant with the answer-format suffix of the
problem type; decoding defaults to the reference's evaluation settings (Video-R1's evaluation: temperature
0.1, top-p 0.001, 1024 new tokens), which keep only the most likely token at each step, i.e. greedy
up to exact ties. ``greedy=True`` (or temperature 0) decodes with ``do_sample=False``, which is exact.

The same :meth:`Predictor.generate` serves batched evaluation (``videor1.eval.runner``): it collates
LEFT-padded prompts with ``videor1.data.collate.collate(..., variant="eval")`` and calls plain
``model.generate``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from videor1.config import PIXELS_PER_TOKEN, ConfigError, MediaConfig, ModelConfig, SamplingConfig
from videor1.data.frames import fixed_frame_count_error
from videor1.models.adapters import get_adapter
from videor1.models.positions import rope_positions
from videor1.tags import split_output
from videor1.types import ImageInput, Sample, VideoClip, VisionGeometry

EVAL_SAMPLING = SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=1024)
"""The reference's evaluation decoding (Video-R1's evaluation)."""

EVAL_MEDIA = MediaConfig(video_max_pixels=256 * PIXELS_PER_TOKEN)
"""Evaluation budgets of Video-R1: up to 256·28·28 pixels per frame, the fps rule (2 fps, 4..16 frames)."""

TRAINING_CONFIG = "config.yaml"
"""videor1's run config inside every checkpoint; its ``data.media`` is the training budget."""

_LETTERED_RE = re.compile(r"^[A-Z]\.\s*\S")


@dataclass
class Prediction:
    """What the model said: its reasoning, its answer and the raw generated text."""

    reasoning: str  # <think> content, else the text before <answer>
    answer: str  # <answer> content, else the whole output
    raw_text: str
    has_answer_tag: bool
    num_frames: int | None = None  # frames the model saw (videos)


def generation_kwargs(sampling: SamplingConfig, *, greedy: bool = False) -> dict[str, Any]:
    """``model.generate`` arguments for a decoding config (temperature 0 or ``greedy`` = do_sample off)."""
    if greedy or sampling.temperature == 0:
        return {"max_new_tokens": sampling.max_new_tokens, "do_sample": False}
    return {
        "max_new_tokens": sampling.max_new_tokens,
        "do_sample": True,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": 0,
    }


class Predictor:
    """A loaded model + processor with media budgets and decoding settings.

    ``model`` is a checkpoint directory, or an already loaded model (then ``processor`` is required).
    ``adapter`` is the model's ``FamilyAdapter``; media for :meth:`generate` must be loaded for its
    :attr:`geometry` (``load_media(..., geometry=predictor.geometry)``: 28 px per visual token for
    Qwen2/2.5-VL, 32 for Qwen3-VL).
    """

    def __init__(
        self,
        model: str | Path | Any,
        processor: Any | None = None,
        *,
        media: MediaConfig | None = None,
        sampling: SamplingConfig | None = None,
        greedy: bool = False,
        device: str | torch.device | None = None,
        dtype: str = "float32",
        system_prompt: str | None = None,
    ) -> None:
        self.source: str | None = None  # the checkpoint directory, when loaded here
        if isinstance(model, (str, Path)):
            from videor1.models.loading import load_model_and_processor

            self.source = str(model)

            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            model, processor = load_model_and_processor(
                ModelConfig(path=str(model), dtype=dtype), device=device
            )
        elif processor is None:
            raise ValueError("Predictor(model=<loaded model>) also needs processor=<its processor>")
        self.model = model
        self.model.eval()
        self.processor = processor
        self.adapter = get_adapter(model)
        self.media = media or EVAL_MEDIA
        if self.media.nframes is not None and (
            why := fixed_frame_count_error(self.media.nframes, self.geometry)
        ):
            raise ConfigError(f"data.media.nframes={self.media.nframes} {why}")
        self.sampling = sampling or EVAL_SAMPLING
        self.greedy = greedy
        self.system_prompt = system_prompt

    @property
    def geometry(self) -> VisionGeometry:
        """The model's vision geometry: what media sizes and frame counts it takes."""
        return self.adapter.geometry

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _to_device(self, batch: Any) -> dict[str, Any]:
        dtype = next(self.model.parameters()).dtype
        moved = {}
        for key, value in batch.items():
            if not isinstance(value, torch.Tensor):
                moved[key] = value
            elif key.startswith("pixel_values"):
                moved[key] = value.to(self.device, dtype=dtype)
            else:
                moved[key] = value.to(self.device)
        return moved

    @torch.inference_mode()
    def generate(self, samples: Sequence[Sample], media: Sequence[VideoClip | ImageInput]) -> list[str]:
        """Generated text (special tokens removed) for each sample, in one left-padded batch."""
        from videor1.data.collate import collate

        batch = collate(
            list(samples),
            list(media),
            self.processor,
            variant="eval",
            system_prompt=self.system_prompt,
            adapter=self.adapter,
        )
        inputs = self._to_device(batch)
        # explicit positions (videor1.models.positions); generate continues them by +1 per token
        inputs["position_ids"] = rope_positions(self.adapter, inputs).position_ids  # [3, B, P]
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        out = self.model.generate(
            **inputs,
            **generation_kwargs(self.sampling, greedy=self.greedy),
            pad_token_id=tokenizer.pad_token_id,
        )
        prompt_len = inputs["input_ids"].shape[1]
        return tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)

    def predict(
        self,
        question: str,
        *,
        video: str | Path | None = None,
        image: str | Path | None = None,
        options: Sequence[str] | None = None,
        problem_type: str | None = None,
    ) -> Prediction:
        """Answer one question about one video or image file.

        ``options`` may be plain texts (lettered A, B, ... here) or already lettered (``"A. cat"``);
        ``problem_type`` defaults to multiple choice with options and free-form without.
        """
        from videor1.data.media import load_media

        sample, media_root = make_sample(
            question, video=video, image=image, options=options, problem_type=problem_type
        )
        clip = load_media(sample, media_root, self.media, geometry=self.geometry)
        (text,) = self.generate([sample], [clip])
        reasoning, answer, has_tag = split_output(text)
        frames = clip.num_frames if isinstance(clip, VideoClip) else None
        return Prediction(reasoning, answer, text, has_tag, frames)


def checkpoint_media(model_dir: str | Path | None) -> tuple[MediaConfig, Path] | None:
    """The media budget a videor1 checkpoint was trained with and the file it comes from, or None.

    Read from ``data.media`` of the checkpoint's ``config.yaml`` (for a LoRA ``merged/`` directory,
    the checkpoint's one above it). Other models (a hub checkpoint, ``videor1 model tiny``) have none.
    """
    import yaml

    from videor1.config import ConfigError, from_dict

    if model_dir is None:
        return None
    root = Path(model_dir)
    for file in (root / TRAINING_CONFIG, root.parent / TRAINING_CONFIG if root.name == "merged" else None):
        if file is None or not file.is_file():
            continue
        try:
            saved = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            media = from_dict(MediaConfig, (saved.get("data") or {}).get("media") or {}, prefix="data.media")
        except (yaml.YAMLError, AttributeError, ConfigError) as e:
            raise ConfigError(f"{file}: cannot read the training media budget ({e})") from e
        return media, file
    return None


def resolve_media(
    model_dir: str | Path | None, explicit: dict[str, Any] | None = None
) -> tuple[MediaConfig, str]:
    """The media budget for running ``model_dir``, and a sentence saying where it comes from.

    Keys in ``explicit`` (``data.media`` settings the user gave: config file, dotted overrides or
    flags) win; every other key comes from the checkpoint's training budget (:func:`checkpoint_media`)
    or, without one, from :data:`EVAL_MEDIA`. When only the maximum pixels were given and the
    minimum would exceed them, the minimum is lowered to the maximum.
    """
    from videor1.config import from_dict

    explicit = dict(explicit or {})
    saved = checkpoint_media(model_dir)
    base, origin = (
        (saved[0], f"the training budget in {saved[1]}") if saved else (EVAL_MEDIA, "the evaluation default")
    )
    values = {**dataclasses.asdict(base), **explicit}
    if "video_min_pixels" not in explicit and values["video_min_pixels"] > values["video_max_pixels"]:
        values["video_min_pixels"] = values["video_max_pixels"]
    media = from_dict(MediaConfig, values, prefix="data.media")
    media.validate("data.media")
    if explicit:
        given = ", ".join(f"data.media.{k}={v}" for k, v in explicit.items())
        origin = f"{given} over {origin}"
    return media, f"{describe_media(media)} ({origin})"


def describe_media(media: MediaConfig) -> str:
    """One line: frames, pixels per video frame and per image."""
    frames = (
        f"{media.nframes} frames"
        if media.nframes is not None
        else f"{media.fps:g} fps, {media.min_frames}..{media.max_frames} frames"
    )
    total = f", {media.video_total_pixels} px per clip" if media.video_total_pixels else ""
    return (
        f"video {frames}, {media.video_min_pixels}..{media.video_max_pixels} px per frame{total}; "
        f"images {media.image_min_pixels}..{media.image_max_pixels} px"
    )


def make_sample(
    question: str,
    *,
    video: str | Path | None = None,
    image: str | Path | None = None,
    options: Sequence[str] | None = None,
    problem_type: str | None = None,
) -> tuple[Sample, Path]:
    """A one-off record for a media file and a question, and the media root it resolves under.

    Raises ValueError for an empty (or blank) question, both or neither media, more than 26 plain
    options, or multiple choice without options.
    """
    if not question.strip():
        raise ValueError("the question is empty")
    if (video is None) == (image is None):
        raise ValueError("give exactly one of video=... and image=...")
    path = Path(video if video is not None else image).expanduser().resolve()
    opts = list(options or [])
    if opts and not all(_LETTERED_RE.match(o) for o in opts):
        if len(opts) > 26:
            raise ValueError(f"at most 26 options can be lettered, got {len(opts)}")
        opts = [f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(opts)]
    ptype = problem_type or ("multiple choice" if opts else "free-form")
    if ptype == "multiple choice" and not opts:
        raise ValueError("problem_type 'multiple choice' needs options")
    sample = Sample(
        problem_id=0,
        problem=question,
        data_type="video" if video is not None else "image",
        problem_type=ptype,
        options=opts if ptype == "multiple choice" else [],
        solution="<answer></answer>",
        path=f"./{path.name}",
        source=str(path),
    )
    return sample, path.parent
