"""ChunkStore in process: ids verified on put, never overwritten, corruption on read is
detected, quarantined and reported absent; everything survives a reopen."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from samizdat.core.errors import ChunkCorrupt
from samizdat.store.chunkstore import ChunkStore
from tests.damage import blob_files, flip_on_disk


def chunk(size: int = 5000) -> tuple[bytes, bytes]:
    blob = os.urandom(size)
    return blake3.blake3(blob).digest(), blob


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = ChunkStore(tmp_path / "data")
    yield s
    try:
        s.close()
    except Exception:
        pass


def test_put_get_and_counters(store: ChunkStore) -> None:
    items = [chunk(), chunk(100), chunk(3 << 20)]
    stored, nbytes = store.put_chunks(items)
    assert (stored, nbytes) == (3, sum(len(b) for _, b in items))
    assert (store.chunk_count, store.chunk_bytes) == (3, nbytes)
    for cid, blob in items:
        assert store.get_chunk(cid) == blob
        assert store.chunk_size(cid) == len(blob)
    missing = blake3.blake3(b"nope").digest()
    assert store.get_chunk(missing) is None
    assert store.has_chunks([items[0][0], missing]) == [True, False]


def test_put_verifies_ids_and_writes_nothing_of_a_bad_batch(store: ChunkStore) -> None:
    good = chunk()
    bad_id, bad_blob = chunk()
    with pytest.raises(ChunkCorrupt, match="do not match the id"):
        store.put_chunks([good, (bad_id, bad_blob + b"x")])
    assert store.has_chunks([good[0], bad_id]) == [False, False]
    assert store.chunk_count == 0
    with pytest.raises(ChunkCorrupt):
        store.put_chunks([(b"short", b"")])


def test_never_overwrites(store: ChunkStore) -> None:
    cid, blob = chunk()
    assert store.put_chunks([(cid, blob)]) == (1, len(blob))
    assert store.put_chunks([(cid, blob), (cid, blob)]) == (0, 0)
    assert store.chunk_count == 1 and store.chunk_bytes == len(blob)
    # Same id, other bytes: refused by the id check, original intact.
    with pytest.raises(ChunkCorrupt):
        store.put_chunks([(cid, os.urandom(len(blob)))])
    assert store.get_chunk(cid) == blob


def test_duplicates_inside_one_batch_count_once(store: ChunkStore) -> None:
    cid, blob = chunk()
    assert store.put_chunks([(cid, blob)] * 3) == (1, len(blob))


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data"
    s = ChunkStore(path)
    items = [chunk(), chunk(200)]
    s.put_chunks(items)
    s.add_snapshot(b"s" * 32, b"signed", 2, 2, 123)
    s.close()
    s = ChunkStore(path)  # same process: close() must release the RocksDB lock
    try:
        assert s.chunk_count == 2
        assert [s.get_chunk(c) for c, _ in items] == [b for _, b in items]
        assert s.has_snapshot(b"s" * 32) and s.snapshot_state(b"s" * 32) == (2, 2, 123)
        assert [pos for pos, _, _ in s.iter_snapshot_log()] == [1]
        assert s.add_snapshot(b"t" * 32, b"signed2", 0, 0, 0) == 2
    finally:
        s.close()


def test_chunks_survive_a_crash_after_sync(tmp_path: Path) -> None:
    """Chunks written without WAL are durable once sync_chunks() returned (what a snapshot
    store relies on). Simulated by reopening a copy of the directory taken after the sync."""
    import shutil

    path = tmp_path / "data"
    s = ChunkStore(path)
    items = [chunk() for _ in range(5)]
    s.put_chunks(items)
    s.sync_chunks()
    shutil.copytree(path, tmp_path / "crashed", ignore=shutil.ignore_patterns("LOCK"))
    s.close()
    c = ChunkStore(tmp_path / "crashed")
    try:
        assert all(c.get_chunk(cid) == blob for cid, blob in items)
    finally:
        c.close()


def test_flipped_byte_in_blob_file_is_quarantined_and_reported_absent(tmp_path: Path) -> None:
    path = tmp_path / "data"
    s = ChunkStore(path)
    victim, other = chunk(), chunk()
    s.put_chunks([victim, other])
    s.close()
    assert blob_files(path), "large chunks are expected in RocksDB blob files"
    damaged = flip_on_disk(path, victim[1][1000:1032])
    assert damaged.suffix == ".blob"
    s = ChunkStore(path)
    try:
        assert s.get_chunk(victim[0]) is None  # detected, not returned, no exception
        assert s.quarantined_count() == 1
        assert s.has_chunks([victim[0], other[0]]) == [False, True]
        assert s.get_chunk(other[0]) == other[1]
        assert (s.chunk_count, s.chunk_bytes) == (1, len(other[1]))
        # The good copy can be stored again (repair) once quarantined.
        assert s.put_chunks([victim]) == (1, len(victim[1]))
    finally:
        s.close()


@pytest.mark.parametrize("harm", ["truncate", "delete"])
def test_truncated_or_missing_blob_file_quarantines_its_chunks(tmp_path: Path, harm: str) -> None:
    """A blob file cut short or gone: its chunks are reported absent and quarantined (so that
    replication fetches them again and restorers are told "missing"), never a read error that
    would make callers drop the node; chunks in other blob files are still served."""
    path = tmp_path / "data"
    s = ChunkStore(path)
    lost, kept = [chunk() for _ in range(3)], [chunk() for _ in range(3)]
    s.put_chunks(lost)
    s.sync_chunks()  # one blob file per flush
    s.put_chunks(kept)
    s.close()
    first = blob_files(path)[0]
    assert lost[0][1] in first.read_bytes() and kept[0][1] not in first.read_bytes()
    if harm == "truncate":
        os.truncate(first, first.stat().st_size // 2)
    else:
        first.unlink()
    s = ChunkStore(path)
    try:
        assert [s.get_chunk(cid) for cid, _ in lost] == [None] * 3
        assert s.quarantined_count() == 3
        assert [s.get_chunk(cid) for cid, _ in kept] == [blob for _, blob in kept]
    finally:
        s.close()


def test_wrong_bytes_under_valid_checksums_are_quarantined(store: ChunkStore) -> None:
    """Bytes that RocksDB considers intact but that do not hash to their key (a bug, or an
    adversary rewriting the store consistently) are caught by the BLAKE3 check on read."""
    cid, blob = chunk()
    store.put_chunks([(cid, blob)])
    store._cf["chunks"].put(cid, b"forged" + blob[6:])  # bypass put's verification
    assert store.read_raw(cid) != blob
    assert store.get_chunk(cid) is None
    assert store.quarantined_count() == 1
    assert store.has_chunks([cid]) == [False]


def test_nothing_on_disk_keeps_the_arrival_order(tmp_path: Path) -> None:
    """A disk reader must not line up chunks by the order they arrived: within a flush the
    blob file holds them in key order, and the index holds no arrival time."""
    store = ChunkStore(tmp_path / "data")
    try:
        items = [chunk(2000 + i) for i in range(60)]  # arrival order: random ids
        assert [c for c, _ in items] != sorted(c for c, _ in items)
        for start in range(0, len(items), 7):  # several PutChunks batches, one flush
            store.put_chunks(items[start : start + 7])
        store.sync_chunks()
        assert all(v[4:] == bytes(4) for v in _index_values(store, items))
    finally:
        store.close()
    files = blob_files(tmp_path / "data")
    assert len(files) == 1
    data = files[0].read_bytes()
    offsets = {cid: data.find(blob) for cid, blob in items}
    assert all(o >= 0 for o in offsets.values())
    assert sorted(offsets, key=offsets.__getitem__) == sorted(offsets)  # key order


def _index_values(store: ChunkStore, items: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [store._cf["chunk_index"][cid] for cid, _ in items]
