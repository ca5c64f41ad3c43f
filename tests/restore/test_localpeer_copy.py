"""LocalPeer.open_copy: a copied node store read offline, read-only, untrusted."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from samizdat.client.sources import resolve_snapshot
from samizdat.core.errors import UsageError
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import iter_blobs
from samizdat.core.records import sign_snapshot
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.localpeer import LocalPeer, find_store_dir
from samizdat.v1 import records_pb2 as pb

pytestmark = pytest.mark.timeout(60)


def listing(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def store_dir(tmp_path: Path) -> tuple[Path, ArchiveKey, list[tuple[bytes, bytes]]]:
    key = ArchiveKey.generate()
    node_dir = tmp_path / "node"
    (node_dir).mkdir()
    (node_dir / "node.toml").write_text('data_dir = "data"\n')
    store = ChunkStore(node_dir / "data")
    blobs = [os.urandom(5000 + i * 999) for i in range(20)]
    items = [(blake3.blake3(b).digest(), b) for b in blobs]
    store.put_chunks(items)
    snap = sign_snapshot(key, pb.SnapshotRecord(sequence=1, tree_chunk_ids=[items[0][0]]))
    store.add_snapshot(bytes(snap.id), snap.signed.SerializeToString(), 20, 20, 1)
    other = sign_snapshot(ArchiveKey.generate(), pb.SnapshotRecord(sequence=1))
    store.add_snapshot(bytes(other.id), other.signed.SerializeToString(), 0, 5, 1)
    store.close()
    return node_dir, key, items


def test_reads_chunks_and_snapshots_without_writing(store_dir) -> None:  # type: ignore[no-untyped-def]
    node_dir, key, items = store_dir
    before = listing(node_dir)
    source = LocalPeer.open_copy(node_dir)  # a node directory: its data dir is found
    try:
        assert source.path == node_dir / "data"
        ids = [i for i, _ in items]
        assert dict(iter_blobs(source, ids)) == dict(items)
        missing = b"\x01" * 32
        assert source.has_chunks([ids[0], missing]) == [True, False]
        assert list(iter_blobs(source, [missing])) == []
        assert [p.missing for p in source.get_chunks([missing])] == [[missing]]
        found = resolve_snapshot([source], bytes(key.archive_id), "latest")
        assert found.complete == (True,) and found.reachable == (True,)
        assert found.snapshot.record.sequence == 1
    finally:
        source.close()
    assert listing(node_dir) == before, "the store copy was modified"


def test_store_dir_forms_and_errors(store_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node_dir, _, _ = store_dir
    assert find_store_dir(node_dir / "data") == node_dir / "data"
    assert find_store_dir(node_dir) == node_dir / "data"
    with pytest.raises(UsageError, match="not a samizdat node data directory"):
        find_store_dir(tmp_path)
    with pytest.raises(UsageError, match="no such directory"):
        find_store_dir(tmp_path / "nope")


def test_tampered_records_are_listed_but_refused(store_dir) -> None:  # type: ignore[no-untyped-def]
    """A store is untrusted: a forged record in it never resolves."""
    node_dir, key, items = store_dir
    store = ChunkStore(node_dir / "data")
    forged = sign_snapshot(
        ArchiveKey.generate(), pb.SnapshotRecord(sequence=99, tree_chunk_ids=[items[1][0]])
    )
    record = pb.SnapshotRecord.FromString(forged.signed.record)
    record.archive_id = bytes(key.archive_id)  # claims our archive, signed by another key
    raw = record.SerializeToString()
    signed = pb.SignedSnapshot(record=raw, signature=forged.signed.signature)
    store.add_snapshot(blake3.blake3(raw).digest(), signed.SerializeToString(), 20, 20, 1)
    store.close()
    source = LocalPeer.open_copy(node_dir)
    try:
        found = resolve_snapshot([source], bytes(key.archive_id), "latest")
        assert found.snapshot.record.sequence == 1  # the forged sequence 99 was refused
    finally:
        source.close()


def test_store_of_a_newer_format_is_refused(store_dir) -> None:  # type: ignore[no-untyped-def]
    import struct

    node_dir, _, _ = store_dir
    store = ChunkStore(node_dir / "data")
    store._cf["node"].put(b"store_format", struct.pack("<I", 3))
    store.close()
    with pytest.raises(UsageError, match="has format 3; this samizdat reads format 2"):
        LocalPeer.open_copy(node_dir)
