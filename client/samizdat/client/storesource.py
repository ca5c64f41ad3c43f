"""An offline chunk source: a copy of a node's data directory (a disk carried across a border).

The RocksDB store (layout: docs/format.md, "Node store"; written by samizdat.store.chunkstore) is
opened read-only, so nothing is written to the copy, and no node process, node key or
configuration is needed. The copy is as untrusted as any node: restore verifies every snapshot
signature and every chunk id exactly as for remote sources.

Only the column families restore needs are read: `chunks` (id -> blob), `snapshots`
(id -> SignedSnapshot) and `snapshot_state` (id -> held, total, bytes as <QQQ).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

import rocksdict as rdb
from google.protobuf.message import DecodeError

from samizdat.client.sources import ListedSnapshot
from samizdat.core.errors import PeerUnavailable, UsageError
from samizdat.store import rocks
from samizdat.v1 import records_pb2 as pb

log = logging.getLogger(__name__)

_STATE = struct.Struct("<QQQ")
_NEEDED = ("chunks", "snapshots", "snapshot_state")
_ROCKSDICT_CONFIG = "rocksdict-config.json"
_FORMAT_KEY = b"store_format"
STORE_FORMAT = 1


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


def _shadow(store: Path) -> Path:
    """A private directory of symlinks to the store's files, to open RocksDB from.

    RocksDB's read-only mode writes nothing, but rocksdict rewrites its own
    `rocksdict-config.json` on every open (and fails on a read-only mount): that one small
    file is copied, everything else is linked, so the store itself is never written.
    """
    shadow = Path(tempfile.mkdtemp(prefix="samizdat-store-"))
    try:
        for entry in os.scandir(store):
            if entry.name == _ROCKSDICT_CONFIG:
                shutil.copyfile(entry.path, shadow / entry.name)
            elif entry.name != "LOCK":
                os.symlink(os.path.abspath(entry.path), shadow / entry.name)
    except OSError as e:
        shutil.rmtree(shadow, ignore_errors=True)
        raise UsageError(f"--store {store}: cannot read the directory: {e.strerror}") from None
    return shadow


class StoreSource:
    """Chunks and snapshot records read straight from a node store copy, never written."""

    def __init__(self, path: Path) -> None:
        self.path = find_store_dir(path)
        opts = rdb.Options(raw_mode=True)
        try:
            names = rdb.Rdict.list_cf(str(self.path), opts)
        except Exception as e:  # rocksdict raises plain Exception
            raise UsageError(f"--store {path}: cannot read the store: {e}") from None
        missing = [n for n in _NEEDED if n not in names]
        if missing:
            raise UsageError(
                f"--store {path}: not a samizdat node store (no column family {', '.join(missing)})"
            )
        cfs = {n: rdb.Options(raw_mode=True) for n in names if n != "default"}
        self._shadow = _shadow(self.path)
        try:
            self._db = rdb.Rdict(
                str(self._shadow),
                options=opts,
                column_families=cfs,
                access_type=rdb.AccessType.read_only(),
            )
        except Exception as e:
            shutil.rmtree(self._shadow, ignore_errors=True)
            raise UsageError(f"--store {path}: cannot open the store read-only: {e}") from None
        self._check_format(path)
        self._chunks = self._db.get_column_family("chunks")
        # Blobs are checked against their ids (BLAKE3) and AEAD tags by the fetcher, so
        # RocksDB's slower CRCs are skipped (as the node does: samizdat.store.chunkstore).
        self._blob_read = rocks.blob_read_options()
        self._snapshots = self._db.get_column_family("snapshots")
        # Stores written before custody records existed have no such column family.
        self._custody = self._db.get_column_family("custody") if "custody" in names else None
        self._state = self._db.get_column_family("snapshot_state")
        self._closed = False

    def _check_format(self, given: Path) -> None:
        """Refuse a store stamped with a format this samizdat does not read (samizdat.server
        .store STORE_FORMAT; stores from before the stamp are format 1)."""
        try:
            raw = self._db.get_column_family("node").get(_FORMAT_KEY)
        except Exception:  # no "node" column family: an old store, format 1
            raw = None
        found = struct.unpack("<I", raw)[0] if raw and len(raw) == 4 else STORE_FORMAT
        if found != STORE_FORMAT:
            self.close_quietly()
            raise UsageError(
                f"--store {given}: store format {found}; this samizdat reads "
                f"format {STORE_FORMAT} (upgrade samizdat)"
            )

    def close_quietly(self) -> None:
        self._db.close()
        shutil.rmtree(self._shadow, ignore_errors=True)

    @property
    def label(self) -> str:
        return f"store:{self.path}"

    @property
    def damage_is_local(self) -> bool:
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise PeerUnavailable(f"{self.label} is closed")

    def list_snapshots(self, archive_id: bytes) -> list[ListedSnapshot]:
        self._check_open()
        out = []
        for snapshot_id, raw in self._snapshots.items():
            signed, record = pb.SignedSnapshot(), pb.SnapshotRecord()
            try:
                signed.ParseFromString(raw)
                record.ParseFromString(signed.record)
            except DecodeError:
                pass  # handed on as is: the caller's signature check refuses it
            else:
                if archive_id and record.archive_id != archive_id:
                    continue
            state = self._state.get(snapshot_id)
            held, total, _ = (
                _STATE.unpack(state) if state and len(state) == _STATE.size else (0, 0, 0)
            )
            out.append(ListedSnapshot(signed, held, total))
        return out

    def custody_records(self) -> list[pb.SignedCustodyRecord]:
        self._check_open()
        out = []
        for raw in self._custody.values() if self._custody is not None else ():
            try:
                out.append(pb.SignedCustodyRecord.FromString(raw))
            except DecodeError:
                continue  # damaged: the caller's signature check would refuse it anyway
        return out

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        self._check_open()
        if not ids:
            return []
        return [v is not None for v in rocks.multi_get(self._chunks, ids)]

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        if not ids:
            return
        for chunk_id in ids:
            try:
                blob = self._chunks.get(chunk_id, read_opt=self._blob_read)
            except Exception as e:  # rocksdict raises plain Exception
                # A structurally damaged or truncated blob file ("Corruption: ..."), a blob
                # file that is gone ("IO error: No such file or directory"), a bad sector:
                # this chunk is damaged in this copy; the rest of it is still read.
                log.info("%s: chunk %s is unreadable: %s", self.label, chunk_id.hex()[:12], e)
                blob = b""
            if blob is not None:
                yield chunk_id, bytes(blob)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.close_quietly()

    def __repr__(self) -> str:
        return f"StoreSource({self.path})"
