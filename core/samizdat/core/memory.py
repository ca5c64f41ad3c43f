"""Process-wide tuning of glibc malloc for the chunk pipelines (push, restore, the node).

Chunks (64 KiB-1 MiB), blobs and ~3 MiB gRPC messages are above glibc's default mmap
threshold, and its heap-trim threshold is low, so every such buffer is mapped and unmapped (or
the heap top trimmed) and each reuse page-faults afresh: 1.25 faulted bytes per byte pushed,
a third of a restore's system time. Raising both thresholds (both: setting one alone switches
off glibc's dynamic adjustment and is worse) keeps freed buffers for reuse; capping the number
of arenas keeps many threads from each holding a private copy of that working set, so RSS
stays at the pipeline's bounded window. Figures: bench/README.md.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_tuned = False


def tune_allocator(*, arenas: int = 1, keep_bytes: int = 64 << 20) -> None:
    """Keep up to `keep_bytes` of freed memory for reuse, serve buffers up to 32 MiB from the
    heap, and use at most `arenas` malloc arenas. Idempotent (the first call wins); a no-op
    where the C library is not glibc.

    One arena suits the node and restore (measured: a node back-filling from two peers 342 ->
    252 MiB RSS and faster; restore RSS -15 %); push, whose encoder threads allocate blobs
    concurrently, keeps glibc's default arena count and a larger reserve."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's maximum
    mallopt(_M_TRIM_THRESHOLD, keep_bytes)
    mallopt(_M_ARENA_MAX, arenas)


def limit_arenas(arenas: int = 1) -> None:
    """Use at most `arenas` malloc arenas, glibc's thresholds left alone: for commands whose
    threads each parse a node's answer (status, `snapshots`), so that the memory one thread
    frees is reused by the others instead of staying in its own arena (measured: `status`
    against two nodes listing 60 MiB of junk each, peak RSS 117 -> 99 MiB). A no-op where the
    C library is not glibc, or once `tune_allocator` ran."""
    if _tuned:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, arenas)
