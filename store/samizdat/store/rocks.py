"""The one place that adapts rocksdict to samizdat: option builders and multi-key reads.

rocksdict's stubs (rocksdict.pyi, 0.3.29) lag its runtime in a few places; each gap is typed
here once, with a narrow ignore naming it, so the callers (the node store, the client's id
cache and store reader) stay fully checked. Every database is opened with `raw_mode=True`,
so keys and values are `bytes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import rocksdict as rdb


def write_options(*, wal: bool = True, sync: bool = False) -> rdb.WriteOptions:
    """Write options: without the write-ahead log (`wal=False`) or synced to disk."""
    opts = rdb.WriteOptions()
    if not wal:
        # Stub gap: `disable_wal` is a read-write property at runtime, a method in the stub.
        opts.disable_wal = True  # type: ignore[method-assign,assignment]
    if sync:
        opts.sync = True
    return opts


def blob_read_options() -> rdb.ReadOptions:
    """Read options for chunk blobs: no RocksDB checksums (every blob is checked against its
    BLAKE3 id anyway, at a fifth of the cost) and no block cache (a blob is read once)."""
    opts = rdb.ReadOptions()
    opts.set_verify_checksums(False)
    # Stub gap: `fill_cache` takes a bool at runtime, none in the stub.
    opts.fill_cache(False)  # type: ignore[call-arg]
    return opts


def multi_get(table: rdb.Rdict, keys: Sequence[bytes]) -> list[bytes | None]:
    """The values of `keys` in one call (None where absent)."""
    if not keys:
        return []
    wanted: list[str | int | float | bytes | bool] = list(keys)
    # Stub gap: a list of keys returns a list, typed `Any | None` like a single key.
    return cast("list[bytes | None]", table.get(wanted))
