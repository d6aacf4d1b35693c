"""The generator's output is pinned: the same seed gives byte-identical items, chains of thought,
pixels, records and media files (``tests/fixtures/synth_digests.json``).

A change that alters any of them must bump ``dataset.GENERATOR_VERSION``; then rewrite the fixture with
``VIDEOR1_WRITE_SYNTH_DIGESTS=1 pytest tests/unit/test_synth_digests.py`` and commit it. The fixture
records the av / Pillow / numpy versions it was written with: encoded media (and so their digests) may
change with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import av
import numpy as np
import PIL
import pytest

from videor1.data.synth import ALL_FAMILIES, generate_dataset
from videor1.data.synth.base import SPLITS
from videor1.data.synth.cot import build_think
from videor1.data.synth.dataset import GENERATOR_VERSION
from videor1.data.synth.render import draw_frames

FIXTURE = Path(__file__).parents[1] / "fixtures" / "synth_digests.json"
WRITE = os.environ.get("VIDEOR1_WRITE_SYNTH_DIGESTS") == "1"
VERSIONS = {"av": av.__version__, "pillow": PIL.__version__, "numpy": np.__version__}
GEOMETRIES = ((56, 8), (112, 16))
"""(size, frames) of the pinned items."""


def _compare(section: str, digests: dict[str, str]) -> None:
    stored = json.loads(FIXTURE.read_text(encoding="utf-8")) if FIXTURE.exists() else {}
    if WRITE:
        stored.update(generator_version=GENERATOR_VERSION, versions=VERSIONS, **{section: digests})
        FIXTURE.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        pytest.skip(f"wrote {section} digests to {FIXTURE}")
    differ = sorted(
        k for k in stored[section].keys() | digests.keys() if stored[section].get(k) != digests.get(k)
    )
    assert not differ, (
        f"{FIXTURE}: {section} differ for {differ} (generator version {GENERATOR_VERSION}, fixture "
        f"{stored['generator_version']}; versions now {VERSIONS}, fixture {stored['versions']})"
    )


def _item_digest(name: str, split: str, size: int, frames: int) -> str:
    family = ALL_FAMILIES[name]
    digest = hashlib.sha256()
    for seed in (0, 1):
        for slot in range(12):
            rng = np.random.default_rng([seed, slot])
            item = family.generate(rng, slot, size=size, frames=frames, split=split)
            think = build_think(*family.think(item, rng), rng, "full")
            # with the family's name and kinds, as items carried them when the digests were pinned
            kinds = {"family": name, "data_type": family.data_type, "problem_type": family.problem_type}
            fields = {**dataclasses.asdict(item), **kinds, "order_dependent": family.order_dependent}
            digest.update(json.dumps(fields, sort_keys=True).encode())
            digest.update(draw_frames(item.states, size).tobytes())
            digest.update(think.encode())
    return digest.hexdigest()


def test_every_family_draws_the_pinned_items():
    digests = {
        f"{name}/{split}/{size}px/{frames}f": _item_digest(name, split, size, frames)
        for name, family in ALL_FAMILIES.items()
        for split in (SPLITS if family.cue_rate is not None else ("test",))
        for size, frames in GEOMETRIES
    }
    _compare("items", digests)


def test_dataset_files_are_the_pinned_bytes(tmp_path):
    out = generate_dataset(
        tmp_path, train=26, test=13, seed=3, families=list(ALL_FAMILIES), size=56, frames=8, jobs=1
    )
    files = sorted(p for p in out.rglob("*") if p.is_file())
    _compare("dataset", {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
