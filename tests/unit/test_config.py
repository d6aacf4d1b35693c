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
        None,
        [
            "rl.num_generations=4",
            "train.lr=1e-5",
            "train.max_steps=2",
            "data.media.max_frames=8",
            "model.tiny.seed=3",
        ],
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


def test_cross_field_validation_runs_at_load():
    with pytest.raises(ConfigError, match="exactly one of train.max_steps and train.epochs"):
        load_config(None, ["train.max_steps=3", "train.epochs=1"])
    with pytest.raises(ConfigError, match="both train.warmup_steps and train.warmup_ratio"):
        load_config(None, ["train.max_steps=5", "train.warmup_steps=3", "train.warmup_ratio=0.1"])
    with pytest.raises(ConfigError, match="data.media.min_frames"):
        load_config(None, ["data.media.min_frames=20"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.lr=.nan", "train.lr"),
        ("train.lr=.inf", "train.lr"),
        ("train.lr=-1e-6", "train.lr"),
        ("train.lr=0", "train.lr"),
        ("train.adam_betas=[0.9, 1.5]", "train.adam_betas[1]"),
        ("train.adam_betas=[-0.1, 0.99]", "train.adam_betas[0]"),
        ("train.num_workers=-1", "train.num_workers"),
        ("train.log_every=0", "train.log_every"),
        ("train.save_every=-1", "train.save_every"),
        ("train.keep_last=-1", "train.keep_last"),
        ("train.weight_decay=-0.01", "train.weight_decay"),
        ("train.max_grad_norm=-1", "train.max_grad_norm"),
        ("train.max_grad_norm=.nan", "train.max_grad_norm"),
        ("train.warmup_ratio=1.5", "train.warmup_ratio"),
        ("train.max_seq_len=0", "train.max_seq_len"),
        ("train.seed=-3", "train.seed"),
        ("rl.beta=-0.04", "rl.beta"),
        ("rl.temporal_alpha=-0.3", "rl.temporal_alpha"),
        ("rl.temporal_mu=-1", "rl.temporal_mu"),
        ("rl.temporal_mu=.nan", "rl.temporal_mu"),
        ("rl.clip_eps_low=-0.2", "rl.clip_eps_low"),
        ("rl.clip_eps_low=1.2", "rl.clip_eps_low"),
        ("rl.clip_eps_high=-0.2", "rl.clip_eps_high"),
        ("rl.length_omega=-0.2", "rl.length_omega"),
        ("rl.correct_threshold=2", "rl.correct_threshold"),
        ("rl.shuffled_generations=0", "rl.shuffled_generations"),
        ("rl.max_resample_rounds=-1", "rl.max_resample_rounds"),
        ("rl.sampling.temperature=-1", "rl.sampling.temperature"),
        ("eval.batch_size=0", "eval.batch_size"),
        ("eval.limit=0", "eval.limit"),
        ("eval.sampling.max_new_tokens=0", "eval.sampling.max_new_tokens"),
        ("eval.max_error_rate=2", "eval.max_error_rate"),
        ("data.media.fps=.nan", "data.media.fps"),
        ("data.media.video_max_pixels=0", "data.media.video_max_pixels"),
        ("data.synth.frames=12", "data.synth.frames"),
        ("data.synth.train=-1", "data.synth.train"),
        ("model.tiny.hidden_size=0", "model.tiny.hidden_size"),
        ("model.lora.r=0", "model.lora.r"),
        ("model.lora.dropout=1", "model.lora.dropout"),
        ("annotate.threshold=1.5", "annotate.threshold"),
        ("annotate.concurrency=0", "annotate.concurrency"),
        ("annotate.timeout_s=0", "annotate.timeout_s"),
    ],
)
def test_every_numeric_setting_is_range_checked_with_its_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.max_steps=1", override])
    assert str(err.value).startswith(f"{key}"), str(err.value)


def test_scientific_notation_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-6\n  max_steps: 2\n")
    assert load_config(path).train.lr == pytest.approx(1e-6)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["rl.num_generations"])


def test_explain_covers_every_leaf_with_docs():
    rows = explain(Config)
    keys = {r[0] for r in rows}
    assert "rl.temporal_mu" in keys and "data.media.video_max_pixels" in keys
    undocumented = [r[0] for r in rows if not r[3]]
    assert undocumented == []
