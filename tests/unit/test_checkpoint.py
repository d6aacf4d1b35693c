"""Atomic checkpoints: contents, resume state, keep_last, and a failure or kill in the middle of a save."""

from __future__ import annotations

import io
import os
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from videor1.config import Config, TrainConfig
from videor1.train import checkpoint as checkpoint_module
from videor1.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resolve_resume,
    save_checkpoint,
)
from videor1.train.distributed import Dist, all_reduce_metrics
from videor1.train.optim import build_optimizer, build_scheduler

DIST = Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


class TinyNet(torch.nn.Module):
    """A plain module with the two methods checkpoints use from an HF model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def save_pretrained(self, path, state_dict=None) -> None:
        sd = state_dict if state_dict is not None else self.state_dict()
        save_file({k: v.contiguous() for k, v in sd.items()}, str(Path(path) / "model.safetensors"))


def make_run(tmp_path: Path, *, keep_last: int = 2, total: int = 10):
    torch.manual_seed(0)
    cfg = Config(
        train=TrainConfig(output_dir=str(tmp_path / "run"), max_steps=total, lr=0.1, keep_last=keep_last)
    )
    model = TinyNet()
    opt = build_optimizer(model, cfg.train)
    sched = build_scheduler(opt, cfg.train, total)
    return cfg, model, opt, sched


def train_one(model, opt, sched) -> None:
    model(torch.randn(2, 4)).pow(2).sum().backward()
    opt.step()
    opt.zero_grad()
    sched.step()


def save(cfg, step, model, opt, sched, **kw):
    return save_checkpoint(
        cfg,
        step,
        model=model,
        processor=None,
        optimizer=opt,
        scheduler=sched,
        dist=DIST,
        train_state={"total_steps": cfg.train.max_steps, "sampler": {"position": step}},
        **kw,
    )


def test_checkpoint_contents_and_exact_restore(tmp_path):
    cfg, model, opt, sched = make_run(tmp_path)
    for _ in range(3):
        train_one(model, opt, sched)
    path = save(cfg, 3, model, opt, sched)
    assert path.name == "step-00000003"
    for name in ("model.safetensors", "scheduler.pt", "config.yaml", "trainer_state.json"):
        assert (path / name).is_file(), name
    assert (path / "rng" / "rank-00000.pt").is_file()
    assert (path / "optimizer" / ".metadata").is_file() and (
        path / "optimizer" / "param_groups.json"
    ).is_file()
    expect = (random.random(), np.random.rand())  # Python / NumPy draws right after the save
    train_one(model, opt, sched)  # step 4 of the uninterrupted run (draws from torch's generator)

    # Fresh objects restored from the checkpoint reproduce the draws and step 4 exactly.
    _, model2, opt2, sched2 = make_run(tmp_path)
    torch.manual_seed(123)  # a different generator state that the restore must overwrite
    model2.load_state_dict(load_file(str(path / "model.safetensors")))
    state = load_checkpoint(
        path, model=model2, optimizer=opt2, scheduler=sched2, dist=DIST, expected_total_steps=10
    )
    assert state["step"] == 3 and state["sampler"] == {"position": 3} and state["world_size"] == 1
    assert sched2.last_epoch == 3 and opt2.param_groups[0]["lr"] == pytest.approx(0.1)
    assert (random.random(), np.random.rand()) == expect
    train_one(model2, opt2, sched2)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_resume_refuses_a_different_plan(tmp_path):
    cfg, model, opt, sched = make_run(tmp_path)
    path = save(cfg, 1, model, opt, sched)
    with pytest.raises(CheckpointError, match="planned for 10 steps but this config gives 20"):
        load_checkpoint(path, model=model, optimizer=opt, scheduler=sched, dist=DIST, expected_total_steps=20)
    two = Dist(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(CheckpointError, match="saved by 1 process"):
        load_checkpoint(path, model=model, optimizer=opt, scheduler=sched, dist=two)


def test_keep_last_prunes_oldest(tmp_path):
    cfg, model, opt, sched = make_run(tmp_path, keep_last=2)
    for step in (1, 2, 3, 4):
        save(cfg, step, model, opt, sched)
    assert [p.name for p in list_checkpoints(cfg.train.output_dir)] == ["step-00000003", "step-00000004"]
    save(cfg, 4, model, opt, sched)  # re-saving an existing step replaces it
    assert [p.name for p in list_checkpoints(cfg.train.output_dir)] == ["step-00000003", "step-00000004"]


def test_resolve_resume(tmp_path):
    cfg, model, opt, sched = make_run(tmp_path)
    out = cfg.train.output_dir
    assert resolve_resume(None, out) is None
    assert resolve_resume("auto", out) is None  # nothing saved yet: start fresh
    path = save(cfg, 5, model, opt, sched)
    assert resolve_resume("auto", out) == path
    assert resolve_resume(str(path), out) == path
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        resolve_resume(None, out)  # a fresh start would mix two runs in one directory
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        resolve_resume(str(tmp_path / "nowhere"), out)


def test_failure_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    cfg, model, opt, sched = make_run(tmp_path)
    first = save(cfg, 1, model, opt, sched)
    before = load_file(str(first / "model.safetensors"))
    train_one(model, opt, sched)

    real_save = torch.save

    def failing_save(obj, f, *a, **kw):
        if str(f).endswith("scheduler.pt"):  # the model is already written at this point
            raise OSError("disk full (injected)")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save)
    with pytest.raises(
        checkpoint_module.CheckpointError, match=r"step-00000002 failed \(OSError: disk full \(injected\)\)"
    ):
        save(cfg, 2, model, opt, sched)
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)

    assert latest_checkpoint(cfg.train.output_dir) == first
    assert not (first.parent / "step-00000002").exists()
    after = load_file(str(first / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert resolve_resume("auto", cfg.train.output_dir) == first
    # The next save clears the leftover temp directory and succeeds.
    second = save(cfg, 2, model, opt, sched)
    assert latest_checkpoint(cfg.train.output_dir) == second
    assert not any(p.name.startswith(".tmp-") for p in second.parent.iterdir())


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    from unit.test_checkpoint import make_run, save, train_one
    from videor1.train import checkpoint as checkpoint_module
    from pathlib import Path

    cfg, model, opt, sched = make_run(Path({tmp!r}))
    save(cfg, 1, model, opt, sched)
    train_one(model, opt, sched)
    real_save = torch.save
    def killing_save(obj, f, *a, **kw):
        if str(f).endswith("scheduler.pt"):
            real_save(obj, f, *a, **kw)
            os.kill(os.getpid(), signal.SIGKILL)  # die with half a checkpoint on disk
        return real_save(obj, f, *a, **kw)
    checkpoint_module.torch.save = killing_save
    save(cfg, 2, model, opt, sched)
    """
)


