"""``training.allocation.large_blocks_reused``: inside it, a tensor above glibc's mmap
threshold (32 MiB) reuses freed heap memory instead of a fresh, page-faulted mmap; on exit,
even by an error, glibc's defaults are set again (docs/benchmarks-training.md §5f)."""

from __future__ import annotations

import platform
import resource
import sys

import pytest
import torch

from training import allocation
from training.allocation import large_blocks_reused

glibc_only = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc only"
)

#: 48 MiB of float32: above glibc's largest mmap threshold (32 MiB).
BIG = 12 * 1024 * 1024
PAGES = BIG * 4 // 4096


def _faults_of_fills(times: int) -> int:
    """Minor page faults while allocating and filling a ``BIG`` tensor ``times`` times."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        x = torch.ones(BIG)
        del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@glibc_only
def test_big_tensors_reuse_heap_memory_inside() -> None:
    with large_blocks_reused() as applied:
        assert applied
        _faults_of_fills(2)  # the heap grows
        inside = _faults_of_fills(6)
    # a fresh mmap each would fault 6 x PAGES; a chunk the heap gave back earlier faults again
    assert inside < 3 * PAGES, f"{inside} page faults for 6 reused {BIG * 4 >> 20} MiB tensors"


class _RecordingLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad, 0))
        return 1


def test_defaults_come_back_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = _RecordingLibc()
    monkeypatch.setattr(allocation, "_glibc", lambda: libc)
    with pytest.raises(RuntimeError, match="boom"), large_blocks_reused() as applied:
        assert applied
        raise RuntimeError("boom")
    assert libc.calls == [
        ("mallopt", allocation._M_MMAP_MAX, 0),
        ("mallopt", allocation._M_TRIM_THRESHOLD, allocation.HEAP_KEEP),
        ("mallopt", allocation._M_MMAP_MAX, allocation._DEFAULT_MMAP_MAX),
        ("mallopt", allocation._M_TRIM_THRESHOLD, allocation._DEFAULT_TRIM_THRESHOLD),
        ("malloc_trim", 0, 0),
    ]


def test_without_glibc_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocation, "_glibc", lambda: None)
    with large_blocks_reused() as applied:
        assert not applied
