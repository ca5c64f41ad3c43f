"""The one place that adapts rocksdict to samizdat: option builders, multi-key reads, and the
classifier of RocksDB errors.

rocksdict's stubs (rocksdict.pyi, 0.3.29) lag its runtime in a few places; each gap is typed
here once, with a narrow ignore naming it, so the callers (the node store, the client's id
cache and store reader) stay fully checked. Every database is opened with `raw_mode=True`,
so keys and values are `bytes`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import cast

import rocksdict as rdb

from samizdat.core.errors import OutOfSpace, SamizdatError, StoreError


class Fault(enum.Enum):
    """What a RocksDB error means for the bytes it was about."""

    # A structurally broken or truncated file ("Corruption: ...") or a blob file that is gone
    # ("IO error: No such file or directory"): the bytes cannot come back from this disk,
    # only from another copy.
    DAMAGE = "damage"
    NO_SPACE = "no space"  # the disk is full (ENOSPC)
    OTHER = "other"  # a passing failure (a lock held, an I/O error): try again later


def fault_of(err: Exception) -> Fault:
    """Classify an error rocksdict raised. rocksdict raises plain Exception with RocksDB's
    status text, so this reads the text: the only place that does. A pack file that is gone
    or is no regular file (FileNotFoundError, packs.NotAPack) is damage too."""
    if isinstance(err, FileNotFoundError):
        return Fault.DAMAGE
    text = str(err).lower()
    if "no space" in text or "enospc" in text:
        return Fault.NO_SPACE
    if "corruption" in text or "no such file or directory" in text:
        return Fault.DAMAGE
    return Fault.OTHER


def write_error(err: Exception, path: object, doing: str) -> SamizdatError:
    """The samizdat error for a failed write or flush of the store at `path`: OutOfSpace for
    a full disk, else StoreError naming what was being done."""
    if fault_of(err) is Fault.NO_SPACE:
        return OutOfSpace(f"node disk is full ({path})")
    return StoreError(f"store {doing} failed: {err}")


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
