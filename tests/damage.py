"""Building damaged node stores: flip bytes of stored chunks on disk, as a failing disk or an
adversary with write access to a seized disk would."""

from __future__ import annotations

import io
import os
from pathlib import Path

from samizdat.core.codec import ChunkCodec
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import verify_snapshot
from samizdat.core.tree import iter_tree
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb


def flip_on_disk(data_dir: Path, needle: bytes, offset: int = 0) -> Path:
    """Flip one bit of the first occurrence of `needle` (plus `offset`) in any file under the
    store directory (blob files, SST tables, WAL); return the damaged file.

    The store must be closed (node stopped). Raises LookupError if `needle` is nowhere.
    """
    for root, _, names in os.walk(data_dir):
        for name in sorted(names):
            path = Path(root) / name
            raw = bytearray(path.read_bytes())
            pos = raw.find(needle)
            if pos >= 0:
                raw[pos + offset] ^= 0x01
                path.write_bytes(bytes(raw))
                return path
    raise LookupError(f"{needle[:8].hex()}... not found under {data_dir}")


def blob_files(data_dir: Path) -> list[Path]:
    return sorted(Path(data_dir).glob("*.blob"))


def truncate_file(path: Path, keep: float = 0.5) -> None:
    """Cut a store file to `keep` of its length (a copy interrupted, a failing disk)."""
    os.truncate(path, int(path.stat().st_size * keep))


def blob_file_of(data_dir: Path, blob: bytes) -> Path | None:
    """The RocksDB blob file holding these stored bytes, or None (stored inline in an SST
    table: values under the store's min_blob_size, 1 KiB)."""
    for path in blob_files(data_dir):
        if blob in path.read_bytes():
            return path
    return None


def latest_files(
    data_dir: Path, key: ArchiveKey
) -> tuple[pb.SnapshotRecord, dict[bytes, list[bytes]]]:
    """Decode the latest snapshot's tree (with the key) from a stopped node's store; return
    its record and file path -> chunk ids, for every regular file."""
    store = ChunkStore(data_dir)
    try:
        snaps = [
            verify_snapshot(pb.SignedSnapshot.FromString(signed))
            for _, _, signed in store.iter_snapshot_log()
        ]
        snap = max(snaps, key=lambda s: s.record.sequence)
        codec = ChunkCodec(key)
        tree = b"".join(
            codec.decode(cid, store.get_chunk(cid))  # type: ignore[arg-type]
            for cid in snap.record.tree_chunk_ids
        )
        return snap.record, {
            e.path: [r.id for r in e.chunks]
            for e in iter_tree(io.BytesIO(tree))
            if e.kind == pb.ENTRY_KIND_FILE
        }
    finally:
        store.close()


def stored_blobs(data_dir: Path, ids: list[bytes]) -> dict[bytes, bytes]:
    """The stored bytes of `ids`, unverified, from a stopped node's store."""
    store = ChunkStore(data_dir)
    try:
        return {cid: bytes(store.read_raw(cid) or b"") for cid in ids}
    finally:
        store.close()
