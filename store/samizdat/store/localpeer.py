"""LocalPeer: the Peer protocol (samizdat.core.peer) over a chunk store on a local disk.

Two uses: a copy of a node's data directory carried across a border, opened read-only for
restore and verify (`LocalPeer.open_copy`: nothing is written to it, and no node process, node
key or configuration is needed); and a store opened for writing, the in-process peer of tests.
Only ChunkStore's public methods are used: the store format has one owner (chunkstore.py).

A copy is as untrusted as any node: restore verifies every snapshot signature and every chunk
id exactly as for remote sources. A store accepts records of any archive (it has no node
configuration, so no hosting or custody rules): those are the node's (samizdat.server).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from google.protobuf.message import DecodeError

from samizdat.core.custody import CUSTODY_PAGE_BYTES
from samizdat.core.errors import PeerUnavailable, SamizdatError, StoreError, UsageError
from samizdat.core.ids import ArchiveId, short_hex
from samizdat.core.peer import (
    LIST_PAGE_RECORDS,
    ChunkPart,
    CustodyPage,
    ListedSnapshot,
    PutChunksResult,
    PutSnapshotResult,
    SnapshotPage,
)
from samizdat.core.records import verify_restorable, verify_snapshot
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.holdings import store_snapshot
from samizdat.store.packs import PackReader
from samizdat.v1 import records_pb2 as pb

log = logging.getLogger(__name__)

# Bytes of blobs in one ChunkPart (as a node's GetChunks answers are bounded).
PART_BYTES = 3 * 1024 * 1024


def find_store_dir(path: Path) -> Path:
    """Accept a node's data directory, or a node directory (node.toml + data dir)."""
    if (path / "CURRENT").is_file():
        return path
    config = path / "node.toml"
    if config.is_file():
        try:
            data_dir = tomllib.loads(config.read_text()).get("data_dir", "data")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data_dir = "data"
        candidate = path / str(data_dir)
        if (candidate / "CURRENT").is_file():
            return candidate
    if (path / "data" / "CURRENT").is_file():
        return path / "data"
    if not path.exists():
        raise UsageError(f"--store {path}: no such directory")
    raise UsageError(
        f"--store {path}: not a samizdat node data directory (no RocksDB "
        "CURRENT file here or in its data/ subdirectory)"
    )


