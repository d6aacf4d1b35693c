"""`videor1 demo --quick`: the full pipeline at toy size, end to end, and the report's structure."""

from __future__ import annotations

import dataclasses
import json
from typing import get_args

import pytest

from videor1.cli import main
from videor1.demo.report import FIXED_STAGES


def test_quick_demo_runs_every_stage_and_writes_the_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--quick", "--out", str(out)]) == 0

    report = json.loads((out / "report.json").read_text())
    variants = report["variants"]
    assert variants == ["grpo", "tgrpo-reference", "tgrpo-advantage", "tgrpo-margin", "tgrpo-no-bonus"]
    stages = [*FIXED_STAGES, *variants]
    assert set(report["stages"]) == set(stages)
    held_out = report["held_out_items"]
    assert held_out == len(json.loads((out / "data" / "test.json").read_text()))
    meta = json.loads((out / "data" / "meta.json").read_text())
    families = set(meta["families"])
    assert (
        report["shortcut_families"] == ["quarter_shortcut"]
        and meta["families"]["quarter_shortcut"]["shortcut"]
    )
    for stage in stages:
        r = report["stages"][stage]
        assert 0.0 <= r["accuracy_ordered"] <= 1.0 and 0.0 <= r["accuracy_shuffled"] <= 1.0
        assert set(r["per_family"]) <= families and r["per_family"]
        assert sum(f["n"] for f in r["per_family"].values()) == held_out
        assert r["errors"] == 0
    # each stage evaluated its own checkpoint, twice (ordered and shuffled frames)
    for name in ("base", "sft", *(f"{v}-seed0" for v in variants)):
        for view in ("ordered", "shuffled"):
            lines = (out / "eval" / f"{name}-{view}" / "predictions.jsonl").read_text().splitlines()
            assert len(lines) == held_out
    assert 0.0 < report["chance"] < 1.0
    for stage in ("data", "model", "sft", *variants, "eval", "total"):
        assert report["seconds"][stage] >= 0.0
    config = report["config"]
    # SFT curriculum: the image records from the base model, then everything from that checkpoint
    image_records = json.loads((out / "data" / "train_cot_images.json").read_text())
    assert image_records and all(r["data_type"] == "image" for r in image_records)
    assert config["sft_images"]["data"]["train_file"].endswith("train_cot_images.json")
    assert config["sft_images"]["model"]["path"] == str(out / "model-base")
    assert config["sft"]["data"]["train_file"].endswith("train_cot_sft.json")  # sft_shortcut_items: cue
    assert config["sft"]["model"]["path"].startswith(str(out / "sft-images"))
    # the learning curve: every curve_every (2) steps of the 2 + 3 SFT steps, the last from the SFT eval
    assert [p["step"] for p in report["sft_curve"]] == [2, 4, 5]
    assert all(set(p["per_family"]) == families for p in report["sft_curve"])
    # RL: the three variants differ only in the temporal settings, from the same SFT checkpoint,
    # on the RL families' training records only
    rl = {v: config[v]["rl"] for v in variants}
    assert rl["grpo"]["temporal"] is False
    assert rl["tgrpo-reference"]["temporal"] and rl["tgrpo-reference"]["temporal_form"] == "reference"
    assert rl["tgrpo-advantage"]["temporal"] and rl["tgrpo-advantage"]["temporal_form"] == "advantage"
    assert all(r["temporal_margin"] is None for v, r in rl.items() if v != "tgrpo-margin")
    assert (
        rl["tgrpo-margin"]["temporal_form"] == "advantage" and rl["tgrpo-margin"]["temporal_margin"] == 0.25
    )
    assert rl["tgrpo-no-bonus"]["temporal"] and rl["tgrpo-no-bonus"]["temporal_alpha"] == 0.0
    assert all(r["temporal_alpha"] == 0.3 for v, r in rl.items() if v != "tgrpo-no-bonus")
    sft_ckpt = report["stages"]["sft"]["model"]
    assert all(config[v]["model"]["path"] == sft_ckpt for v in variants)
    rl_records = json.loads((out / "data" / "train_rl.json").read_text())
    assert (
        {r["family"] for r in rl_records} == {"quarter_shortcut", "direction"} == set(report["rl_families"])
    )
    steps = report["config"]["settings"]["rl"]["steps"]
    for v in variants:
        (run,) = report["rl_runs"][v]
        assert run["seed"] == 0 and [p["step"] for p in run["curve"]] == list(range(1, steps + 1))
        summary = report["rl_summary"][v]
        assert summary["seeds"] == [0] and "quarter_shortcut/gap" in summary and "all/ordered" in summary
    tgrpo = report["rl_runs"]["tgrpo-advantage"][0]["curve"]
    assert any(p["fire_rate"] is not None for p in tgrpo), "T-GRPO never rolled out on shuffled frames"
    assert all(p["fire_rate"] is None for p in report["rl_runs"]["grpo"][0]["curve"])
    for png in ("sft_curve.png", "rl_curves.png", "ordered_vs_shuffled.png", "accuracy_by_family.png"):
        assert (out / png).stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "| stage | ordered | shuffled |" in md and "tgrpo-advantage" in md
    assert "## What this run shows" in md and "Shortcut control quarter_shortcut" in md


