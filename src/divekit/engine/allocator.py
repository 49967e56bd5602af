"""Keep freed host memory for reuse once training starts: glibc's malloc would hand it back to the kernel at every step.

A training step allocates its activations and gradients and frees them
before the next step asks for the same sizes again. With glibc's defaults a
freed block above the mmap threshold (dynamic, up to 32 MiB) goes back to
the kernel, and a free chunk at the top of the heap above the trim threshold
is trimmed off, so every step maps those pages afresh: page faults and the
kernel zeroing them. LeNet on Fashion-MNIST spent 20% of its CPU time in the
kernel, and its steps ran 1.6-1.9x slower than with the memory kept
(12.7-15.8k against 24.5k images/s, batch 256, 2 threads;
``benchmarks/lenet_command.py`` shows the whole command).

:func:`kept_freed_memory` sets both thresholds so that freed memory stays
in the process (what preloading jemalloc or tcmalloc does for PyTorch), and
when the block ends hands what is free back to the kernel once
(``malloc_trim``). The thresholds stay set for the rest of the process:
glibc cannot return to its dynamic threshold, and a fixed 128 KiB one would
make every later large tensor a fresh mapping, the very cost avoided here.
The numbers a run computes do not change. Elsewhere than on glibc (macOS,
Windows, musl) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc refuses more on 64-bit systems (half its 64 MiB heap size)
TRIM_THRESHOLD_KEPT = 2**31 - 1  # the largest mallopt takes (an int): the heap top is kept


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None  # not glibc (musl has no mallopt thresholds)
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def _set(libc: ctypes.CDLL, mmap_threshold: int, trim_threshold: int) -> bool:
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))


@contextlib.contextmanager
def kept_freed_memory() -> Iterator[bool]:
    """Keep freed memory in the process from now on; hand what is free back once when the block ends.

    Yields whether glibc's thresholds are set (``False`` elsewhere than on glibc).
    """
    libc = _glibc()
    changed = libc is not None and _set(libc, MMAP_THRESHOLD_MAX, TRIM_THRESHOLD_KEPT)
    try:
        yield changed
    finally:
        if changed:
            libc.malloc_trim(0)
