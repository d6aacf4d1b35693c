"""Peak bytes of live tensors on CPU, where torch keeps no allocator statistics.

:class:`CPUTensorPeak` = the bytes of every tensor alive when the block starts (found through the
garbage collector, each storage counted once; a DTensor counts its local shard) + the highest level
of torch's CPU allocator during the block, as its memory profiler reports it: with
``profile_memory=True`` the CPU allocator reports every allocation with ``total_allocated``, the
bytes allocated since profiling began and not yet freed. Memory that is neither a tensor nor
allocated by torch (Python objects, gloo's own buffers) is not counted.

One departure from the plain profiler: c10's CPU memory reporter (``ProfiledCPUMemoryReporter`` in
``c10/core/CPUAllocator.cpp``) subtracts a free only when the freeing thread has the profiler
enabled or its ``caffe2_report_cpu_memory_usage`` flag is set. Collective buffers allocated on the
main thread are often released on one of gloo's worker threads, whichever drops the last reference;
those frees were lost, so the "peak" grew with every collective by an amount that depended on thread
timing (measured on a step with gradient accumulation, 2 processes: 60-81 MiB across runs of one
config, higher on a loaded machine). The block therefore sets that flag (through ``ctypes``, c10
exposes no Python setter) for its duration, so frees on every thread are subtracted.
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
        self._flag = _report_flag()
        self._flag_before = self._flag.value
        self._flag.value = True  # count frees made on any thread (module docstring)
        self._profile = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        self._profile.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        from torch._C._profiler import _EventType

        self._profile.__exit__(*exc)
        self._flag.value = self._flag_before
        events = []
        stack = list(self._profile.profiler.kineto_results.experimental_event_tree())
        while stack:
            event = stack.pop()
            stack.extend(event.children)
            if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
                events.append(event)
        self.growth, self.where = 0, []
        if not events:
            self.peak = self.base
            return
        events.sort(key=lambda e: e.start_time_ns)
        # the reporter's total counts from when its table was last empty, not from this block
        first = events[0].extra_fields
        offset = first.total_allocated - first.alloc_size
        top = max(events, key=lambda e: e.extra_fields.total_allocated)
        self.growth = max(0, top.extra_fields.total_allocated - offset)
        e = top.parent
        while e is not None:
            self.where.append(e.name)
            e = e.parent
        self.peak = self.base + self.growth


def _report_flag() -> Any:
    """c10's ``FLAGS_caffe2_report_cpu_memory_usage`` as a ``ctypes.c_bool`` (module docstring)."""
    import ctypes
    from pathlib import Path

    lib_dir = Path(torch.__file__).parent / "lib"
    names = ("libc10.so", "libc10.dylib", "c10.dll")
    path = next((lib_dir / n for n in names if (lib_dir / n).exists()), None)
    if path is None:
        raise RuntimeError(f"CPUTensorPeak: no c10 library among {names} in {lib_dir}")
    return ctypes.c_bool.in_dll(ctypes.CDLL(str(path)), "FLAGS_caffe2_report_cpu_memory_usage")
