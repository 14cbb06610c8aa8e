"""The C library's heap: memory handed back to the operating system after phases that
allocate and free a lot, and large blocks kept for reuse during inference."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# Blocks up to this size stay in the heap during `large_blocks_reused`, and free memory up
# to TRIM_LIMIT at its top (the largest value of a C int).
REUSED_BLOCK_LIMIT = 1 << 30
TRIM_LIMIT = (1 << 31) - 1
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
    inference ran 1.3x faster (docs/performance.md). The setting is the process's, for
    every thread: when the last such phase ends, the thresholds are set to where glibc's
    adaptive ones settle (32 MB and 64 MB; they stay fixed from then on) and the free heap
    is trimmed (`release_free_memory`), so the process does not keep the peak. Blocks
    allocated by threads other than the main one come from glibc's per-thread arenas,
    whose blocks above 32 MB are mapped whatever this setting says.

    Nothing changes where glibc refuses the thresholds (before version 2.35 it accepts no
    mmap threshold above 32 MB), off Linux, under another C library, or where the user
    set glibc's own malloc tunables (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_`` or ``glibc.malloc`` in ``GLIBC_TUNABLES``).

    Yields
    ------
    bool
        Whether both thresholds were changed for the block.

    Examples
    --------
    >>> with large_blocks_reused() as changed:
    ...     isinstance(changed, bool)
    True
    """
    global _phases
    mallopt = _mallopt()
    if mallopt is None or _user_tuned():
        yield False
        return
    with _phases_lock:
        # A refused threshold changes nothing in glibc; the trim threshold is never refused.
        active = _phases > 0 or bool(mallopt(M_MMAP_THRESHOLD, REUSED_BLOCK_LIMIT))
        if active and _phases == 0:
            mallopt(M_TRIM_THRESHOLD, TRIM_LIMIT)
        _phases += active
    if not active:
        yield False
        return
    try:
        yield True
    finally:
        with _phases_lock:
            _phases -= 1
            if _phases == 0:
                mallopt(M_MMAP_THRESHOLD, SETTLED_MMAP_THRESHOLD)
                mallopt(M_TRIM_THRESHOLD, 2 * SETTLED_MMAP_THRESHOLD)
                release_free_memory()


def _user_tuned() -> bool:
    """Whether glibc's malloc thresholds were set by the user's environment."""
    return (any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_",
                                                 "MALLOC_TRIM_THRESHOLD_"))
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""))


@functools.cache
def _mallopt():
    """glibc's ``mallopt(int, int) -> int``, or ``None``."""
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


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
