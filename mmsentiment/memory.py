"""The C library's heap: memory handed back to the operating system after phases that
allocate and free a lot, and large blocks kept for reuse during inference."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
from collections.abc import Iterator

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# Blocks up to this size stay in the heap during `large_blocks_reused`.
REUSED_BLOCK_LIMIT = 1 << 30
# Where glibc's adaptive thresholds settle on a 64-bit system (its DEFAULT_MMAP_THRESHOLD_MAX
# and twice that): the values set back when the last `large_blocks_reused` phase ends.
SETTLED_MMAP_THRESHOLD = 32 << 20
_phases = 0
_phases_lock = threading.Lock()


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the operating system (glibc's ``malloc_trim``).

    After a phase that allocated and freed many large blocks (decoding every image in
    threads, an epoch of activations), glibc keeps the freed memory mapped for reuse, so
    the process's resident size stays at its high-water mark.

    Returns
    -------
    bool
        Whether a trim ran: ``False`` off Linux or under a C library without
        ``malloc_trim`` (musl), where there is nothing to do.

    Examples
    --------
    >>> isinstance(release_free_memory(), bool)
    True
    """
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


@contextlib.contextmanager
def large_blocks_reused() -> Iterator[bool]:
    """Keep freed blocks of up to 1 GB in the heap while the block runs, then give the
    free memory back.

    glibc serves each block above its mmap threshold (at most 32 MB) with fresh pages from
    the kernel, which zeroes them on first touch, and unmaps it when freed. An image CNN's
    inference on a batch of 32 allocates several such feature maps per call (80 MB for one
    of EfficientNet-Lite0's at 224 px in bfloat16), so each batch paid for page faults on
    all of them. Kept in the heap, they are reused from batch to batch: Lite0's CPU
    inference ran 1.3-1.4x faster (docs/performance.md). When the last such phase ends,
    the thresholds are set to where glibc's adaptive ones settle (32 MB, 64 MB) and the
    free heap is trimmed (`release_free_memory`), so the process does not hold the peak.

    Yields
    ------
    bool
        Whether the thresholds were changed: ``False`` off Linux or under a C library
        without ``mallopt`` (musl), where nothing changes.

    Examples
    --------
    >>> with large_blocks_reused() as changed:
    ...     isinstance(changed, bool)
    True
    """
    global _phases
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        yield False
        return
    with _phases_lock:
        _phases += 1
        if _phases == 1:
            mallopt(M_MMAP_THRESHOLD, REUSED_BLOCK_LIMIT)
            mallopt(M_TRIM_THRESHOLD, 2 * REUSED_BLOCK_LIMIT)
    try:
        yield True
    finally:
        with _phases_lock:
            _phases -= 1
            if _phases == 0:
                mallopt(M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD)
                mallopt(M_TRIM_THRESHOLD, 2 * SETTLED_MMAP_THRESHOLD)
                release_free_memory()


@functools.cache
def _libc_function(name: str):
    """The C library's function ``name`` (glibc's on Linux), or ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except OSError:  # a static interpreter without a loadable C library
        return None
    return getattr(libc, name, None)
