"""Sharded trainer state with ``torch.distributed.checkpoint`` (DCP), read without running any code.

A checkpoint's fp32 master weights (``masters/``) and AdamW state (``optimizer/``) are DCP
directories: every rank writes the part of each tensor it holds (its FSDP2 shard; a tensor that
every rank holds in full, as under DDP, is written once) and reads back only its part, so no
process ever holds the whole optimiser state of a 7B model. A DCP directory is one ``.metadata``
file (which tensor lives where) and one ``__<rank>_<n>.distcp`` file per writer.

What DCP leaves unsafe, and what this module does instead:

- ``.metadata`` is a pickle that DCP reads with ``pickle.load``: anything in it runs. Here it is
  read by :class:`_MetadataUnpickler`, which builds only the allow-listed DCP metadata classes,
  ``torch.Size``, dtypes, layouts and paths, and refuses every other global before it is looked up,
  and any attempt to set attributes on an allowed class or function itself (pickle's ``BUILD``
  would otherwise rewrite, say, ``pathlib.PosixPath`` for the whole process).
- Non-tensor values are stored as pickles and read back with ``torch.load(weights_only=False)``.
  Nothing but tensors is ever saved here (the optimiser's hyperparameters go to JSON next to it),
  and :class:`_TensorsOnlyPlanner` refuses a non-tensor entry that a planted ``.metadata`` declares.
- Tensor entries are read by DCP itself with ``torch.load(weights_only=True)``; a file that holds
  anything else is refused by that loader, and the refusal reaches the caller as
  :class:`ShardedStateError` naming the directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist

METADATA = ".metadata"


class ShardedStateError(RuntimeError):
    """A DCP directory is missing, damaged, or holds something other than tensors."""


# --------------------------------------------------------------------------------------------------
# Reading .metadata without unpickling arbitrary objects
# --------------------------------------------------------------------------------------------------

_ALLOWED = {
    ("torch.distributed.checkpoint.metadata", name)
    for name in (
        "Metadata",
        "MetadataIndex",
        "StorageMeta",
        "TensorProperties",
        "TensorStorageMetadata",
        "ChunkStorageMetadata",
        "_MEM_FORMAT_ENCODING",
    )
} | {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"),
    ("collections", "OrderedDict"),
}
"""Every global a DCP ``.metadata`` of tensors needs (dtypes are checked separately): classes that
only hold data, and constructors of plain values."""


class _MetadataUnpickler(pickle._Unpickler):  # the Python unpickler: its BUILD can be checked
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in DCP metadata")

    def load_build(self) -> None:
        # BUILD sets attributes on the object below it on the stack; on an allowed class or function
        # itself (not an instance) that would rewrite it for the whole process
        target = self.stack[-2]
        if isinstance(target, type) or callable(target):
            raise pickle.UnpicklingError(f"BUILD on {target!r} is not allowed in DCP metadata")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def read_metadata(directory: str | os.PathLike) -> Any:
    """The ``Metadata`` of a DCP directory, unpickled with the allow-list above (module docstring)."""
    from torch.distributed.checkpoint.metadata import Metadata

    file = Path(directory) / METADATA
    if not file.is_file():
        raise ShardedStateError(f"{directory}: not a complete sharded state (no {METADATA})")
    try:
        with file.open("rb") as f:
            metadata = _MetadataUnpickler(f).load()
    except pickle.UnpicklingError as e:
        raise ShardedStateError(
            f"{file}: refused to load it: it holds Python objects other than DCP's tensor metadata ({e}); "
            "this videor1 never writes any, so it was altered or comes from another tool. Nothing in it "
            "was run; resume from a checkpoint you trust"
        ) from None
    except (EOFError, AttributeError, TypeError, ValueError, IndexError, KeyError) as e:
        raise ShardedStateError(
            f"{file}: unreadable ({type(e).__name__}: {e}); the checkpoint is damaged"
        ) from e
    if not isinstance(metadata, Metadata):
        raise ShardedStateError(f"{file}: holds a {type(metadata).__name__}, not DCP metadata; damaged")
    return metadata


def _reader(directory: Path) -> Any:
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta

    class SafeReader(FileSystemReader):
        def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("rank") is not None:
                raise ShardedStateError(f"{directory}: per-rank metadata files are not supported")
            metadata = read_metadata(directory)
            if metadata.storage_meta is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return SafeReader(directory)


def _planner() -> Any:
    from torch.distributed.checkpoint import DefaultLoadPlanner

    class TensorsOnlyPlanner(DefaultLoadPlanner):
        def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
            raise ShardedStateError(
                f"{read_item.dest_index.fqn}: the checkpoint declares a pickled object where this "
                "videor1 stores a tensor; refused (nothing was unpickled)"
            )

    return TensorsOnlyPlanner()


# --------------------------------------------------------------------------------------------------
# Save and load
# --------------------------------------------------------------------------------------------------


def _tensors_only(state: dict[str, Any], where: str = "") -> None:
    for key, value in state.items():
        if isinstance(value, dict):
            _tensors_only(value, f"{where}{key}.")
        elif not isinstance(value, torch.Tensor):
            raise TypeError(f"{where}{key}: sharded state holds tensors only, got {type(value).__name__}")


def save_sharded(state: dict[str, Any], directory: str | os.PathLike) -> None:
    """Write ``state`` (nested dicts of tensors / FSDP2 DTensors) to ``directory``; every rank calls it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException

    _tensors_only(state)
    try:
        with _single_process_quietly():
            dcp.save(state, storage_writer=dcp.FileSystemWriter(str(directory)), no_dist=not _distributed())
    except CheckpointException as e:  # a BaseException: hand the callers the rank's own error
        causes = [err for err, _ in e.failures.values()]
        local = next((c for c in causes if isinstance(c, (OSError, RuntimeError))), None)
        if local is not None:
            raise local from None
        raise RuntimeError(f"writing {directory} failed: {_describe(causes) or e}") from None


