"""The node's store: chunk bytes in pack files (samizdat.store.packs), everything else in
RocksDB (rocksdict, raw mode). Layout in docs/format.md, "Node store".

Column families:
- `chunks`: chunk id -> blob, for chunks written by store format 1 only (read, never
  written: a format 1 store is opened as format 2 in place, and new chunks go to packs).
- `chunk_index`: chunk id -> (stored size u32, last verified unix u32, pack u32, offset u64);
  8-byte values (no location) are format 1 chunks, held in `chunks`. Plus the counter key.
- `snapshots`: snapshot id -> serialized SignedSnapshot (verified before storing).
- `snapshot_log`: position (u64 BE) -> snapshot id, for incremental listing.
- `snapshot_state`: snapshot id -> (chunks held u64, chunks total u64, stored bytes u64).
- `quarantine`: chunk id -> (unix time u64[, accounted u8]): chunks found corrupt, removed and
  not yet fetched again. The scrubber sets `accounted` once the held counters of the snapshots
  referencing the chunk reflect its loss, and deletes the entry when the chunk is back.
- `node`: node-level state (scrub cursor, peer positions, ...).
- `custody`: position (u64 BE, node-local) -> serialized SignedCustodyRecord (verified before
  storing); a grow-only log, like the snapshot log.

Durability: `put_chunks` keeps new blobs in a write buffer (visible to every reader at once);
a full buffer, or an explicit `sync_chunks()`, writes them as one pack sorted by id, fsyncs it,
then indexes them in one synced RocksDB batch. `sync_chunks()` must precede storing any
snapshot that references the chunks; a chunk lost in a crash before it is simply asked for
again. Snapshot and state writes go through the WAL with sync. Every blob is checked against
its id on put and on get; a mismatch on get quarantines the chunk.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import cast

import blake3
import rocksdict as rdb

from samizdat.core.errors import ChunkCheck, ChunkCorrupt, OutOfSpace, SamizdatError, StoreError
from samizdat.core.ids import ID_SIZE, ChunkId, short_hex
from samizdat.core.peer import Blob
from samizdat.store import rocks
from samizdat.store.packs import MAX_BLOB_BYTES, PackDir, PackReader

log = logging.getLogger(__name__)

_CF_NAMES = (
    "chunks",
    "chunk_index",
    "snapshots",
    "snapshot_log",
    "snapshot_state",
    "quarantine",
    "node",
    "custody",
)
_COUNT_KEY = b"\x00count"
_INDEX = struct.Struct("<IIIQ")  # size, verified unix, pack, offset
# The first 8 bytes of both layouts; format 1 entries hold only these (blob in `chunks`).
_HEAD = struct.Struct("<II")  # size, verified unix
_COUNTS = struct.Struct("<QQ")
_STATE = struct.Struct("<QQQ")
_POSITION_KEY = b"snapshot_position"
_CUSTODY_POSITION_KEY = b"custody_position"
_FORMAT_KEY = b"store_format"
_PACK_NEXT_KEY = b"pack_next"
STORE_FORMAT = 2
_OLD_FORMATS = (1,)  # opened, and stamped STORE_FORMAT: their chunks stay readable in `chunks`
PACKS_DIR = "packs"
# Column families a read-only copy must have (stores from before custody records lack `custody`).
_READ_ONLY_NEEDED = ("chunks", "chunk_index", "snapshots", "snapshot_log", "snapshot_state")
_ROCKSDICT_CONFIG = "rocksdict-config.json"
_MAX_CONFIG_BYTES = 64 << 10  # rocksdict writes a few hundred bytes


def _unchangeable(blob: Blob) -> Blob:
    """`blob` itself if nothing can change its bytes once verified (bytes, or a flat byte view
    into bytes: samizdat.rpc.wire.part_from_bytes), else a copy."""
    if type(blob) is bytes:
        return blob
    if (
        isinstance(blob, memoryview)
        and type(blob.obj) is bytes
        and blob.format == "B"
        and blob.ndim == 1
        and blob.c_contiguous
    ):
        return blob
    return bytes(blob)


def pack_location(index_value: bytes) -> tuple[int, int, int] | None:
    """(pack, offset, size) from a `chunk_index` value; None for a format 1 entry, whose blob
    is in the `chunks` column family."""
    if len(index_value) == _HEAD.size:
        return None
    size, _, number, offset = _INDEX.unpack(index_value)
    return number, offset, size


def _shadow(store: Path) -> Path:
    """A private directory of symlinks to the store's files, to open RocksDB read-only from.

    RocksDB's read-only mode writes nothing, but rocksdict rewrites its own
    `rocksdict-config.json` on every open (and fails on a read-only mount): that one small
    file is copied, everything else is linked, so the store itself is never written.

    A carried copy is untrusted: an entry that is not (a link to) a regular file or a
    directory, such as a FIFO standing for the MANIFEST, whose open would block for ever, is
    a StoreError naming it; so is a config file that is a symlink or over _MAX_CONFIG_BYTES
    (review R22: a sparse 1 GiB one was copied whole into TMPDIR).
    """
    shadow = Path(tempfile.mkdtemp(prefix="samizdat-store-"))
    try:
        for entry in os.scandir(store):
            mode = os.stat(entry.path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise StoreError(
                    f"{entry.path} is not a regular file or directory: not a store to read"
                )
            if entry.name == _ROCKSDICT_CONFIG:
                _copy_config(entry.path, shadow / entry.name)
            elif entry.name != "LOCK":
                os.symlink(os.path.abspath(entry.path), shadow / entry.name)
    except BaseException as e:  # a Ctrl-C too: no shadow outlives a failed open
        shutil.rmtree(shadow, ignore_errors=True)
        if isinstance(e, OSError):
            raise StoreError(f"cannot read the directory {store}: {e.strerror}") from None
        raise
    return shadow


def _open_shadow(path: Path, shadow: Path) -> tuple[rdb.Rdict, list[str]]:
    """RocksDB opened read-only from `shadow` (of the store at `path`), and the names of the
    store's column families it holds. StoreError if it is not a node store or will not open."""
    opts = rdb.Options(raw_mode=True)
    try:
        names = rdb.Rdict.list_cf(str(shadow), opts)
    except Exception as e:  # rocksdict raises plain Exception
        raise StoreError(f"cannot read the store at {path}: {e}") from None
    missing = [n for n in _READ_ONLY_NEEDED if n not in names]
    if missing:
        raise StoreError(f"{path} is not a samizdat node store (no {', '.join(missing)})")
    cfs = {n: rdb.Options(raw_mode=True) for n in names if n != "default"}
    try:
        db = rdb.Rdict(
            str(shadow), options=opts, column_families=cfs, access_type=rdb.AccessType.read_only()
        )
    except Exception as e:
        raise StoreError(f"cannot open the store at {path} read-only: {e}") from None
    return db, [n for n in _CF_NAMES if n in names]