def test_demo_settings_are_strict(tmp_path):
    from videor1.config import ConfigError
    from videor1.demo.settings import DemoSettings, load_demo_settings

    full = load_demo_settings("full")
    assert "quarter_shortcut" in full.data.families and full.rl.variants[0] == "grpo"
    # the dataclass defaults are make demo's recipe, so a partial YAML gets the same stages
    defaults = DemoSettings()
    assert full.sft == defaults.sft and full.eval == defaults.eval
    assert dataclasses.replace(full.data, families=[]) == defaults.data
    assert dataclasses.replace(full.rl, families=[]) == defaults.rl
    with pytest.raises(ConfigError, match="sft.stepz"):
        load_demo_settings("quick", ["sft.stepz=3"])
    with pytest.raises(ConfigError, match=r"rl.variants\[0\]: 'ppo' is not allowed"):
        load_demo_settings("quick", ["rl.variants=[ppo]"])
    with pytest.raises(ConfigError, match=r"data.families\[1\]: unknown synth family 'spin'"):
        load_demo_settings("quick", ["data.families=[direction, spin]"])
    with pytest.raises(ConfigError, match=r"rl.families\[0\]: 'image_count' is not in data.families"):
        load_demo_settings("quick", ["rl.families=[image_count]"])
    with pytest.raises(ConfigError, match="data.frames must be a positive multiple of 8"):
        load_demo_settings("quick", ["data.frames=12"])
    with pytest.raises(ConfigError, match="model.seed"):
        load_demo_settings("quick", ["model.seed=3"])
    # values the stage configs would reject only after minutes of data and SFT fail at load, by their demo key
    with pytest.raises(
        ConfigError, match=r"quick.yaml: model.hidden_size must be a multiple of model.num_heads"
    ):
        load_demo_settings("quick", ["model.hidden_size=7"])
    for key in ("sft.warmup_steps", "rl.beta", "rl.temperature"):
        with pytest.raises(ConfigError, match=rf"quick.yaml: {key} must be >= 0, got -1"):
            load_demo_settings("quick", [f"{key}=-1"])
    with pytest.raises(ConfigError, match="demo settings file not found"):
        load_demo_settings(tmp_path / "nope.yaml")
    assert main(["-q", "demo", "--quick", "--config", "full", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


# What each RL variant sets in ``rl``, written out by hand; every other field is the same for all.
VARIANT_RL = {
    "grpo": {"temporal": False, "temporal_form": "reference", "temporal_margin": None, "temporal_alpha": 0.3},
    "tgrpo-reference": {
        "temporal": True,
        "temporal_form": "reference",
        "temporal_margin": None,
        "temporal_alpha": 0.3,
    },
    "tgrpo-advantage": {
        "temporal": True,
        "temporal_form": "advantage",
        "temporal_margin": None,
        "temporal_alpha": 0.3,
    },
    "tgrpo-margin": {
        "temporal": True,
        "temporal_form": "advantage",
        "temporal_margin": 0.25,
        "temporal_alpha": 0.3,
    },
    "tgrpo-no-bonus": {
        "temporal": True,
        "temporal_form": "reference",
        "temporal_margin": None,
        "temporal_alpha": 0.0,
    },
}


@pytest.mark.parametrize("preset", ["full", "quick"])
def test_rl_variant_configs_differ_only_in_the_temporal_settings(preset, tmp_path):
    from videor1.config import to_dict
    from videor1.demo.settings import VARIANTS, Variant, load_demo_settings
    from videor1.demo.stages import rl_config

    assert set(VARIANTS) == set(get_args(Variant)) == set(VARIANT_RL)
    s = load_demo_settings(preset)
    sft = tmp_path / "sft"
    configs = {v: to_dict(rl_config(s, tmp_path, sft, variant=v, seed=3)) for v in VARIANT_RL}
    grpo = configs["grpo"]
    shared = {k: v for k, v in grpo["rl"].items() if k not in VARIANT_RL["grpo"]}
    # the shared part comes from the demo's rl settings
    assert shared["num_generations"] == s.rl.num_generations and shared["beta"] == s.rl.beta
    assert shared["sampling"] == {
        "temperature": s.rl.temperature,
        "top_p": 1.0,
        "max_new_tokens": s.rl.max_new_tokens,
    }
    assert shared["shuffle_unit"] == "temporal_patch" and shared["length_reward"] is False
    assert shared["shuffled_generations"] is None and shared["max_prompt_length"] == 4096
    for variant, cfg in configs.items():
        assert {k: cfg["rl"][k] for k in VARIANT_RL[variant]} == VARIANT_RL[variant], variant
        assert {k: cfg["rl"][k] for k in shared} == shared, variant
        assert cfg["model"]["path"] == str(sft) and cfg["data"] == grpo["data"]
        assert cfg["data"]["train_file"] == str(tmp_path / "data" / "train_rl.json")
        train = {**grpo["train"], "output_dir": str(tmp_path / "rl" / f"{variant}-seed3")}
        assert cfg["train"] == train and train["seed"] == 3 and train["max_steps"] == s.rl.steps


def test_image_phase_needs_image_records(tmp_path):
    from videor1.config import ConfigError
    from videor1.demo.settings import load_demo_settings
    from videor1.demo.stages import sft_config, write_image_train_file

    records = [{"problem_id": 0, "data_type": "video", "path": "./videos/a.mp4"}]
    (tmp_path / "train_cot.json").write_text(json.dumps(records))
    with pytest.raises(
        ConfigError, match=r"train_cot.json: no image records \(data_type: image\) for the images-first"
    ):
        write_image_train_file(tmp_path)
    records.append({"problem_id": 1, "data_type": "image", "path": "./images/b.png"})
    (tmp_path / "train_cot.json").write_text(json.dumps(records))
    assert write_image_train_file(tmp_path) == 1
    assert json.loads((tmp_path / "train_cot_images.json").read_text()) == records[1:]
    with pytest.raises(ValueError, match="phase"):
        sft_config(load_demo_settings("quick"), tmp_path, tmp_path, phase="video")


def test_sft_file_keeps_only_shortcut_items_whose_cue_is_right(tmp_path):
    from videor1.config import ConfigError
    from videor1.demo.stages import write_sft_train_file

    records = [
        {"problem_id": 0, "family": "direction"},
        {"problem_id": 1, "family": "quarter_shortcut", "shortcut_cue": True},
        {"problem_id": 2, "family": "quarter_shortcut", "shortcut_cue": False},
        {"problem_id": 3, "family": "image_color"},
    ]
    (tmp_path / "train_cot.json").write_text(json.dumps(records))
    assert write_sft_train_file(tmp_path) == 3
    kept = json.loads((tmp_path / "train_cot_sft.json").read_text())
    assert [r["problem_id"] for r in kept] == [0, 1, 3]
    (tmp_path / "train_cot.json").write_text(json.dumps(records[2:3]))
    with pytest.raises(
        ConfigError, match=r"train_cot.json: no records left for SFT after dropping the shortcut"
    ):
        write_sft_train_file(tmp_path)


def test_rl_file_keeps_only_the_rl_families(tmp_path):
    from videor1.config import ConfigError
    from videor1.demo.stages import write_rl_train_file

    records = [{"problem_id": 0, "family": "direction"}, {"problem_id": 1, "family": "image_color"}]
    (tmp_path / "train.json").write_text(json.dumps(records))
    assert write_rl_train_file(tmp_path, ["direction", "quarter_shortcut"]) == 1
    assert json.loads((tmp_path / "train_rl.json").read_text()) == records[:1]
    with pytest.raises(
        ConfigError, match=r"train.json: no records of the RL families \(event_quarter, quarter_"
    ):
        write_rl_train_file(tmp_path, ["quarter_shortcut", "event_quarter"])


def test_demo_never_writes_into_or_deletes_a_foreign_directory(tmp_path):
    from videor1.config import ConfigError
    from videor1.demo.pipeline import MARKER, run_demo

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    for fresh in (False, True):
        with pytest.raises(ConfigError, match="not a demo's output"):
            run_demo(mine, settings="quick", fresh=fresh)
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert main(["-q", "demo", "--quick", "--fresh", "--out", str(mine)]) == 2
    assert (mine / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        run_demo(tmp_path / "file", settings="quick")
    # a demo's own output (marked) is the one thing --fresh deletes
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / MARKER).touch()
    (ours / "stale.json").write_text("{}")
    from videor1.demo import pipeline

    pipeline._claim_output_dir(ours, fresh=True)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]


def test_rerun_with_changed_settings_is_refused_and_unchanged_resumes(tmp_path):
    from videor1.config import ConfigError
    from videor1.demo.pipeline import run_demo
    from videor1.demo.resume import SETTINGS_FILE
    from videor1.demo.settings import load_demo_settings

    out = tmp_path / "demo"
    assert main(["-q", "demo", "--quick", "--out", str(out)]) == 0
    recorded = (out / SETTINGS_FILE).read_text()
    stamps = {
        p: p.stat().st_mtime_ns for p in (out / "data" / "meta.json", out / "model-base" / "config.json")
    }
    before = json.loads((out / "report.json").read_text())
    rl_runs = ", ".join(f"rl/{v}-seed0" for v in before["variants"])

    # a changed data setting: refused before any stage runs, naming the key, both values and the stages
    with pytest.raises(ConfigError) as e:
        run_demo(out, settings=load_demo_settings("quick", ["data.train_items=30"]))
    assert f"data.train_items: 24 -> 30 (stages: data, sft, {rl_runs})" in str(e.value)
    assert "--fresh" in str(e.value) and "--out" in str(e.value)
    # a model and an SFT setting: only the stages built on them, every key listed
    with pytest.raises(ConfigError) as e:
        run_demo(out, settings=load_demo_settings("quick", ["model.hidden_size=64", "sft.steps=4"]))
    assert f"model.hidden_size: 128 -> 64 (stages: model, sft, {rl_runs})" in str(e.value)
    assert f"sft.steps: 3 -> 4 (stages: sft, {rl_runs})" in str(e.value)
    assert "(stages: data" not in str(e.value)
    assert main(["-q", "demo", "--quick", "--out", str(out), "seed=1"]) == 2  # the CLI's exit status
    assert (out / SETTINGS_FILE).read_text() == recorded
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    # the same settings (and ones that cannot change a result) resume every stage: nothing is rebuilt
    assert main(["-q", "demo", "--quick", "--out", str(out), "threads=1", "eval.batch=5"]) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert (out / SETTINGS_FILE).read_text() == recorded
    after = json.loads((out / "report.json").read_text())
    assert after["stages"] == before["stages"] and after["sft_curve"] == before["sft_curve"]


def test_stage_settings_check_compares_only_the_stages_a_rerun_reuses(tmp_path):
    from videor1.config import ConfigError
    from videor1.demo.resume import SETTINGS_FILE, check_stage_settings, record_stage
    from videor1.demo.settings import load_demo_settings

    s = load_demo_settings("quick")
    for stage in ("data", "model", "sft", "rl/grpo-seed0", "rl/tgrpo-reference-seed0", "eval"):
        record_stage(tmp_path, s, stage)
    all_stages = ["data", "model", "sft", "rl/grpo-seed0", "rl/tgrpo-reference-seed0", "eval"]
    check_stage_settings(tmp_path, s, all_stages, has_outputs=True)
    # more RL seeds or fewer variants: each run is its own stage, the recorded ones are unchanged
    more = load_demo_settings("quick", ["rl.seeds=2", "rl.variants=[grpo]", "threads=1"])
    check_stage_settings(
        tmp_path, more, ["data", "model", "sft", "rl/grpo-seed0", "rl/grpo-seed1"], has_outputs=True
    )
    # an RL setting affects the RL runs a rerun would reuse, and only those
    with pytest.raises(ConfigError, match=r"rl.steps: 2 -> 5 \(stages: rl/grpo-seed0\)\n"):
        check_stage_settings(
            tmp_path,
            load_demo_settings("quick", ["rl.steps=5", "rl.variants=[grpo]"]),
            ["rl/grpo-seed0"],
            has_outputs=True,
        )
    with pytest.raises(ConfigError, match=r"eval.max_new_tokens: 16 -> 8 \(stages: eval\)"):
        check_stage_settings(
            tmp_path, load_demo_settings("quick", ["eval.max_new_tokens=8"]), all_stages, has_outputs=True
        )
    # a demo output from before settings were recorded cannot be checked; an empty one has nothing to check
    (tmp_path / SETTINGS_FILE).unlink()
    with pytest.raises(ConfigError, match="cannot be compared"):
        check_stage_settings(tmp_path, s, all_stages, has_outputs=True)
    check_stage_settings(tmp_path, s, all_stages, has_outputs=False)
    (tmp_path / SETTINGS_FILE).write_text("[]")
    with pytest.raises(ConfigError, match=f"{SETTINGS_FILE}: not the demo's record"):
        check_stage_settings(tmp_path, s, all_stages, has_outputs=True)