def test_kill_during_save_keeps_previous_checkpoint(tmp_path):
    tests = str(Path(__file__).resolve().parents[1])
    script = KILL_SCRIPT.format(tests=tests, tmp=str(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr
    root = tmp_path / "run" / "checkpoints"
    assert (root / ".tmp-step-00000002" / "model.safetensors").is_file()  # the save really was cut midway
    assert not (root / "step-00000002").exists()
    latest = resolve_resume("auto", tmp_path / "run")
    assert latest == root / "step-00000001"
    _, model, opt, sched = make_run(tmp_path)
    model.load_state_dict(load_file(str(latest / "model.safetensors")))
    assert load_checkpoint(latest, model=model, optimizer=opt, scheduler=sched, dist=DIST)["step"] == 1


def test_all_reduce_metrics_single_process_is_identity():
    assert all_reduce_metrics({"loss": 2.5, "tokens": 7}, DIST) == {"loss": 2.5, "tokens": 7.0}
    assert all_reduce_metrics({}, DIST) == {}


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: what a planted checkpoint file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _plant(path: Path, name: str, marker: Path) -> None:
    """Replace ``path / name`` with a file whose loading would run ``os.mkdir(marker)``."""
    payload = _Payload(marker)
    if name.endswith(".metadata"):  # DCP's own format is a plain pickle
        with (path / name).open("wb") as f:
            pickle.dump({"payload": payload}, f)
    elif name.endswith(".distcp"):  # a tensor file: point every entry of the metadata at the payload
        from videor1.train.sharded import read_metadata

        buffer = io.BytesIO()
        torch.save({"payload": payload}, buffer)
        (path / name).write_bytes(buffer.getvalue())
        metadata = read_metadata((path / name).parent)
        for info in metadata.storage_data.values():
            info.offset, info.length = 0, len(buffer.getvalue())
        with ((path / name).parent / ".metadata").open("wb") as f:
            pickle.dump(metadata, f)
    else:
        torch.save({"payload": payload, "kept": torch.load(path / name, weights_only=True)}, path / name)


@pytest.mark.parametrize(
    "name", ["optimizer/.metadata", "optimizer/__0_0.distcp", "scheduler.pt", "rng/rank-00000.pt"]
)
def test_resume_refuses_a_checkpoint_file_that_would_run_code(tmp_path, name):
    cfg, model, opt, sched = make_run(tmp_path)
    train_one(model, opt, sched)
    path = save(cfg, 1, model, opt, sched)
    marker = tmp_path / "payload-ran"
    _plant(path, name, marker)
    _, model2, opt2, sched2 = make_run(tmp_path)
    refused = (
        r"optimizer(/.metadata)?: refused to load it"
        if "optimizer" in name
        else rf"{name}: refused to load it"
    )
    with pytest.raises(CheckpointError, match=rf"{refused}.*Nothing in it was run"):
        load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2, dist=DIST)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        ("pathlib", "PosixPath"),
        ("torch.serialization", "_get_layout"),
        ("torch.distributed.checkpoint.metadata", "Metadata"),
    ],
)
def test_dcp_metadata_cannot_set_attributes_on_the_allowed_classes_and_functions(tmp_path, owner, name):
    """Pickle's BUILD sets attributes on whatever object is on the stack, the allowed globals
    themselves included: a planted ``.metadata`` could otherwise rewrite ``pathlib.PosixPath`` or
    ``torch.serialization._get_layout`` for the whole process, then still hand back valid metadata."""
    import importlib

    from videor1.train.sharded import ShardedStateError, read_metadata, save_sharded

    directory = tmp_path / "state"
    save_sharded({"w": torch.arange(4.0)}, directory)
    real = (directory / ".metadata").read_bytes()
    target = getattr(importlib.import_module(owner), name)
    before = target.__dict__.get("planted", "absent")
    prefix = (
        b"\x80\x02c"
        + f"{owner}\n{name}\n".encode()  # GLOBAL: the allowed object itself
        + b"N}X\x07\x00\x00\x00plantedN"
        + b"s\x86b0"  # BUILD with slot state {'planted': None}, POP
    )
    (directory / ".metadata").write_bytes(prefix + real)
    with pytest.raises(ShardedStateError, match="refused to load it"):
        read_metadata(directory)
    assert target.__dict__.get("planted", "absent") == before


