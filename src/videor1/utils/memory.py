"""Peak bytes of live tensors on CPU, where torch keeps no allocator statistics.

:class:`CPUTensorPeak` = the bytes of every tensor alive when the block starts (found through the
garbage collector, each storage counted once; a DTensor counts its local shard) + the highest level
of torch's CPU allocator during the block, as its memory profiler reports it: with
``profile_memory=True`` the CPU allocator reports every allocation with ``total_allocated``, the
bytes allocated since profiling began and not yet freed. Memory that is neither a tensor nor
allocated by torch (Python objects, gloo's own buffers) is not counted.
"""

from __future__ import annotations

import gc
from typing import Any

import torch


def live_tensor_bytes() -> int:
    """Bytes of the storages of every tensor reachable by the garbage collector, each counted once."""
    from torch.distributed.tensor import DTensor

    seen: dict[int, int] = {}
    for obj in gc.get_objects():
        if type(obj) is not torch.Tensor and not issubclass(type(obj), torch.Tensor):
            continue
        t = obj._local_tensor if isinstance(obj, DTensor) else obj
        if t.device.type != "cpu" or t.is_meta or type(t) not in (torch.Tensor, torch.nn.Parameter):
            continue
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
    return sum(seen.values())


class CPUTensorPeak:
    """``with CPUTensorPeak() as m: ...`` then ``m.peak``, ``m.base``, ``m.growth`` (bytes; module
    docstring) and ``m.where``, the profiler's op stack (innermost first) of the allocation at the peak."""

    def __enter__(self) -> CPUTensorPeak:
        from torch.profiler import ProfilerActivity, profile

        gc.collect()
        self.base = live_tensor_bytes()
        self._profile = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        self._profile.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        from torch._C._profiler import _EventType

        self._profile.__exit__(*exc)
        top, self.where = 0, []
        stack = list(self._profile.profiler.kineto_results.experimental_event_tree())
        while stack:
            event = stack.pop()
            stack.extend(event.children)
            if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
                if event.extra_fields.total_allocated > top:
                    top = event.extra_fields.total_allocated
                    where, e = [], event.parent
                    while e is not None:
                        where.append(e.name)
                        e = e.parent
                    self.where = where
        self.growth = top
        self.peak = self.base + top