def _copy_config(source: str, target: Path) -> None:
    """Copy rocksdict's config file, a regular file (not a link) of at most _MAX_CONFIG_BYTES;
    StoreError otherwise."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise StoreError(f"{source} cannot be read ({e.strerror}): not a store to read") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(_MAX_CONFIG_BYTES + 1)
    if len(data) > _MAX_CONFIG_BYTES:
        raise StoreError(f"{source} is over {_MAX_CONFIG_BYTES} bytes: not a store to read")
    target.write_bytes(data)


class ChunkStore:
    """Content-addressed chunk storage plus the node's snapshot records and state.

    `pack_mb`: the write buffer; a pack file is written each time it fills (and at every
    `sync_chunks`). The buffer and the pack being written are held in memory, so the store's
    share of the node's memory is about twice this.

    `read_only`: open an existing store (a copy carried on a disk) without writing anything
    to it, not even RocksDB's or rocksdict's own files; every write method then fails.
    """

    def __init__(self, path: Path, *, pack_mb: int = 32, read_only: bool = False) -> None:
        self.path = path
        self._shadow: Path | None = None
        # Counts writes of snapshot records, their counters and custody records, so answers
        # built from them (samizdat.server.shared) know when to build again.
        self._generation = 0
        self._generation_lock = threading.Lock()
        if read_only:
            self._open_read_only(path)
            return
        path.mkdir(parents=True, exist_ok=True)
        opts = rdb.Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.create_missing_column_families(True)
        opts.set_atomic_flush(True)
        opts.set_max_background_jobs(2)
        opts.set_max_total_wal_size(64 << 20)
        # `chunks` holds format 1 blobs only: opened as they were written, never written.
        chunk_opts = rdb.Options(raw_mode=True)
        chunk_opts.set_enable_blob_files(True)
        chunk_opts.set_min_blob_size(1024)
        chunk_opts.set_blob_file_size(256 << 20)
        cfs = {
            name: (chunk_opts if name == "chunks" else rdb.Options(raw_mode=True))
            for name in _CF_NAMES
        }
        try:
            self._db = rdb.Rdict(str(path), options=opts, column_families=cfs)
        except Exception as e:  # rocksdict raises plain Exception
            raise StoreError(f"cannot open store at {path}: {e}") from None
        self._cf = {name: self._db.get_column_family(name) for name in _CF_NAMES}
        self._handle = {name: self._db.get_column_family_handle(name) for name in _CF_NAMES}
        self._nowal = rocks.write_options(wal=False)
        self._synced = rocks.write_options(sync=True)
        self._finish_open(path, pack_mb)
        try:
            leftovers = self.packs.remove_from(self._next_pack)
        except OSError as e:  # EACCES, EIO: the node cannot start on this store
            self._db.close()
            raise StoreError(
                f"cannot clean up the pack files in {self.packs.root}: {e.strerror}"
            ) from None
        for number in leftovers:
            log.info("removed pack %08x: written before a crash, never indexed", number)

    def _open_read_only(self, path: Path) -> None:
        shadow = _shadow(path)  # first: it refuses entries whose open would block
        try:
            self._db, present = _open_shadow(path, shadow)
        except BaseException:  # a Ctrl-C too (review R28): no shadow outlives a failed open
            shutil.rmtree(shadow, ignore_errors=True)
            raise
        self._shadow = shadow
        try:
            self._cf = {name: self._db.get_column_family(name) for name in present}
            self._handle = {}
            self._finish_open(path, 0)
        except BaseException as e:  # the shadow directory must not outlive a failed open
            try:
                self._db.close()
            except Exception as close_error:  # rocksdict raises plain Exception
                log.info("closing %s after a failed open: %s", path, close_error)
            shutil.rmtree(shadow, ignore_errors=True)
            if isinstance(e, StoreError) or not isinstance(e, Exception):
                raise
            raise StoreError(f"the store at {path} is damaged: {e}") from None

    def _finish_open(self, path: Path, pack_mb: int) -> None:
        # Format 1 chunk reads skip RocksDB's own checksums: every blob read is checked
        # against its id with BLAKE3 anyway, which catches all the CRCs would, and the CRC
        # pass cost five times the read itself (2 GiB: 2.05 s with, 0.36 s without).
        self._blob_read = rocks.blob_read_options()
        self._check_format(path)
        self._open_packs(pack_mb)

    @property
    def read_only(self) -> bool:
        return self._shadow is not None

    def _open_packs(self, pack_mb: int) -> None:
        """Set up the pack files, the write buffer and the counters (writes nothing)."""
        self._lock = threading.Lock()  # buffer, counters, index writes
        self._flush_lock = threading.Lock()  # one pack written at a time
        self.packs = PackDir(self.path / PACKS_DIR)
        self._pack_bytes = pack_mb << 20
        # Chunks not yet indexed: `_buffer` fills; `_flushing` is being written as a pack.
        # Both are replaced, never emptied in place, so a reader holding either sees it whole.
        self._buffer: dict[bytes, Blob] = {}
        self._flushing: dict[bytes, Blob] = {}
        self._buffer_bytes = 0
        # What `_buffer` keeps in memory: its bytes blobs, and whole the messages its views
        # keep alive (`_held`, by id), each counted once. The buffer is written as a pack when
        # this reaches a pack's size, so a sender cannot pin megabytes per byte stored (a view
        # of a new 4 KiB chunk in a 4 MiB message of duplicates).
        self._held: dict[int, bytes] = {}  # kept here, so no other object reuses an id
        self._held_bytes = 0
        raw = self._cf["chunk_index"].get(_COUNT_KEY)
        self._count: int
        self._bytes: int
        self._count, self._bytes = _COUNTS.unpack(raw) if raw else (0, 0)
        raw = self._cf["node"].get(_PACK_NEXT_KEY) if "node" in self._cf else None
        self._next_pack: int = struct.unpack("<Q", raw)[0] if raw else 0

    def _check_format(self, path: Path) -> None:
        """Stamp a new store with STORE_FORMAT, and an older one it reads (format 1: its
        chunks stay where they are); refuse a store written by a newer format. A read-only
        copy is read as it is (unstamped: format 1)."""
        raw = self._cf["node"].get(_FORMAT_KEY) if "node" in self._cf else None
        found = struct.unpack("<I", raw)[0] if raw is not None and len(raw) == 4 else None
        if found is None or found in _OLD_FORMATS:
            if self.read_only:
                return
            if found is not None:
                log.info("store at %s: format %d opened as format %d", path, found, STORE_FORMAT)
            self._cf["node"].put(_FORMAT_KEY, struct.pack("<I", STORE_FORMAT), self._synced)
            return
        if found != STORE_FORMAT:
            self._db.close()
            if self._shadow is not None:
                shutil.rmtree(self._shadow, ignore_errors=True)
            raise StoreError(
                f"store at {path} has format {found}; this samizdat reads format "
                f"{STORE_FORMAT} (upgrade samizdat)"
            )

    @property
    def records_generation(self) -> int:
        """A number that changes after every write of snapshot records, snapshot counters or
        custody records (in this process): equal numbers, no such write in between."""
        return self._generation

    def _records_written(self) -> None:
        with self._generation_lock:
            self._generation += 1

    # ----------------------------------------------------------------- chunks

    @property
    def chunk_count(self) -> int:
        """Chunks held, counting those still in the write buffer."""
        return self._count + len(self._buffer) + len(self._flushing)

    @property
    def chunk_bytes(self) -> int:
        return self._bytes + self._buffer_bytes + sum(map(len, self._flushing.values()))

    def put_chunks(self, chunks: Iterable[tuple[bytes, Blob]]) -> tuple[int, int]:
        """Verify and store (id, blob) pairs not yet present; return (stored, bytes stored).
        A blob nothing can change (bytes, or a flat view into bytes) is kept as it is until
        its pack is written; any other is copied before it is verified.

        Raises ChunkCorrupt for the first blob that does not hash to its id (nothing of that
        batch is written). Existing chunks are never overwritten. Stored chunks are readable
        at once and durable after the next `sync_chunks()`. While the buffer cannot be written
        (a full disk), nothing more is taken: the flush's error is raised instead, so the
        buffer never grows past about one pack and one batch.
        """
        items = [(chunk_id, _unchangeable(blob)) for chunk_id, blob in chunks]
        for chunk_id, blob in items:
            if len(chunk_id) != 32 or blake3.blake3(blob).digest() != chunk_id:
                raise ChunkCorrupt(
                    bytes(chunk_id).hex(), ChunkCheck.ID_HASH, "bytes do not match the id"
                )
        if self._held_bytes >= self._pack_bytes:  # a flush failed: retry it first
            self._flush()
        with self._lock:
            present = self.has_chunks([cid for cid, _ in items])
            stored = stored_bytes = 0
            for (chunk_id, blob), have in zip(items, present, strict=True):
                key = bytes(chunk_id)
                if have or key in self._buffer:
                    continue
                self._buffer[key] = blob
                self._hold(blob)
                stored += 1
                stored_bytes += len(blob)
            self._buffer_bytes += stored_bytes
            full = self._held_bytes >= self._pack_bytes
        if full:
            self._flush()
        return stored, stored_bytes

    def _hold(self, blob: Blob) -> None:
        """Count what buffering `blob` keeps in memory (under `_lock`)."""
        message = blob.obj if isinstance(blob, memoryview) else None
        if isinstance(message, bytes):  # a view `_unchangeable` kept: its message stays alive
            if id(message) not in self._held:
                self._held[id(message)] = message
                self._held_bytes += len(message)
        else:
            self._held_bytes += len(blob)

    def sync_chunks(self) -> None:
        """Make every chunk stored so far durable: write the buffer as a pack and index it
        (waiting for a pack being written by another thread)."""
        self._flush()

    def _flush(self) -> None:
        """Write the buffer as one pack, sorted by id, then index it in one synced batch. If
        that fails the chunks go back to the buffer (a later flush retries, and every caller
        that counts on them being durable gets the error)."""
        with self._flush_lock:
            with self._lock:
                if not self._buffer:
                    return
                batch, self._flushing = self._buffer, self._buffer
                self._buffer, self._buffer_bytes = {}, 0
                self._held, self._held_bytes = {}, 0
                number = self._next_pack
            ids = sorted(batch)
            try:
                try:
                    offsets = self.packs.write(number, [batch[cid] for cid in ids])
                except OSError as e:
                    if e.errno == errno.ENOSPC:
                        raise OutOfSpace(f"node disk is full ({self.path})") from None
                    raise StoreError(f"pack write failed: {e}") from None
                with self._lock:
                    nbytes = sum(map(len, batch.values()))
                    count, total = self._count + len(batch), self._bytes + nbytes
                    wb = rdb.WriteBatch(raw_mode=True)
                    index = self._handle["chunk_index"]
                    for cid, offset in zip(ids, offsets, strict=True):
                        # Verified time 0 ("not yet by scrub"), not the arrival time: the index
                        # must not keep the order in which chunks arrived.
                        wb.put(cid, _INDEX.pack(len(batch[cid]), 0, number, offset), index)
                    wb.put(_COUNT_KEY, _COUNTS.pack(count, total), index)
                    wb.put(_PACK_NEXT_KEY, struct.pack("<Q", number + 1), self._handle["node"])
                    self._write(wb, self._synced)
                    self._count, self._bytes, self._next_pack = count, total, number + 1
                    self._flushing = {}
            except BaseException:
                with self._lock:
                    self._buffer = {**batch, **self._buffer}
                    self._buffer_bytes = sum(map(len, self._buffer.values()))
                    self._held, self._held_bytes = {}, 0
                    for blob in self._buffer.values():
                        self._hold(blob)
                    self._flushing = {}
                try:
                    self.packs.remove_from(number)
                except OSError as e:  # removed at the next open instead
                    log.error("cannot remove unindexed pack %08x: %s", number, e)
                raise

    def _write(self, batch: rdb.WriteBatch, opts: rdb.WriteOptions) -> None:
        try:
            self._db.write(batch, opts)
        except Exception as e:  # rocksdict raises plain Exception
            raise rocks.write_error(e, self.path, "write") from None

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        if not ids:
            return []
        # Buffers first: a chunk leaves them only after it is indexed.
        buffer, flushing = self._buffer, self._flushing
        values = rocks.multi_get(self._cf["chunk_index"], ids)
        return [
            v is not None or cid in buffer or cid in flushing
            for cid, v in zip(ids, values, strict=True)
        ]

    def chunk_size(self, chunk_id: bytes) -> int | None:
        buffered = self._buffered(chunk_id)
        if buffered is not None:
            return len(buffered)
        raw = self._cf["chunk_index"].get(chunk_id)
        return _HEAD.unpack_from(raw)[0] if raw else None

    def _buffered(self, chunk_id: bytes) -> bytes | None:
        buffer, flushing = self._buffer, self._flushing
        blob = buffer.get(chunk_id)
        if blob is None:
            blob = flushing.get(chunk_id)
        return blob if blob is None or isinstance(blob, bytes) else bytes(blob)

    def get_chunk(self, chunk_id: bytes) -> bytes | None:
        """Return the verified blob, or None if absent. A corrupt blob is quarantined and
        reported as absent (and logged)."""
        return self._verified(chunk_id, self.packs)

    def get_chunks(self, ids: Iterable[bytes]) -> Iterator[tuple[bytes, bytes | None]]:
        """(id, `get_chunk(id)`) for each id in order, each pack opened once for the whole
        batch (close the iterator, or run it to its end, to release them)."""
        with PackReader(self.packs) as packs:
            for chunk_id in ids:
                yield chunk_id, self._verified(chunk_id, packs)

    def _verified(self, chunk_id: bytes, packs: PackDir | PackReader) -> bytes | None:
        try:
            blob = self._read(chunk_id, packs)
        except (StoreError, OSError) as e:
            # A pack that is gone; RocksDB refusing a structurally damaged format 1 blob
            # file ("Corruption: ..."). Flipped bytes and cut packs reach the BLAKE3 check.
            if rocks.fault_of(e) is not rocks.Fault.DAMAGE:
                raise StoreError(f"store read failed: {e}") from None
            blob = b""
        if blob is None:
            return None
        if blake3.blake3(blob).digest() != chunk_id:
            log.error("chunk %s failed verification on read; quarantined", short_hex(chunk_id))
            self.quarantine(chunk_id)
            return None
        return blob

    def read_raw(self, chunk_id: bytes, packs: PackReader | None = None) -> bytes | None:
        """Return stored bytes without verification (scrub, a copied store's LocalPeer, which
        checks them itself, and tests): None if not held. Raises OSError or StoreError if
        they cannot be read (`rocks.fault_of` tells whether they never will). `packs`: a
        PackReader of the caller's batch (each pack opened once for it)."""
        return self._read(chunk_id, packs if packs is not None else self.packs)

    def _read(self, chunk_id: bytes, packs: PackDir | PackReader) -> bytes | None:
        buffered = self._buffered(chunk_id)
        if buffered is not None:
            return buffered
        raw = self._cf["chunk_index"].get(chunk_id)
        if raw is None:
            return None
        where = pack_location(raw)
        if where is None:
            try:
                blob = self._cf["chunks"].get(chunk_id, read_opt=self._blob_read)
            except Exception as e:  # rocksdict raises plain Exception
                raise StoreError(str(e)) from None
            return None if blob is None else bytes(blob)
        if where[2] > MAX_BLOB_BYTES:
            return b""  # an index that lies about the size: damage, read nothing
        return packs.read(*where)

    def quarantine(self, chunk_id: bytes) -> None:
        """Remove a corrupt chunk and remember it, so that replication fetches it again."""
        with self._lock:
            raw = self._cf["chunk_index"].get(chunk_id)
            if raw is None:
                return
            size = _HEAD.unpack_from(raw)[0]
            batch = rdb.WriteBatch(raw_mode=True)
            batch.delete(chunk_id, self._handle["chunks"])
            batch.delete(chunk_id, self._handle["chunk_index"])
            batch.put(chunk_id, struct.pack("<Q", int(time.time())), self._handle["quarantine"])
            # never below zero, whatever size a damaged index names
            self._count, self._bytes = max(0, self._count - 1), max(0, self._bytes - size)
            batch.put(
                _COUNT_KEY, _COUNTS.pack(self._count, self._bytes), self._handle["chunk_index"]
            )
            self._write(batch, self._synced)

    def quarantined_count(self) -> int:
        # An Rdict is not iterable itself (no __iter__): .keys() is needed here.
        return sum(1 for _ in self._cf["quarantine"].keys())  # noqa: SIM118

    def quarantined(self, ids: Sequence[bytes]) -> list[bool]:
        """One flag per id: is it quarantined (found corrupt, not yet fetched again)?"""
        if not ids:
            return []
        return [v is not None for v in rocks.multi_get(self._cf["quarantine"], ids)]

    def iter_quarantine(self) -> Iterator[tuple[bytes, int, bool]]:
        """Yield (chunk id, quarantined at unix, accounted) for every quarantined chunk."""
        for key, value in self._cf["quarantine"].items():
            yield cast(bytes, key), struct.unpack_from("<Q", value)[0], value[8:9] == b"\x01"

    def set_quarantine_accounted(self, chunk_id: bytes) -> None:
        """Note that the snapshot counters reflect this chunk's loss (see `quarantine`)."""
        with self._lock:
            raw = self._cf["quarantine"].get(chunk_id)
            if raw is not None:
                self._cf["quarantine"].put(chunk_id, raw[:8] + b"\x01", self._synced)

    def release_quarantine(self, chunk_id: bytes) -> None:
        """Forget a quarantined chunk (fetched again, or referenced by nothing)."""
        self._cf["quarantine"].delete(chunk_id, self._synced)

    def mark_verified(self, chunk_id: bytes, size: int) -> None:
        self.mark_verified_many([(chunk_id, size)], int(time.time()))

    def mark_verified_many(self, items: Iterable[tuple[bytes, int]], when: int) -> None:
        """Record that these (id, size) chunks hashed to their ids at `when` (scrub); ids no
        longer indexed are skipped, so a quarantined chunk never reappears in the index."""
        ids = [cid for cid, _ in items]
        if not ids:
            return
        with self._lock:
            batch = rdb.WriteBatch(raw_mode=True)
            for chunk_id, raw in zip(
                ids, rocks.multi_get(self._cf["chunk_index"], ids), strict=True
            ):
                if raw is not None:
                    value = _HEAD.pack(_HEAD.unpack_from(raw)[0], when) + raw[_HEAD.size :]
                    batch.put(chunk_id, value, self._handle["chunk_index"])
            self._write(batch, self._nowal)

    def iter_chunk_ids(self, start: bytes = b"") -> Generator[tuple[ChunkId, int], None, None]:
        """Yield (id, stored size) in id order from `start` (for scrub); keys of another
        length are skipped."""
        it = self._cf["chunk_index"].iter()
        it.seek(start) if start else it.seek_to_first()
        while it.valid():
            key = it.key()
            if len(key) == ID_SIZE:
                yield ChunkId(key), _HEAD.unpack_from(it.value())[0]
            it.next()

    # -------------------------------------------------------------- snapshots

    def has_snapshot(self, snapshot_id: bytes) -> bool:
        return self._cf["snapshots"].get(snapshot_id) is not None

    def add_snapshot(
        self, snapshot_id: bytes, signed_bytes: bytes, held: int, total: int, stored_bytes: int
    ) -> int:
        """Durably store a verified record with its completeness; return its position."""
        return self.add_snapshots([(snapshot_id, signed_bytes, held, total, stored_bytes)])[0]

    def add_snapshots(self, records: list[tuple[bytes, bytes, int, int, int]]) -> list[int]:
        """Durably store verified records, (id, signed bytes, held, total, stored bytes) each,
        in one synced write; return their positions (0 for one already stored)."""
        with self._lock:
            position = self.last_position()
            batch = rdb.WriteBatch(raw_mode=True)
            positions, seen = [], set()
            for snapshot_id, signed_bytes, held, total, stored_bytes in records:
                if snapshot_id in seen or self.has_snapshot(snapshot_id):
                    positions.append(0)
                    continue
                seen.add(snapshot_id)
                position += 1
                positions.append(position)
                batch.put(snapshot_id, signed_bytes, self._handle["snapshots"])
                batch.put(struct.pack(">Q", position), snapshot_id, self._handle["snapshot_log"])
                batch.put(
                    snapshot_id,
                    _STATE.pack(held, total, stored_bytes),
                    self._handle["snapshot_state"],
                )
            if seen:
                batch.put(_POSITION_KEY, struct.pack(">Q", position), self._handle["node"])
                self._write(batch, self._synced)
                self._records_written()
            return positions

    def set_snapshot_state(
        self, snapshot_id: bytes, held: int, total: int, stored_bytes: int
    ) -> None:
        self.set_snapshot_states([(snapshot_id, held, total, stored_bytes)])

    def set_snapshot_states(self, states: list[tuple[bytes, int, int, int]]) -> None:
        """Durably set the (held, total, stored bytes) counters of several snapshots at once."""
        batch = rdb.WriteBatch(raw_mode=True)
        for snapshot_id, held, total, stored_bytes in states:
            batch.put(
                snapshot_id, _STATE.pack(held, total, stored_bytes), self._handle["snapshot_state"]
            )
        self._write(batch, self._synced)
        self._records_written()

    def snapshot_state(self, snapshot_id: bytes) -> tuple[int, int, int]:
        raw = self._cf["snapshot_state"].get(snapshot_id)
        return _STATE.unpack(raw) if raw else (0, 0, 0)

    def snapshot_states(self) -> dict[bytes, tuple[int, int, int]]:
        """`snapshot_state` of every stored snapshot, read in one pass (several times faster
        than a `snapshot_state` call each)."""
        # Stub gap: items() of a raw-mode Rdict yields bytes pairs, typed as any key type.
        items = cast("Iterable[tuple[bytes, bytes]]", self._cf["snapshot_state"].items())
        return {key: _STATE.unpack(raw) for key, raw in items}

    def get_snapshot(self, snapshot_id: bytes) -> bytes | None:
        return self._cf["snapshots"].get(snapshot_id)

    def last_position(self) -> int:
        """The position of the newest record (0: none stored yet)."""
        raw = self._cf["node"].get(_POSITION_KEY) if "node" in self._cf else None
        return struct.unpack(">Q", raw)[0] if raw else 0

    def iter_snapshot_log(self, after: int = 0) -> Iterator[tuple[int, bytes, bytes]]:
        """Yield (position, snapshot id, signed bytes) for records stored after `after`
        (0 <= after <= last_position())."""
        it = self._cf["snapshot_log"].iter()
        it.seek(struct.pack(">Q", after + 1))
        while it.valid():
            snapshot_id = it.value()
            signed = self._cf["snapshots"].get(snapshot_id)
            if signed is not None:
                yield struct.unpack(">Q", it.key())[0], snapshot_id, signed
            it.next()

    # ---------------------------------------------------------- custody log

    def add_custody_record(self, signed_bytes: bytes) -> int:
        """Durably append a verified custody record (the caller skips known ones); return its
        position."""
        with self._lock:
            raw = self._cf["node"].get(_CUSTODY_POSITION_KEY)
            position = (struct.unpack(">Q", raw)[0] if raw else 0) + 1
            batch = rdb.WriteBatch(raw_mode=True)
            batch.put(struct.pack(">Q", position), signed_bytes, self._handle["custody"])
            batch.put(_CUSTODY_POSITION_KEY, struct.pack(">Q", position), self._handle["node"])
            self._write(batch, self._synced)
            self._records_written()
            return position

    def iter_custody_log(self, after: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield (position, signed record bytes) for custody records stored after `after`."""
        if "custody" not in self._cf:  # a read-only copy from before custody records
            return
        it = self._cf["custody"].iter()
        it.seek(struct.pack(">Q", after + 1))
        while it.valid():
            yield struct.unpack(">Q", it.key())[0], it.value()
            it.next()

    # ------------------------------------------------------------ node state

    def get_state(self, key: bytes) -> bytes | None:
        return self._cf["node"].get(key)

    def put_state(self, key: bytes, value: bytes) -> None:
        self._cf["node"].put(key, value, self._synced)

    def close(self) -> None:
        """Flush and close. Chunks that cannot be flushed (disk full) belong to no
        acknowledged snapshot: they are logged as lost and simply asked for again."""
        if not self.read_only:
            try:
                self.sync_chunks()
            except SamizdatError as e:
                log.error("unflushed chunks lost at close: %s", e)
        # Column family objects keep the DB (and its LOCK file) alive: drop them first,
        # or the store cannot be reopened in this process.
        self._cf.clear()
        self._handle.clear()
        try:
            self._db.close()
        except Exception as e:  # rocksdict raises plain Exception (e.g. ENOSPC on flush)
            log.error("store close failed: %s", e)
        if self._shadow is not None:
            shutil.rmtree(self._shadow, ignore_errors=True)
