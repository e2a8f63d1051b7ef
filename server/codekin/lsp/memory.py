"""Keeping a long-running server's resident memory close to what it really holds.

Loading an index snapshot or the model frees hundreds of megabytes of temporaries that
glibc keeps mapped; multi-threaded processes also get one malloc arena per busy thread.
Both are process-wide settings, applied by `codekin serve` only. Elsewhere (musl, macOS)
these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def configure_process(arenas: int = 2) -> None:
    """Call before heavy imports: Arrow allocates from malloc (trimmable), few arenas."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (after a snapshot or the model loaded)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
