"""``CPUTensorPeak``: the peak of live CPU tensor bytes, hand-checked on allocations of known size."""

from __future__ import annotations

import threading

import torch

from videor1.utils.memory import CPUTensorPeak

MB = 2**20


def test_peak_counts_a_block_once_while_it_lives():
    with CPUTensorPeak() as m:
        a = torch.empty(8 * MB, dtype=torch.uint8)
        b = torch.empty(4 * MB, dtype=torch.uint8)
        del a, b
        c = torch.empty(2 * MB, dtype=torch.uint8)
        del c
    assert 12 * MB <= m.growth < 12 * MB + MB // 4


def test_a_free_made_on_another_thread_is_subtracted():
    """gloo's worker threads often drop a collective buffer's last reference; c10's reporter used to
    lose such frees, so five 8 MiB buffers freed one after the other read as 40 MiB."""
    with CPUTensorPeak() as m:
        for _ in range(5):
            held = [torch.empty(8 * MB, dtype=torch.uint8)]
            worker = threading.Thread(target=held.clear)
            worker.start()
            worker.join()
    assert 8 * MB <= m.growth < 8 * MB + MB // 4


def test_blocks_alive_at_the_start_are_the_base():
    keep = torch.empty(16 * MB, dtype=torch.uint8)
    with CPUTensorPeak() as m:
        x = torch.empty(MB, dtype=torch.uint8)
        del x
    assert m.base >= 16 * MB
    assert m.peak == m.base + m.growth
    del keep
