"""Memory reuse for the training steps' large tensors (glibc's ``mallopt``).

Hand-written because no maintained library sets glibc's allocator options from Python:
PyTorch's CPU allocator leaves blocks of any size to the C library, and an alternative
allocator (jemalloc, tcmalloc) would have to be preloaded into the worker process from
outside. :func:`large_blocks_reused` is used by :func:`training.minibatch.minibatch_epoch`.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: glibc ``mallopt`` parameters (``malloc.h``) and their defaults, restored after an epoch.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
#: Freed memory at the top of the heap that an epoch keeps for its next step's tensors.
HEAP_KEEP = 1 << 30


def _glibc() -> Any | None:
    """The process's C library when it is glibc (``mallopt``, ``malloc_trim``), else None."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # pragma: no cover - a static or unusual libc
        return None
    return libc


@contextmanager
def large_blocks_reused() -> Iterator[bool]:
    """Within the block, tensors of 32 MiB and more are allocated from the heap and their
    memory reused step after step, instead of a fresh ``mmap`` each (yields whether the
    setting applies: glibc only).

    glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB) with a
    new ``mmap``, which the kernel fills with zeroed pages one page fault at a time when it is
    first written, and ``munmap``s it when freed. A mini-batch step allocates tens of
    ``[batch nodes, D]`` float tensors (the stacked inputs, the products, their gradients);
    once a batch's field passes ``32 MiB / (4 D)`` nodes (131k at ``D = 64``: the shop graph
    from about 1/2 scale on) each of them costs its page faults, and a step cost 2.3 times
    more for a batch 21 % larger (``docs/benchmarks-training.md`` §5f). Here ``mmap`` is
    switched off (``M_MMAP_MAX = 0``) and up to :data:`HEAP_KEEP` of freed memory is kept at
    the top of the heap (``M_TRIM_THRESHOLD``); on exit glibc's defaults come back and
    ``malloc_trim`` returns what is kept to the system, so evaluation and the rest of the
    process allocate as before."""
    libc = _glibc()
    applied = libc is not None and bool(
        libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, HEAP_KEEP)
    )
    try:
        yield applied
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
            libc.malloc_trim(0)
