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


def _nested_sections(cls: type, prefix: str = "") -> list[tuple[str, type]]:
    """(dotted path, class) of every dataclass-typed field under ``cls``, Optional ones included."""
    import dataclasses
    from typing import get_args, get_type_hints

    found = []
    for name, tp in get_type_hints(cls).items():
        if name not in {f.name for f in dataclasses.fields(cls)}:
            continue
        for arg in get_args(tp) or (tp,):
            if dataclasses.is_dataclass(arg):
                path = f"{prefix}.{name}" if prefix else name
                found.append((path, arg))
                found.extend(_nested_sections(arg, path))
    return found


def _parent_default(path: str):
    """The value ``path`` has in ``Config()``; a section that defaults to None has its class's defaults."""
    node = Config()
    for part in path.split("."):
        node = getattr(node, part)
    return node


def test_every_nested_section_merges_one_key_over_its_parents_defaults():
    import dataclasses
    import json

    from videor1.config import from_dict, load_raw

    sections = _nested_sections(Config)
    assert {"eval.sampling", "annotate.sampling", "rl.sampling", "data.media", "model.lora"} <= {
        p for p, _ in sections
    }
    checked = 0
    for path, cls in sections:
        parent = _parent_default(path)
        expected = dataclasses.asdict(parent) if parent is not None else dataclasses.asdict(cls())
        exclusive = {k for group in getattr(cls, "exclusive_keys", ()) for k in group}
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(getattr(cls(), f.name)):
                continue  # a section of its own, walked separately
            value = expected[f.name]
            override = f"{path}.{f.name}={json.dumps(value)}"
            got = dataclasses.asdict(_parent_default_of(from_dict(Config, load_raw(None, [override])), path))
            want = dict(expected)
            for name in exclusive - {f.name}:
                want[name] = dataclasses.asdict(cls())[name]  # never inherited (see from_dict)
            assert got == want, f"{override}: the section's other keys changed"
            checked += 1
    assert checked > 100


def _parent_default_of(cfg: Config, path: str):
    node = cfg
    for part in path.split("."):
        node = getattr(node, part)
    return node


def test_one_decoding_key_keeps_the_sections_other_defaults(tmp_path):
    cfg = load_config(None, ["eval.sampling.max_new_tokens=8", "annotate.sampling.temperature=0.7"])
    assert (cfg.eval.sampling.temperature, cfg.eval.sampling.top_p, cfg.eval.sampling.max_new_tokens) == (
        0.1,
        0.001,
        8,
    )
    assert (cfg.annotate.sampling.top_p, cfg.annotate.sampling.max_new_tokens) == (0.95, 512)
    path = tmp_path / "c.yaml"
    path.write_text("eval:\n  sampling:\n    max_new_tokens: 8\n")
    assert load_config(path).eval.sampling.temperature == 0.1


def test_a_train_section_must_give_the_run_length_itself():
    assert load_config(None, ["train.epochs=2"]).train.max_steps is None  # not Config's max_steps=1
    with pytest.raises(ConfigError, match="exactly one of train.max_steps and train.epochs"):
        load_config(None, ["train.lr=0.1"])


def test_explain_shows_the_parents_defaults():
    rows = {key: default for key, _, default, _ in explain(Config)}
    assert rows["eval.sampling.temperature"] == 0.1 and rows["eval.sampling.top_p"] == 0.001
    assert rows["annotate.sampling.max_new_tokens"] == 512
    assert rows["rl.sampling.temperature"] == 1.0


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("train:\n  lr: 0.1\n  lr: 0.2\n", "lr", 3),
        ("train:\n  lr: 0.1\nrl:\n  beta: 0.0\ntrain:\n  max_steps: 3\n", "train", 5),
        ("eval:\n  sampling:\n    top_p: 0.5\n    top_p: 0.6\n", "top_p", 4),
    ],
)
def test_duplicate_yaml_keys_are_errors_naming_key_and_line(tmp_path, text, key, line):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert f"duplicate key '{key}' on line {line}" in str(e.value) and str(path) in str(e.value)


def test_greedy_rl_rollouts_are_refused_and_greedy_eval_is_allowed():
    with pytest.raises(ConfigError, match=r"rl.sampling.temperature=0 is greedy decoding: the 8 rollouts"):
        load_config(None, ["rl.sampling.temperature=0"])
    from videor1.infer import generation_kwargs

    greedy = load_config(None, ["eval.sampling.temperature=0"]).eval.sampling
    assert generation_kwargs(greedy) == {"max_new_tokens": 1024, "do_sample": False}


def test_eval_max_new_tokens_flag_keeps_the_reference_decoding():
    from videor1.cli import build_parser
    from videor1.commands.eval import flag_overrides

    args = build_parser().parse_args(["eval", "--model", "m", "--bench", "b.json", "--max-new-tokens", "8"])
    sampling = load_config(None, flag_overrides(args)).eval.sampling
    assert (sampling.temperature, sampling.top_p, sampling.max_new_tokens) == (0.1, 0.001, 8)