class LocalPeer:
    """A chunk store on disk as a peer. Closing the peer closes the store if it owns it."""

    def __init__(self, store: ChunkStore, *, owns_store: bool = False) -> None:
        self.store = store
        self.path = store.path
        self._owns = owns_store
        self._closed = False

    @classmethod
    def open_copy(cls, path: Path) -> LocalPeer:
        """Open a node's data directory (or node directory) read-only. Raises UsageError."""
        directory = find_store_dir(path)
        try:
            store = ChunkStore(directory, read_only=True)
        except StoreError as e:
            raise UsageError(f"--store {path}: {e}") from None
        except Exception as e:  # a crafted or damaged copy: values of the wrong length, ...
            raise UsageError(f"--store {path}: a damaged store ({e})") from None
        return cls(store, owns_store=True)

    @property
    def label(self) -> str:
        return f"store:{self.path}"

    @property
    def damage_is_local(self) -> bool:
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise PeerUnavailable(f"{self.label} is closed")

    def _damaged(self, what: str, error: Exception) -> PeerUnavailable:
        """A copy whose logs do not read (a key or value of the wrong length, RocksDB's
        "Corruption"): unusable for `what`, like an unreachable node; the others serve."""
        log.info("%s: %s failed: %r", self.label, what, error)
        return PeerUnavailable(f"{self.label} is damaged: its {what} does not read ({error})")

    def list_page(
        self, archive_id: ArchiveId | None, after: int, max_count: int = 0
    ) -> SnapshotPage:
        self._check_open()
        try:
            return self._list_page(archive_id, after, max_count)
        except SamizdatError:
            raise
        except Exception as e:  # rocksdict raises plain Exception; struct.error
            raise self._damaged("listing", e) from None

    def _list_page(self, archive_id: ArchiveId | None, after: int, max_count: int) -> SnapshotPage:
        last = self.store.last_position()
        if after > last:
            raise UsageError(f"after_position {after} is beyond this store's last position {last}")
        limit = min(max_count or LIST_PAGE_RECORDS, LIST_PAGE_RECORDS)
        out: list[ListedSnapshot] = []
        reached = after
        for position, snapshot_id, raw in self.store.iter_snapshot_log(after):
            if len(out) >= limit:
                return SnapshotPage(out, reached, more=True)
            reached = position
            signed, record = pb.SignedSnapshot(), pb.SnapshotRecord()
            try:
                signed.ParseFromString(raw)
                record.ParseFromString(signed.record)
            except DecodeError:
                pass  # handed on as is: the caller's signature check refuses it
            else:
                if archive_id and record.archive_id != archive_id:
                    continue
            held, total, nbytes = self.store.snapshot_state(snapshot_id)
            out.append(ListedSnapshot(signed, held, total, position, bytes(snapshot_id), nbytes))
        return SnapshotPage(out, reached)

    def custody_page(self, after: int) -> CustodyPage:
        self._check_open()
        records: list[pb.SignedCustodyRecord] = []
        reached, size = after, 0
        try:
            for position, raw in self.store.iter_custody_log(after):
                if records and size + len(raw) > CUSTODY_PAGE_BYTES:  # pages, as a node's
                    return CustodyPage(records, reached, more=True)
                reached, size = position, size + len(raw)
                try:
                    records.append(pb.SignedCustodyRecord.FromString(raw))
                except DecodeError:
                    continue  # damaged: the caller's signature check would refuse it anyway
        except Exception as e:  # rocksdict raises plain Exception; struct.error
            raise self._damaged("custody log", e) from None
        return CustodyPage(records, reached)

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        self._check_open()
        return self.store.has_chunks(list(ids))

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        self._check_open()
        with PackReader(self.store.packs) as packs:  # each pack opened once per call
            yield from self._parts(ids, packs)

    def _parts(self, ids: Sequence[bytes], packs: PackReader) -> Iterator[ChunkPart]:
        chunks: list[tuple[bytes, bytes]] = []
        missing: list[bytes] = []
        size = 0
        for chunk_id in ids:
            try:
                blob = self.store.read_raw(chunk_id, packs)
            except Exception as e:  # rocksdict raises plain Exception
                # A structurally damaged or truncated blob file ("Corruption: ..."), a blob
                # file that is gone, a bad sector: this chunk is damaged in this copy; the
                # rest of it is still read.
                log.info("%s: chunk %s is unreadable: %s", self.label, short_hex(chunk_id), e)
                blob = b""
            if blob is None:
                missing.append(chunk_id)
                continue
            if chunks and size + len(blob) > PART_BYTES:
                yield ChunkPart(chunks)
                chunks, size = [], 0
            chunks.append((chunk_id, bytes(blob)))
            size += len(blob)
        yield ChunkPart(chunks, missing)

    def _check_writable(self) -> None:
        self._check_open()
        if self.store.read_only:
            raise UsageError(f"{self.label} is a read-only copy")

    def put_chunks(
        self, archive_id: ArchiveId, batches: Iterable[Sequence[tuple[bytes, bytes]]]
    ) -> PutChunksResult:
        self._check_writable()
        received = stored = nbytes = 0
        for batch in batches:
            received += len(batch)
            n, b = self.store.put_chunks(batch)
            stored, nbytes = stored + n, nbytes + b
        return PutChunksResult(received, stored, nbytes)

    def put_snapshot(self, signed: pb.SignedSnapshot) -> PutSnapshotResult:
        self._check_writable()
        snap = verify_restorable(verify_snapshot(signed))
        new = store_snapshot(self.store, snap, require_complete=True)
        return PutSnapshotResult(bytes(snap.id), not new)

    def notify_snapshots(self, archive_id: ArchiveId) -> None:
        """Nothing to do: a store on disk runs no replication loop to wake."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns:
                try:
                    self.store.close()
                except SamizdatError as e:
                    log.info("%s: close: %s", self.label, e)

    def __repr__(self) -> str:
        return f"LocalPeer({self.path})"
