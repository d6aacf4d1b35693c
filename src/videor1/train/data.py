"""Training data for the recipes: dataset bootstrap, a resumable distributed sampler, batch loading.

``StepSampler`` maps an optimiser step to the records every rank reads, with no hidden iterator
state: epoch ``e = step // steps_per_epoch`` uses the permutation ``randperm(n, seed + e)``; the step's
global batch is the next ``per_device x accumulation x world`` records of it; micro-batch ``m`` of
rank ``r`` is the slice ``[(m * world + r) * per_device, ... + per_device)`` of that global batch. So
ranks never share a record within an epoch, and resuming at step ``k`` reads exactly what an
uninterrupted run would have read. The last incomplete global batch of an epoch is dropped.

``make_loader`` wraps it in a ``torch.utils.data.DataLoader`` whose workers decode media
(``videor1.data.media.load_media``) and build model inputs with a caller-supplied collate function,
so decoding overlaps the training step when ``train.num_workers > 0``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from videor1.config import Config, ConfigError, DataConfig, MediaConfig
from videor1.train.distributed import Dist, barrier
from videor1.types import ImageInput, Sample, VideoClip, VisionGeometry
from videor1.utils.logging import get_logger

log = get_logger(__name__)


def ensure_data(data_cfg: DataConfig, dist: Dist | None = None) -> Path:
    """The training file, generating the procedural dataset of ``data.synth`` first when the config owns it.

    ``videor1.data.procedural.check_generation`` decides (on every rank, so all raise alike): only
    into a missing or empty ``data.media_root`` and only for a ``data.train_file`` the generator
    writes; rank 0 generates, the others wait. Any other missing path raises naming the key.
    """
    from videor1.data.procedural import check_generation, generate_for

    if not data_cfg.train_file:
        raise ConfigError("data.train_file is required")
    train_file = Path(data_cfg.train_file)
    wanted = {"data.train_file": train_file}
    generate = check_generation(data_cfg, wanted)
    if dist is not None:
        barrier(dist)  # every rank has decided before rank 0 starts writing
    if generate and (dist is None or dist.is_main):
        generate_for(data_cfg)
    if dist is not None:
        barrier(dist)
    if not train_file.exists():
        raise ConfigError(
            f"data.synth generated {data_cfg.media_root} but data.train_file {train_file} is missing"
        )
    return train_file


class StepSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches (lists of record indices) for steps ``[start_step, end_step)``."""

    def __init__(
        self,
        num_samples: int,
        *,
        per_device: int,
        accumulation: int,
        dist: Dist,
        seed: int,
        start_step: int,
        end_step: int,
        shuffle: bool = True,
    ) -> None:
        self.num_samples = num_samples
        self.per_device = per_device
        self.accumulation = accumulation
        self.world_size = dist.world_size
        self.rank = dist.rank
        self.seed = seed
        self.start_step = start_step
        self.end_step = end_step
        self.shuffle = shuffle
        self.global_batch = per_device * accumulation * dist.world_size
        if num_samples < self.global_batch:
            raise ConfigError(f"{num_samples} samples is fewer than one global batch of {self.global_batch}")
        self.steps_per_epoch = num_samples // self.global_batch

    def order(self, epoch: int) -> list[int]:
        """Record indices in the order epoch ``epoch`` reads them."""
        if not self.shuffle:
            return list(range(self.num_samples))
        g = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.num_samples, generator=g).tolist()

    def step_micro_batches(self, step: int) -> list[list[int]]:
        """This rank's ``accumulation`` micro-batches for optimiser step ``step`` (0-based)."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        order = self.order(epoch)
        batch = order[pos * self.global_batch : (pos + 1) * self.global_batch]
        b = self.per_device
        return [
            batch[(m * self.world_size + self.rank) * b : (m * self.world_size + self.rank + 1) * b]
            for m in range(self.accumulation)
        ]

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.end_step):
            yield from self.step_micro_batches(step)

    def __len__(self) -> int:
        return (self.end_step - self.start_step) * self.accumulation

    def state_dict(self, next_step: int) -> dict[str, Any]:
        """What a checkpoint records: enough to check that a resume reads the same stream."""
        return {
            "next_step": next_step,
            "epoch": next_step / self.steps_per_epoch,
            "num_samples": self.num_samples,
            "global_batch": self.global_batch,
            "seed": self.seed,
            "shuffle": self.shuffle,
        }

    def check_resume(self, state: dict[str, Any], where: str) -> None:
        """Raise when a checkpoint's sampler state describes a different data stream."""
        for key in ("num_samples", "global_batch", "seed", "shuffle"):
            now = getattr(self, key)
            if state.get(key) != now:
                raise ConfigError(
                    f"{where}: sampler {key} was {state.get(key)!r} when saved and is {now!r} now; "
                    "resuming would read different data (keep the dataset, batch shape and seed)"
                )


class MediaDataset(Dataset):
    """Record ``i`` → ``(sample, decoded media)`` with the configured frame and pixel budgets, sized for
    the model's ``geometry`` (``FamilyAdapter.geometry``)."""

    def __init__(
        self,
        samples: Sequence[Sample],
        media_root: str | os.PathLike,
        media: MediaConfig,
        geometry: VisionGeometry,
    ) -> None:
        self.samples = samples
        self.media_root = media_root
        self.media = media
        self.geometry = geometry

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Sample, VideoClip | ImageInput]:
        from videor1.data.media import load_media

        sample = self.samples[index]
        return sample, load_media(sample, self.media_root, self.media, geometry=self.geometry)


def make_loader(
    cfg: Config,
    samples: Sequence[Sample],
    sampler: StepSampler,
    collate_fn: Callable[[list[tuple[Sample, Any]]], Any],
    *,
    geometry: VisionGeometry,
) -> DataLoader:
    """A DataLoader over ``sampler``'s micro-batches; ``collate_fn`` receives ``[(sample, media), ...]``.

    Media are sized for ``geometry``, the model's ``FamilyAdapter.geometry``.
    """
    workers = cfg.train.num_workers
    return DataLoader(
        MediaDataset(samples, cfg.data.media_root, cfg.data.media, geometry),
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=workers,
        prefetch_factor=2 if workers > 0 else None,
        persistent_workers=False,
        # Its own generator: starting an iterator must not draw from the global torch RNG, or a resumed
        # run (iterator created after the RNG restore) would see different dropout masks.
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )


def data_fingerprint(train_file: str | os.PathLike) -> str:
    """SHA-256 over the training records (a file, or every file of a ``datasets`` directory, by relative path)."""
    root = Path(train_file)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        for f in files:
            if root.is_dir():
                digest.update(str(f.relative_to(root)).encode() + b"\0")
            with f.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]


_FINGERPRINTS: dict[tuple[tuple[str, int, int], ...], str] = {}
