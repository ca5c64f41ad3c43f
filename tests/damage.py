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
from samizdat.store.chunkstore import PACKS_DIR, ChunkStore, pack_location
from samizdat.store.packs import SUFFIX as PACK_SUFFIX
from samizdat.v1 import records_pb2 as pb


def flip_on_disk(data_dir: Path, needle: bytes, offset: int = 0) -> Path:
    """Flip one bit of the first occurrence of `needle` (plus `offset`) in any file under the
    store directory (pack files, SST tables, WAL); return the damaged file.

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


def pack_files(data_dir: Path) -> list[Path]:
    """The store's pack files (samizdat.store.packs), oldest first."""
    return sorted((Path(data_dir) / PACKS_DIR).glob("*" + PACK_SUFFIX))


def truncate_file(path: Path, keep: float = 0.5) -> None:
    """Cut a store file to `keep` of its length (a copy interrupted, a failing disk)."""
    os.truncate(path, int(path.stat().st_size * keep))


def pack_of(data_dir: Path, blob: bytes) -> Path | None:
    """The pack file holding these stored bytes, or None."""
    for path in pack_files(data_dir):
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


def overwrite_stored(store: ChunkStore, chunk_id: bytes, data: bytes) -> None:
    """Replace a chunk's stored bytes in its pack, same length, past every check: what a bug
    or an adversary rewriting the store consistently would leave (the store is flushed
    first, so the chunk is in a pack)."""
    store.sync_chunks()
    where = pack_location(store._cf["chunk_index"][chunk_id])
    assert where is not None and len(data) == where[2], "a format 2 chunk, same length"
    number, offset, _ = where
    with open(store.packs.path(number), "r+b") as f:
        f.seek(offset)
        f.write(data)
