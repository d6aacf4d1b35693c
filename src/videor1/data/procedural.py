"""Procedural data only where the config owns it, never in place of a path that is missing by mistake.

A config with a ``data.synth`` section owns ``data.media_root``: the first run generates the
procedural dataset there (``videor1.data.synth.generate_from_config``), later runs reuse it. Every
other case is an error that names the key and the path, and nothing is written:

- a missing file that is not one of the generator's outputs directly under ``data.media_root``
  (``train.json``, ``train_cot.json``, ``test.json``): a typo such as ``data/trian.json``;
- a missing file while ``data.media_root`` already holds other files: the generator never writes
  into a directory it did not create (it would overwrite a user's ``train.json``);
- a dataset already there that was generated with other ``data.synth`` settings (``meta.json``):
  using it would silently ignore the section.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from videor1.config import ConfigError, DataConfig
from videor1.utils.logging import get_logger

log = get_logger(__name__)

SYNTH_FILES = ("train.json", "train_cot.json", "test.json")
"""The records files the generator writes directly under its output directory."""


def missing_files(wanted: Mapping[str, str | Path]) -> dict[str, Path]:
    """The entries of ``wanted`` (dotted key -> path) whose path does not exist."""
    return {key: Path(path) for key, path in wanted.items() if not Path(path).exists()}


def check_generation(data: DataConfig, wanted: Mapping[str, str | Path]) -> bool:
    """Whether ``data.synth`` must generate now to provide ``wanted``; raises when it may not.

    ``wanted`` maps the dotted key that names each file (``data.train_file``, ``eval.benches[0]``)
    to its path. Returns False when every file exists (after checking a generated dataset's
    ``meta.json`` against ``data.synth``).
    """
    missing = missing_files(wanted)
    root = Path(data.media_root)
    if not missing:
        _check_existing(data, root)
        return False
    key, path = next(iter(missing.items()))
    if data.synth is None:
        raise ConfigError(f"{key} {path} does not exist")
    for key, path in missing.items():
        if path.name not in SYNTH_FILES or path.parent.resolve() != root.resolve():
            raise ConfigError(
                f"{key} {path} does not exist, and data.synth only writes {', '.join(SYNTH_FILES)} "
                f"directly under data.media_root ({root}); fix the path"
            )
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(
            f"{key} {path} does not exist and data.media_root {root} already holds other files; data.synth "
            f"only generates into a new or empty directory (fix the path, or delete {root} to regenerate)"
        )
    return True


def generate_for(data: DataConfig) -> Path:
    """Generate ``data.synth`` into ``data.media_root`` (after :func:`check_generation` said so)."""
    from videor1.data.synth import generate_from_config

    assert data.synth is not None
    log.info("generating the procedural dataset of data.synth into data.media_root %s", data.media_root)
    return generate_from_config(data.synth, data.media_root)


def ensure_procedural(data: DataConfig, wanted: Mapping[str, str | Path]) -> None:
    """Single-process :func:`check_generation` + :func:`generate_for`, then every file must exist."""
    if check_generation(data, wanted):
        generate_for(data)
        for key, path in missing_files(wanted).items():
            raise ConfigError(f"data.synth generated {data.media_root} but {key} {path} is still missing")


def _check_existing(data: DataConfig, root: Path) -> None:
    if data.synth is None:
        return
    meta_file = root / "meta.json"
    if not meta_file.is_file():
        log.warning(
            "data.synth is set but %s has no meta.json (not a generated dataset): its files are used as they are",
            root,
        )
        return
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    synth = data.synth
    wanted = {
        "train": synth.train,
        "test": synth.test,
        "seed": synth.seed,
        "size": synth.size,
        "frames": synth.frames,
    }
    found = {
        "train": meta.get("counts", {}).get("train"),
        "test": meta.get("counts", {}).get("test"),
        "seed": meta.get("seed"),
        "size": meta.get("size"),
        "frames": meta.get("frames"),
    }
    if synth.families:
        wanted["families"] = sorted(synth.families)
        found["families"] = sorted(meta.get("families", {}))
    differ = [
        f"data.synth.{k}={wanted[k]!r} (the files have {found[k]!r})" for k in wanted if wanted[k] != found[k]
    ]
    if differ:
        raise ConfigError(
            f"{meta_file} was generated with other settings: {'; '.join(differ)}; delete {root} to "
            "regenerate, or set data.synth=null to use the files as they are"
        )
