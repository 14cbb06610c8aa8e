"""Memory handed back to the operating system after phases that allocate and free a lot."""

from __future__ import annotations

import ctypes
import functools
import sys


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
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except OSError:  # a static interpreter without a loadable C library: nothing to trim
        return None
    return getattr(libc, "malloc_trim", None)
