"""Keep freed memory in the process: stop glibc from returning every large tensor to the kernel.

On Linux, glibc's ``malloc`` serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB, raised
dynamically up to 32 MiB) with a fresh ``mmap`` and gives them back with ``munmap`` on free;
and it trims the top of the heap back to the kernel above ``M_TRIM_THRESHOLD``. PyTorch's
CPU allocator is plain ``malloc``, and a batched INR fit (or a training step) allocates and
frees the same multi-megabyte activations at every step, so every step pays page faults and
the kernel zeroing those pages again (how much: benchmarks/RESULTS.md, "Fitting on every core").

PyTorch's performance guide recommends the same cure through jemalloc or tcmalloc
(``LD_PRELOAD``); :func:`retain_freed_memory` gets it without a preload, with ``mallopt``:
``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` raised to 1 GiB, so blocks up to 1 GiB are
reused from the heap. The cost is that a process keeps up to ~1 GiB of freed memory mapped
(its peak allocations, not more). ``ssl-ws`` calls it once at start; library users may call it
themselves. It does nothing (returns False) where glibc is not the C library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
RETAIN_BYTES = 1 << 30

_done = False


def retain_freed_memory(nbytes: int = RETAIN_BYTES) -> bool:
    """Raise glibc's mmap and trim thresholds to ``nbytes`` in this process (idempotent).

    Returns True when both were set, False on a platform without glibc ``mallopt``.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    nbytes = int(min(nbytes, 2**31 - 1))
    _done = bool(mallopt(_M_MMAP_THRESHOLD, nbytes)) and bool(mallopt(_M_TRIM_THRESHOLD, nbytes))
    return _done
