"""The demo's settings: a typed dataclass, shipped as YAML (``configs/demo/full.yaml``, ``quick.yaml``).

``load_demo_settings("full")`` reads the packaged YAML of that name (``videor1/assets/demo/`` in the
installed package; in a checkout that directory is a link to ``configs/demo/``, so the files the
tests load are the files the package ships); any other argument is a path to a YAML file of the same
shape. Loading is strict, with the project's config loader (``videor1.config.load_dataclass``): an
unknown key, a wrong type or a value outside a ``Literal`` raises ``ConfigError`` naming the dotted
key, and ``validate`` checks the values that depend on each other. Dotted overrides
(``sft.steps=100``) work as for the stage configs.

The stage configs (``videor1.config.Config`` for SFT and RL) are built from these settings by
``videor1.demo.stages``; nothing here is copied between sections (e.g. the media budgets of every
stage derive from ``data.size`` and ``data.frames``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from videor1.config import ConfigError, TinyModelConfig, load_dataclass

Variant = Literal["grpo", "tgrpo-reference", "tgrpo-advantage", "tgrpo-margin", "tgrpo-no-bonus"]


@dataclass(frozen=True)
class RLVariant:
    """What one RL variant sets in its RL config's ``rl`` section; the rest comes from the ``rl``
    settings and is the same for every variant (``videor1.demo.stages.rl_config``)."""

    temporal: bool
    """Draw the shuffled-frame rollouts and compare (T-GRPO) or not (GRPO)."""
    temporal_form: Literal["reference", "advantage"] = "reference"
    """Where the temporal bonus acts: in the reward (the paper) or in the advantage."""
    margin: bool = False
    """Fire only when p >= p_shuffled + ``rl.margin`` instead of the paper's p >= mu * p_shuffled."""
    bonus: bool = True
    """False: alpha = 0. The shuffled rollouts are still drawn, so the random stream and the compute
    are T-GRPO's, but nothing is rewarded for order: the control for the bonus itself."""


VARIANTS: dict[Variant, RLVariant] = {
    "grpo": RLVariant(temporal=False),
    "tgrpo-reference": RLVariant(temporal=True, temporal_form="reference"),
    "tgrpo-advantage": RLVariant(temporal=True, temporal_form="advantage"),
    "tgrpo-margin": RLVariant(temporal=True, temporal_form="advantage", margin=True),
    "tgrpo-no-bonus": RLVariant(temporal=True, bonus=False),
}
"""The RL variants ``rl.variants`` chooses from."""


@dataclass
class DemoData:
    """The procedural dataset."""

    train_items: int = 1500
    """Training items (all families together)."""
    test_items: int = 120
    """Held-out items."""
    frames: int = 16
    """Frames per video (a multiple of 8); every stage samples all of them."""
    size: int = 128
    """Frame side in pixels; every stage uses exactly this many pixels per frame."""
    families: list[str] = field(default_factory=list)
    """Task families generated, trained on by SFT and evaluated (``videor1 data synth --help``)."""
    cot_detail: Literal["none", "short", "full"] = "none"
    """Length of the templated chains of thought in the SFT targets."""
    sft_shortcut_items: Literal["all", "cue"] = "cue"
    """Shortcut-control families in SFT: every training item, or only those the cue answers right."""


@dataclass
class DemoSFT:
    """The SFT cold start (optionally two phases: the image records alone, then every record)."""

    image_steps: int = 0
    """Steps of the images-only phase (0: no curriculum, every record from the start)."""
    steps: int = 450
    """Steps of the phase on every record."""
    batch: int = 8
    """Questions per step."""
    lr: float = 1e-4
    """Learning rate (constant after warmup)."""
    warmup_steps: int = 20
    """Linear warmup steps of each phase (at most a tenth of the phase)."""
    curve_every: int = 100
    """Evaluate per-family held-out accuracy every N SFT steps for the learning curve (0 = off)."""


@dataclass
class DemoRL:
    """RL from the SFT checkpoint, once per variant, with the same budget."""

    steps: int = 30
    """Optimiser steps per variant."""
    batch: int = 4
    """Questions per step."""
    lr: float = 2e-5
    """Learning rate (constant)."""
    num_generations: int = 8
    """Rollouts per question on the ordered clip (T-GRPO adds half as many on a shuffled one)."""
    max_new_tokens: int = 24
    """Longest rollout."""
    temperature: float = 1.0
    """Rollout temperature."""
    beta: float = 0.04
    """KL coefficient to the SFT model."""
    families: list[str] = field(default_factory=list)
    """Families whose training items RL trains on (empty = every family of ``data.families``)."""
    variants: list[Variant] = field(
        default_factory=lambda: [
            "grpo",
            "tgrpo-reference",
            "tgrpo-advantage",
            "tgrpo-margin",
            "tgrpo-no-bonus",
        ]
    )
    """RL variants to run, each from the same SFT checkpoint."""
    margin: float = 0.25
    """Margin of the ``tgrpo-margin`` variant: fire only when p >= p_shuffled + margin."""
    seeds: int = 1
    """RL seeds per variant (seed, seed + 1, ...), all from the one SFT checkpoint."""


