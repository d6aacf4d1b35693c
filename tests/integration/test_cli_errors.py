"""Every user-facing error is one clear message and exit status 2; --debug shows the traceback."""

from __future__ import annotations

import json

import pytest
import yaml
from test_sft import make_cfg

from videor1.cli import main
from videor1.config import save_config


def _config(tmp_path, cfg) -> str:
    path = tmp_path / "run.yaml"
    save_config(cfg, path)
    return str(path)


def test_a_bad_record_is_one_message(tmp_path, tiny_model_dir, synth_dir, capsys):
    records = json.loads((synth_dir / "train_cot.json").read_text())
    records[3]["problem_type"] = "essay"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(records))
    cfg = make_cfg(tmp_path / "run", tiny_model_dir, synth_dir)
    cfg.data.train_file = str(bad)
    assert main(["sft", "--config", _config(tmp_path, cfg)]) == 2
    err = capsys.readouterr().err
    assert "record error" in err and "bad.json[3]" in err and "problem_type" in err
    assert "Traceback" not in err
    with pytest.raises(Exception, match="essay"):
        main(["--debug", "sft", "--config", _config(tmp_path, cfg)])


def test_a_media_path_escaping_the_root_names_the_record(tmp_path, tiny_model_dir, synth_dir, capsys):
    root = tmp_path / "media"
    root.mkdir()
    for name in ("videos", "images"):
        (root / name).symlink_to(synth_dir / name)  # the media live outside the root: every path escapes
    records = json.loads((synth_dir / "train_cot.json").read_text())
    (root / "train_cot.json").write_text(json.dumps(records))
    cfg = make_cfg(tmp_path / "run", tiny_model_dir, root, max_steps=1)
    assert main(["sft", "--config", _config(tmp_path, cfg)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "escapes the media root" in err and "train_cot.json[" in err and "problem_id=" in err


def test_an_output_dir_that_cannot_be_created_is_one_message(tmp_path, tiny_model_dir, synth_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cfg = make_cfg(blocker / "run", tiny_model_dir, synth_dir, max_steps=1)
    assert main(["sft", "--config", _config(tmp_path, cfg)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "OS error" in err and str(blocker) in err and "Traceback" not in err


def test_a_full_disk_during_a_checkpoint_names_it_and_keeps_the_others(
    tmp_path, tiny_model_dir, synth_dir, monkeypatch, capsys
):
    import torch

    real_save = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        if str(f).endswith("scheduler.pt"):
            calls["n"] += 1
            if calls["n"] == 2:  # the second checkpoint
                raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    cfg = make_cfg(tmp_path / "run", tiny_model_dir, synth_dir, max_steps=2, save_every=1)
    assert main(["sft", "--config", _config(tmp_path, cfg)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "checkpoint error" in err and "step-00000002 failed" in err and "No space left" in err
    left = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert left == ["step-00000001"]


def test_bad_values_name_their_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"train": {"max_steps": 2, "lr": float("nan")}}))
    assert main(["config", "--config", str(cfg)]) == 2
    assert "train.lr: expected a finite number" in capsys.readouterr().err
    assert main(["eval", "--model", "m", "--bench", "b.json", "--batch-size", "0"]) == 2
    assert "eval.batch_size must be >= 1, got 0" in " ".join(capsys.readouterr().err.split())
    assert main(["eval", "--model", "m", "--bench", "b.json", "--batch-size", "2", "eval.batch_size=3"]) == 2
    assert "given twice" in capsys.readouterr().err
