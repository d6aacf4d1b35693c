"""Config loading: strict keys, typed values, Literal choices, dotted overrides, derived values."""

from __future__ import annotations

import pytest

from videor1.config import Config, ConfigError, explain, load_config, save_config


def test_defaults_round_trip(tmp_path):
    cfg = Config()
    path = tmp_path / "c.yaml"
    save_config(cfg, path)
    assert load_config(path) == cfg


def test_unknown_key_names_dotted_key_and_allowed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rl:\n  num_generatoins: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "rl.num_generatoins" in msg and "num_generations" in msg and str(path) in msg


def test_literal_error_lists_allowed_values():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["rl.shuffle_unit=pair"])
    assert "rl.shuffle_unit" in str(e.value)
    assert "'frame'" in str(e.value) and "'temporal_patch'" in str(e.value)


def test_type_errors():
    with pytest.raises(ConfigError, match="rl.num_generations: expected an integer"):
        load_config(None, ["rl.num_generations=eight"])
    with pytest.raises(ConfigError, match="model.freeze_vision: expected true or false"):
        load_config(None, ["model.freeze_vision=3"])


def test_overrides_parse_yaml_scalars_and_nested_sections():
    cfg = load_config(
        None, ["rl.num_generations=4", "train.lr=1e-5", "data.media.max_frames=8", "model.tiny.seed=3"]
    )
    assert cfg.rl.num_generations == 4
    assert cfg.train.lr == pytest.approx(1e-5)
    assert cfg.data.media.max_frames == 8
    assert cfg.model.tiny is not None and cfg.model.tiny.seed == 3


def test_derived_shuffled_generations():
    cfg = load_config(None, ["rl.num_generations=8"])
    assert cfg.rl.num_shuffled == 4
    cfg = load_config(None, ["rl.num_generations=8", "rl.shuffled_generations=2"])
    assert cfg.rl.num_shuffled == 2


def test_cross_field_validation():
    cfg = load_config(None, ["train.max_steps=3", "train.epochs=1"])
    with pytest.raises(ConfigError, match="exactly one of train.max_steps and train.epochs"):
        cfg.validate(("train",))
    cfg = load_config(None, ["train.max_steps=5", "train.warmup_steps=3", "train.warmup_ratio=0.1"])
    with pytest.raises(ConfigError, match="both train.warmup_steps and train.warmup_ratio"):
        cfg.validate(("train",))
    cfg = load_config(None, ["data.media.min_frames=20"])
    with pytest.raises(ConfigError, match="data.media.min_frames"):
        cfg.validate(("data",))


def test_scientific_notation_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-6\n  max_steps: 2\n")
    assert load_config(path).train.lr == pytest.approx(1e-6)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["rl.num_generations"])


def test_explain_covers_every_leaf_with_docs():
    rows = explain()
    keys = {r[0] for r in rows}
    assert "rl.temporal_mu" in keys and "data.media.video_max_pixels" in keys
    undocumented = [r[0] for r in rows if not r[3]]
    assert undocumented == []