def test_no_torch_load_in_src_unpickles_objects():
    import ast

    src = Path(__file__).resolve().parents[2] / "src"
    offenders = []
    for file in src.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                safe = any(
                    k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                if not safe:
                    offenders.append(f"{file.relative_to(src)}:{node.lineno}")
    assert offenders == []


DISK_FULL = (
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
)


def test_disk_full_while_writing_the_model_is_one_message_exit_2_and_no_temp_dir(
    tmp_path, monkeypatch, capsys
):
    from safetensors import SafetensorError

    from videor1.cli import main

    def full_disk(*args, **kwargs):
        raise SafetensorError(DISK_FULL)

    monkeypatch.setattr(sys.modules[__name__], "save_file", full_disk)  # TinyNet.save_pretrained's writer
    cfg, model, opt, sched = make_run(tmp_path)
    with pytest.raises(
        CheckpointError, match=r"checkpoints/step-00000001 failed \(SafetensorError: .*No space left"
    ):
        save(cfg, 1, model, opt, sched)
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []  # .tmp-step-00000001 removed

    def sft_that_saves(cfg, **kwargs):
        run_cfg, run_model, run_opt, run_sched = make_run(tmp_path)
        return save(run_cfg, 1, run_model, run_opt, run_sched)

    monkeypatch.setattr("videor1.train.sft.train", sft_that_saves)
    config = tmp_path / "sft.yaml"
    config.write_text("train:\n  max_steps: 1\n")
    capsys.readouterr()
    assert main(["sft", "--config", str(config)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "step-00000001" in errors[0] and "No space left on device" in errors[0]
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []


def test_disk_full_while_writing_the_sharded_optimiser_state_names_the_checkpoint(tmp_path, monkeypatch):
    from torch.distributed.checkpoint import FileSystemWriter

    cfg, model, opt, sched = make_run(tmp_path)
    train_one(model, opt, sched)
    first = save(cfg, 1, model, opt, sched)

    def full_disk(self, plan, planner):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemWriter, "write_data", full_disk)
    with pytest.raises(CheckpointError, match=r"step-00000002 failed \(OSError: .*No space left on device"):
        save(cfg, 2, model, opt, sched)
    assert sorted(p.name for p in first.parent.iterdir()) == ["step-00000001"]


# --------------------------------------------------------------------------------------------------
# A resume refuses settings that change the run
# --------------------------------------------------------------------------------------------------


def saved_with_data(tmp_path: Path):
    """A checkpoint of a run over a two-record training file; returns (cfg, checkpoint, data file)."""
    from videor1.train.checkpoint import DATA_FINGERPRINT
    from videor1.train.data import data_fingerprint

    cfg, model, opt, sched = make_run(tmp_path)
    data = tmp_path / "train.json"
    data.write_text('[{"problem": "a"}, {"problem": "b"}]')
    cfg.data.train_file = str(data)
    cfg.model.path = str(tmp_path / "model")
    train_state = {"total_steps": 10, "sampler": {}, DATA_FINGERPRINT: data_fingerprint(data)}
    path = save_checkpoint(
        cfg,
        1,
        model=model,
        processor=None,
        optimizer=opt,
        scheduler=sched,
        dist=DIST,
        train_state=train_state,
    )
    return cfg, path, data


def changed(cfg: Config, *overrides: str) -> Config:
    """``cfg`` with dotted overrides, through the YAML loader as a user's resume would be."""
    import tempfile

    from videor1.config import load_config, save_config

    with tempfile.TemporaryDirectory() as tmp:
        save_config(cfg, Path(tmp) / "config.yaml")
        return load_config(Path(tmp) / "config.yaml", list(overrides))


def test_resume_refuses_and_lists_every_setting_that_changes_the_run(tmp_path):
    from videor1.train.resume_settings import check_resume_settings

    cfg, path, data = saved_with_data(tmp_path)
    data.write_text('[{"problem": "x"}, {"problem": "y"}]')  # same length, other records
    new = changed(
        cfg,
        f"model.path={tmp_path / 'other-model'}",
        "rl.num_generations=2",
        "rl.sampling.temperature=0.7",
        "data.media.max_frames=8",
        "train.seed=1",
        "train.warmup_steps=2",
    )
    with pytest.raises(CheckpointError) as e:
        check_resume_settings(new, path, DIST, recipe="rl")
    message = str(e.value)
    for key in (
        "model.path",
        "rl.num_generations: 8 -> 2",
        "rl.sampling.temperature: 1.0 -> 0.7",
        "data.media.max_frames: 16 -> 8",
        "train.seed: 0 -> 1",
        "train.warmup_steps: 0 -> 2",
        "data.train_file (content): 'sha256 ",
    ):
        assert key in message, key
    assert "--allow-changed model.path,data.media.max_frames,train.seed," in message
    # the SFT recipe never reads the rl section
    with pytest.raises(CheckpointError) as e:
        check_resume_settings(changed(cfg, "rl.num_generations=2", "train.seed=1"), path, DIST, recipe="sft")
    assert "train.seed" in str(e.value) and "rl.num_generations" not in str(e.value)


def test_settings_that_cannot_change_the_run_are_not_differences(tmp_path):
    from videor1.train.resume_settings import check_resume_settings

    cfg, path, _ = saved_with_data(tmp_path)
    new = changed(
        cfg,
        f"train.output_dir={tmp_path / 'moved'}",
        "train.log_every=5",
        "train.save_every=3",
        "train.keep_last=0",
        "eval.sampling.max_new_tokens=8",
        "annotate.threshold=0.5",
    )
    check_resume_settings(new, path, DIST, recipe="rl")
    assert not (tmp_path / "moved" / "changed_on_resume.jsonl").exists()


def test_allowed_changes_are_logged_and_recorded(tmp_path, caplog):
    import json

    from videor1.train.resume_settings import check_resume_settings

    cfg, path, data = saved_with_data(tmp_path)
    data.write_text('[{"problem": "x"}, {"problem": "y"}]')
    new = changed(cfg, "train.seed=1", "rl.sampling.top_p=0.5")
    new.train.allow_changed = ["train.seed", "rl.sampling", "data.train_file"]
    check_resume_settings(new, path, DIST, recipe="rl")
    assert "train.seed: 0 -> 1" in caplog.text and "rl.sampling.top_p: 0.95 -> 0.5" in caplog.text
    (record,) = [json.loads(line) for line in (Path(cfg.train.output_dir) / "changed_on_resume.jsonl").open()]
    assert record["checkpoint"] == str(path)
    assert set(record["changed"]) == {"train.seed", "rl.sampling.top_p", "data.train_file (content)"}


def test_a_value_the_optimiser_state_keeps_cannot_be_allowed(tmp_path):
    from videor1.config import ConfigError
    from videor1.train.resume_settings import check_resume_settings

    cfg, path, _ = saved_with_data(tmp_path)
    new = changed(cfg, "train.lr=0.05")
    new.train.allow_changed = ["train.lr"]
    with pytest.raises(CheckpointError, match=r"different train.lr\n  train.lr: 0.1 -> 0.05\n.*scheduler.pt"):
        check_resume_settings(new, path, DIST, recipe="sft")
    new.train.allow_changed = ["train.lrr"]
    with pytest.raises(ConfigError, match="train.allow_changed: 'train.lrr' is not a config key"):
        check_resume_settings(new, path, DIST, recipe="sft")


def test_a_checkpoint_without_fp32_masters_and_rounded_weights_is_refused(tmp_path):
    from videor1.config import ModelConfig
    from videor1.train.checkpoint import model_source_for_resume

    checkpoint = tmp_path / "step-00000001"
    checkpoint.mkdir()
    save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, str(checkpoint / "model.safetensors"))
    with pytest.raises(CheckpointError, match="no masters/ .* BF16, not float32"):
        model_source_for_resume(ModelConfig(path="base"), checkpoint)
    save_file({"w": torch.ones(2)}, str(checkpoint / "model.safetensors"))
    assert model_source_for_resume(ModelConfig(path="base"), checkpoint).path == str(checkpoint)


def test_the_same_records_under_another_path_are_not_a_difference(tmp_path):
    import shutil

    from videor1.train.resume_settings import check_resume_settings

    cfg, path, data = saved_with_data(tmp_path)
    moved = tmp_path / "moved.json"
    shutil.copy(data, moved)
    check_resume_settings(changed(cfg, f"data.train_file={moved}"), path, DIST, recipe="sft")
