"""Every shipped YAML under configs/ loads strictly, validates, and round-trips (files found by glob)."""

from __future__ import annotations

from pathlib import Path

import pytest

from videor1.config import PIXELS_PER_TOKEN, load_config, save_config, to_dict

ROOT = Path(__file__).resolve().parents[2]
DEMO = sorted((ROOT / "configs" / "demo").glob("*.yaml"))  # DemoSettings, not stage configs
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p not in DEMO)
TRAINING = ("sft", "grpo", "tgrpo")  # file stems of training recipes


def ids(paths):
    return [str(p.relative_to(ROOT / "configs")) for p in paths]


def test_configs_exist():
    names = set(ids(CONFIGS))
    assert {"tiny/sft.yaml", "qwen2_5_vl_7b/sft.yaml"} <= names
    assert set(ids(DEMO)) == {"demo/full.yaml", "demo/quick.yaml"}
    assert not set((ROOT / "configs").rglob("*.yml")), "use the .yaml extension (the tests glob for it)"


@pytest.mark.parametrize("path", DEMO, ids=ids(DEMO))
def test_demo_settings_load_validate_and_round_trip(path, tmp_path):
    import yaml

    from videor1.demo.settings import DemoSettings, load_demo_settings, preset_path

    settings = load_demo_settings(path)
    # the preset of that name is this very file: the package ships configs/demo/
    assert preset_path(path.stem).resolve() == path.resolve()
    assert to_dict(load_demo_settings(path.stem)) == to_dict(settings)
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump(to_dict(settings)), encoding="utf-8")
    assert load_demo_settings(copy) == settings
    # every key of the file is a field (nothing silently ignored), checked by the strict loader
    assert isinstance(settings, DemoSettings) and settings.data.families


@pytest.mark.parametrize("path", CONFIGS, ids=ids(CONFIGS))
def test_config_loads_validates_and_round_trips(path, tmp_path):
    cfg = load_config(path)
    cfg.validate(("data", "train", "rl"))
    cfg.data.media.validate("data.media")
    copy = tmp_path / "copy.yaml"
    save_config(cfg, copy)
    assert to_dict(load_config(copy)) == to_dict(cfg)


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if p.stem in TRAINING], ids=ids([p for p in CONFIGS if p.stem in TRAINING])
)
def test_training_config_sections(path):
    cfg = load_config(path)
    cfg.validate(("model", "data", "train", "rl"))
    assert cfg.data.train_file, "a training config names its data file"
    assert cfg.train.output_dir
    if path.parent.name == "tiny":
        # Tiny configs bootstrap themselves on a fresh checkout and stay CPU-sized.
        assert cfg.model.tiny is not None and cfg.data.synth is not None
        assert cfg.train.max_steps is not None and cfg.train.max_steps <= 20
        assert cfg.train.precision == "fp32" and cfg.train.distributed == "ddp"
        global_batch = cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps
        assert cfg.data.synth.train >= global_batch
        assert cfg.data.synth.frames % 8 == 0
        assert Path(cfg.data.train_file).parent == Path(cfg.data.media_root)
    if path.parent.name.startswith("qwen2_5_vl_7b"):
        # Reference budgets (REFERENCE §2) and precision (§4).
        media = cfg.data.media
        assert (media.fps, media.min_frames, media.max_frames) == (2.0, 4, 16)
        assert media.video_min_pixels == media.video_max_pixels == 128 * PIXELS_PER_TOKEN
        assert media.image_max_pixels == 256 * PIXELS_PER_TOKEN
        assert cfg.train.precision == "bf16" and cfg.model.gradient_checkpointing
        assert cfg.model.tiny is None and cfg.data.synth is None
        assert cfg.rl.temporal_margin is None  # the paper's firing rule (p >= mu * p_shuffled)


def test_reference_sft_settings():
    cfg = load_config(ROOT / "configs" / "qwen2_5_vl_7b" / "sft.yaml")
    assert cfg.train.epochs == 1.0 and cfg.train.max_steps is None
    assert cfg.train.lr == 1e-6
    assert cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps * 8 == 8  # 8 GPUs
    assert cfg.sft.system_prompt == "You are a helpful assistant"
    assert not cfg.model.freeze_vision and not cfg.model.lora.enabled