def load_sharded(state: dict[str, Any], directory: str | os.PathLike) -> None:
    """Fill ``state``'s tensors in place from ``directory`` (each rank reads the parts it holds);
    every key of ``state`` must be in the directory. Every rank calls it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException

    _tensors_only(state)
    directory = Path(directory)
    read_metadata(directory)  # refuse a planted or damaged .metadata before any collective starts
    try:
        with _single_process_quietly():
            dcp.load(state, storage_reader=_reader(directory), planner=_planner(), no_dist=not _distributed())
    except CheckpointException as e:  # a BaseException carrying each rank's own error
        causes = [err for err, _ in e.failures.values()]
        _raise_refusal(directory, causes)
        raise ShardedStateError(f"{directory}: unreadable ({_describe(causes) or e}); damaged") from None
    except pickle.UnpicklingError as e:
        _raise_refusal(directory, [e])
    except RuntimeError as e:
        if isinstance(e, ShardedStateError):
            raise
        raise ShardedStateError(f"{directory}: unreadable ({type(e).__name__}: {e}); damaged") from e


def _raise_refusal(directory: Path, causes: list[BaseException]) -> None:
    for cause in causes:
        if isinstance(cause, ShardedStateError):
            raise ShardedStateError(f"{directory}: {cause}") from None
        if isinstance(cause, pickle.UnpicklingError):
            blocked = [line for line in str(cause).splitlines() if "GLOBAL" in line][:1]
            raise ShardedStateError(
                f"{directory}: refused to load it: a tensor file holds Python objects other than tensors "
                f"({(blocked or [type(cause).__name__])[0].strip()}). Nothing in it was run; resume from a "
                "checkpoint you trust"
            ) from None


def _describe(causes: list[BaseException]) -> str:
    return "; ".join(f"{type(c).__name__}: {str(c).splitlines()[0] if str(c) else ''}" for c in causes[:2])


def read_sharded(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a DCP directory in full, by flattened key (one process: tests and tools)."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    metadata = read_metadata(directory)
    out = {}
    for key, md in metadata.state_dict_metadata.items():
        if not isinstance(md, TensorStorageMetadata):
            raise ShardedStateError(f"{directory}: {key} is not a tensor; refused")
        out[key] = torch.empty(md.size, dtype=md.properties.dtype)
    load_sharded(out, directory)
    return out


@contextlib.contextmanager
def _single_process_quietly() -> Iterator[None]:
    """DCP warns on every call without a process group, although a single process is meant here."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="torch.distributed is (disabled, )?unavailable or uninitialized"
        )
        yield


def _distributed() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()