@dataclass
class DemoEval:
    """Held-out evaluation (greedy), with ordered and with shuffled frames."""

    max_new_tokens: int = 24
    """Longest answer."""
    batch: int = 16
    """Questions per generation batch."""


@dataclass
class DemoSettings:
    """Everything one ``videor1 demo`` run needs; stage configs are derived from it."""

    seed: int = 0
    """Seed of the data, the model initialisation, SFT, the first RL seed and the eval shuffles."""
    threads: int = 0
    """torch CPU threads (0 = torch's default). On a 2-core machine shared with other jobs one thread
    was up to 10x faster than two."""
    data: DemoData = field(default_factory=DemoData)
    """The procedural dataset."""
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    """The random-init tiny model (its initialisation seed is the top-level ``seed``)."""
    sft: DemoSFT = field(default_factory=DemoSFT)
    """The SFT cold start."""
    rl: DemoRL = field(default_factory=DemoRL)
    """The RL variants."""
    eval: DemoEval = field(default_factory=DemoEval)
    """Held-out evaluation."""

    @property
    def rl_families(self) -> list[str]:
        return list(self.rl.families) or list(self.data.families)

    def validate(self, source: str = "demo settings") -> DemoSettings:
        """Cross-field checks; raises ``ConfigError`` naming ``source`` and the dotted key."""
        from videor1.data.synth.families import get_family

        def fail(message: str) -> None:
            raise ConfigError(f"{source}: {message}")

        d, s, r = self.data, self.sft, self.rl
        if not d.families:
            fail("data.families must name at least one task family")
        for i, name in enumerate(d.families):
            try:
                get_family(name)
            except ValueError as e:
                fail(f"data.families[{i}]: {e}")
        if len(set(d.families)) != len(d.families):
            fail(f"data.families lists a family twice: {d.families}")
        if d.frames < 8 or d.frames % 8:
            fail(f"data.frames must be a positive multiple of 8, got {d.frames}")
        if d.size < 56:
            fail(f"data.size must be at least 56 pixels, got {d.size}")
        if d.train_items < len(d.families) or d.test_items < len(d.families):
            fail("data.train_items and data.test_items need at least one item per family")
        for key, value in (("sft.steps", s.steps), ("sft.batch", s.batch), ("rl.steps", r.steps)):
            if value < 1:
                fail(f"{key} must be >= 1, got {value}")
        for key, value in (
            ("sft.image_steps", s.image_steps),
            ("sft.curve_every", s.curve_every),
            ("sft.warmup_steps", s.warmup_steps),
            ("rl.beta", r.beta),
            ("rl.temperature", r.temperature),
        ):
            if value < 0:
                fail(f"{key} must be >= 0, got {value}")
        if s.image_steps and not any(get_family(f).data_type == "image" for f in d.families):
            fail("sft.image_steps > 0 needs an image family in data.families (or set it to 0)")
        for key, value in (("sft.lr", s.lr), ("rl.lr", r.lr)):
            if not 0 < value < 1:
                fail(f"{key} must be in (0, 1), got {value}")
        for i, name in enumerate(r.families):
            if name not in d.families:
                fail(f"rl.families[{i}]: {name!r} is not in data.families")
        if r.batch < 1 or r.num_generations < 2 or r.max_new_tokens < 1:
            fail("rl.batch >= 1, rl.num_generations >= 2 and rl.max_new_tokens >= 1 are required")
        if not r.variants or len(set(r.variants)) != len(r.variants):
            fail(f"rl.variants must list at least one variant, each once, got {r.variants}")
        if r.seeds < 1:
            fail(f"rl.seeds must be >= 1, got {r.seeds}")
        if not r.margin > 0:
            fail(f"rl.margin must be > 0, got {r.margin}")
        try:
            self.model.validate("model")
        except ConfigError as e:
            fail(str(e))
        if self.model.seed not in (0, self.seed):
            fail(
                f"model.seed ({self.model.seed}): leave it out; the top-level seed ({self.seed}) seeds the model"
            )
        if self.threads < 0:
            fail(f"threads must be >= 0, got {self.threads}")
        if self.eval.max_new_tokens < 1 or self.eval.batch < 1:
            fail("eval.max_new_tokens and eval.batch must be >= 1")
        return self


PRESETS = ("full", "quick")
"""The shipped settings: ``full`` is ``make demo``, ``quick`` the test suite's toy size."""


def preset_path(name: str) -> Path:
    """The packaged YAML of a preset (``videor1/assets/demo/<name>.yaml``)."""
    return Path(str(resources.files("videor1") / "assets" / "demo" / f"{name}.yaml"))


def load_demo_settings(source: str | Path = "full", overrides: list[str] | None = None) -> DemoSettings:
    """A preset name (``full``, ``quick``) or a YAML path → validated ``DemoSettings``."""
    path = preset_path(str(source)) if str(source) in PRESETS else Path(source)
    if not path.is_file():
        raise ConfigError(f"demo settings file not found: {path} (presets: {', '.join(PRESETS)})")
    return load_dataclass(DemoSettings, path, overrides).validate(str(path))
