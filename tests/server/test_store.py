"""ChunkStore in process: ids verified on put, never overwritten, corruption on read is
detected, quarantined and reported absent; everything survives a reopen."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import tempfile
from pathlib import Path

import blake3
import pytest

from samizdat.core.errors import ChunkCorrupt, OutOfSpace, SamizdatError, StoreError
from samizdat.rpc.limits import MAX_MESSAGE_BYTES
from samizdat.store import chunkstore, packs
from samizdat.store.chunkstore import _INDEX, PACKS_DIR, STORE_FORMAT, ChunkStore, pack_location
from samizdat.store.packs import PackReader
from tests.damage import flip_on_disk, overwrite_stored, pack_files
from tests.legacy import downgrade_store_to_format1


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


def test_views_into_bytes_are_kept_and_read_back_as_bytes(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "data")
    items = [chunk(), chunk(70_000)]
    message = b"head" + b"".join(blob for _, blob in items)
    view = memoryview(message)
    views = [(items[0][0], view[4:5004]), (items[1][0], view[5004:])]
    assert store.put_chunks(views) == (2, 75_000)
    buffered = store.get_chunk(items[1][0])
    assert type(buffered) is bytes and buffered == items[1][1]
    store.sync_chunks()
    assert [store.get_chunk(cid) for cid, _ in items] == [blob for _, blob in items]
    store.close()
    store = ChunkStore(tmp_path / "data")
    assert [store.get_chunk(cid) for cid, _ in items] == [blob for _, blob in items]
    store.close()


def test_a_blob_that_can_change_is_copied_before_it_is_verified(store: ChunkStore) -> None:
    cid, blob = chunk()
    mutable = bytearray(blob)
    assert store.put_chunks([(cid, memoryview(mutable).toreadonly())]) == (1, len(blob))
    mutable[0] ^= 0xFF  # whoever holds the buffer changes it after the put
    assert store.get_chunk(cid) == blob
    shaped = memoryview(blob).cast("B", (2, len(blob) // 2))  # len() counts rows, not bytes
    assert store.put_chunks([(cid, shaped)]) == (0, 0)
    other_id, other = chunk(5000)
    assert store.put_chunks([(other_id, memoryview(other).cast("B", (2, 2500)))]) == (1, 5000)
    store.sync_chunks()
    assert [store.get_chunk(cid), store.get_chunk(other_id)] == [blob, other]


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


def test_flipped_byte_in_pack_is_quarantined_and_reported_absent(tmp_path: Path) -> None:
    path = tmp_path / "data"
    s = ChunkStore(path)
    victim, other = chunk(), chunk()
    s.put_chunks([victim, other])
    s.close()
    assert pack_files(path), "chunks are expected in pack files"
    damaged = flip_on_disk(path, victim[1][1000:1032])
    assert damaged.suffix == ".pack"
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
def test_truncated_or_missing_pack_quarantines_its_chunks(tmp_path: Path, harm: str) -> None:
    """A pack cut short or gone: its chunks are reported absent and quarantined (so that
    replication fetches them again and restorers are told "missing"), never a read error that
    would make callers drop the node; chunks in other packs are still served."""
    path = tmp_path / "data"
    s = ChunkStore(path)
    lost, kept = [chunk() for _ in range(3)], [chunk() for _ in range(3)]
    s.put_chunks(lost)
    s.sync_chunks()  # one pack per flush
    s.put_chunks(kept)
    s.close()
    first = pack_files(path)[0]
    assert lost[0][1] in first.read_bytes() and kept[0][1] not in first.read_bytes()
    if harm == "truncate":  # cut inside its first blob: a pack loses what lies past the cut
        os.truncate(first, 100)
    else:
        first.unlink()
    s = ChunkStore(path)
    try:
        assert [s.get_chunk(cid) for cid, _ in lost] == [None] * 3
        assert s.quarantined_count() == 3
        assert [s.get_chunk(cid) for cid, _ in kept] == [blob for _, blob in kept]
    finally:
        s.close()


def test_batch_reads_answer_as_single_reads_and_release_their_packs(tmp_path: Path) -> None:
    """get_chunks (one open per pack for a GetChunks answer) gives what get_chunk gives for
    every id, in order: blobs from several packs and from the write buffer, None for ids not
    held and for a pack that is gone (quarantined, as on a single read); no descriptor stays
    open once the batch ends or is abandoned half-way."""
    path = tmp_path / "data"
    s = ChunkStore(path)
    lost, kept = [chunk() for _ in range(3)], [chunk() for _ in range(3)]
    s.put_chunks(lost)
    s.sync_chunks()
    s.put_chunks(kept)
    s.sync_chunks()
    s.close()
    pack_files(path)[0].unlink()
    s = ChunkStore(path)
    try:
        buffered = chunk()
        s.put_chunks([buffered])  # still in the write buffer
        absent = chunk()[0]
        ids = [kept[1][0], lost[0][0], absent, buffered[0], kept[0][0], lost[2][0], kept[2][0]]
        fds = len(os.listdir("/proc/self/fd"))
        got = list(s.get_chunks(ids))
        assert [i for i, _ in got] == ids
        assert [b for _, b in got] == [
            kept[1][1],
            None,
            None,
            buffered[1],
            kept[0][1],
            None,
            kept[2][1],
        ]
        assert s.quarantined([lost[0][0], lost[2][0], kept[0][0]]) == [True, True, False]
        batch = s.get_chunks([kept[0][0], kept[1][0]])
        assert next(batch) == (kept[0][0], kept[0][1])
        batch.close()  # a cancelled GetChunks stream
        assert len(os.listdir("/proc/self/fd")) == fds
    finally:
        s.close()


def test_an_unfinished_batch_read_holds_few_descriptors(tmp_path: Path) -> None:
    """A reader that stops reading a GetChunks answer keeps its batch open (up to 30 s): the
    batch holds at most PackReader.MAX_OPEN pack descriptors, whatever the packs it spans."""
    s = ChunkStore(tmp_path / "data")
    try:
        spread = []
        for _ in range(PackReader.MAX_OPEN * 2 + 3):  # one pack each
            spread.append(chunk(1000))
            s.put_chunks(spread[-1:])
            s.sync_chunks()
        fds = len(os.listdir("/proc/self/fd"))
        batch = s.get_chunks([cid for cid, _ in spread] + [spread[0][0]])
        for cid, blob in spread:
            assert next(batch) == (cid, blob)
            assert len(os.listdir("/proc/self/fd")) <= fds + PackReader.MAX_OPEN
        assert next(batch) == spread[0]  # its pack was closed on the way: opened again
        batch.close()
        assert len(os.listdir("/proc/self/fd")) == fds
    finally:
        s.close()


def test_wrong_bytes_under_valid_checksums_are_quarantined(store: ChunkStore) -> None:
    """Bytes that do not hash to their key, in a pack whose size and index are intact (a bug,
    or an adversary rewriting the store consistently) are caught by the BLAKE3 check on read."""
    cid, blob = chunk()
    store.put_chunks([(cid, blob)])
    overwrite_stored(store, cid, b"forged" + blob[6:])
    assert store.read_raw(cid) != blob
    assert store.get_chunk(cid) is None
    assert store.quarantined_count() == 1
    assert store.has_chunks([cid]) == [False]


def test_nothing_on_disk_keeps_the_arrival_order(tmp_path: Path) -> None:
    """A disk reader must not line up chunks by the order they arrived: within a flush the
    pack holds them in key order, and the index holds no arrival time."""
    store = ChunkStore(tmp_path / "data")
    try:
        items = [chunk(2000 + i) for i in range(60)]  # arrival order: random ids
        assert [c for c, _ in items] != sorted(c for c, _ in items)
        for start in range(0, len(items), 7):  # several PutChunks batches, one flush
            store.put_chunks(items[start : start + 7])
        store.sync_chunks()
        assert all(v[4:8] == bytes(4) for v in _index_values(store, items))
    finally:
        store.close()
    files = pack_files(tmp_path / "data")
    assert len(files) == 1
    data = files[0].read_bytes()
    offsets = {cid: data.find(blob) for cid, blob in items}
    assert all(o >= 0 for o in offsets.values())
    assert sorted(offsets, key=offsets.__getitem__) == sorted(offsets)  # key order


def _index_values(store: ChunkStore, items: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [store._cf["chunk_index"][cid] for cid, _ in items]


def _assert_consistent(store: ChunkStore) -> int:
    """Every indexed chunk reads back and hashes to its id; the counters match. Returns the
    chunk count."""
    count = nbytes = 0
    for chunk_id, size in store.iter_chunk_ids():
        blob = store.read_raw(chunk_id)
        assert blob is not None and blake3.blake3(blob).digest() == chunk_id
        assert len(blob) == size
        count, nbytes = count + 1, nbytes + size
    assert (store.chunk_count, store.chunk_bytes) == (count, nbytes)
    return count


def test_format1_store_opens_in_place_and_stays_readable(tmp_path: Path) -> None:
    """A store written before pack files (format 1: blobs in RocksDB) is opened as format 2
    without moving its chunks: they read back, quarantine works on them, and new chunks go to
    packs beside them."""
    path = tmp_path / "data"
    s = ChunkStore(path)
    old = [chunk(), chunk(100), chunk(300_000)]
    s.put_chunks(old)
    s.add_snapshot(b"s" * 32, b"signed", 3, 3, 1)
    s.close()
    assert downgrade_store_to_format1(path) == 3
    assert not (path / PACKS_DIR).exists()

    s = ChunkStore(path)
    try:
        assert s._cf["node"].get(b"store_format") == struct.pack("<I", STORE_FORMAT)
        assert [s.get_chunk(cid) for cid, _ in old] == [blob for _, blob in old]
        assert s.has_snapshot(b"s" * 32)
        new = [chunk(), chunk(2_000_000)]
        assert s.put_chunks([*old, *new]) == (2, sum(len(b) for _, b in new))
        s.sync_chunks()
        assert len(pack_files(path)) == 1
        assert _assert_consistent(s) == 5
        s.quarantine(old[2][0])  # a format 1 chunk leaves `chunks` as well
        assert s.read_raw(old[2][0]) is None and s.chunk_count == 4
    finally:
        s.close()
    s = ChunkStore(path)
    try:
        assert _assert_consistent(s) == 4
        assert s.put_chunks([old[2]]) == (1, len(old[2][1]))  # repaired into a pack
    finally:
        s.close()


def test_pack_written_but_never_indexed_is_removed_at_open(tmp_path: Path) -> None:
    """A crash between a pack's fsync and its index batch leaves a pack no index entry names:
    it is deleted at the next open, and the chunks in it count as never stored."""
    path = tmp_path / "data"
    s = ChunkStore(path)
    kept, lost = chunk(), chunk()
    s.put_chunks([kept])
    s.sync_chunks()
    s.put_chunks([lost])
    (first,) = pack_files(path)
    orphan = s.packs.path(s._next_pack)
    s.packs.write(s._next_pack, [lost[1]])  # the pack the next flush would write
    shutil.copytree(path, tmp_path / "crashed", ignore=shutil.ignore_patterns("LOCK"))
    s.close()
    c = ChunkStore(tmp_path / "crashed")
    try:
        assert [p.name for p in pack_files(tmp_path / "crashed")] == [first.name]
        assert orphan.name != first.name
        assert c.has_chunks([kept[0], lost[0]]) == [True, False]
        assert _assert_consistent(c) == 1
        assert c.put_chunks([lost]) == (1, len(lost[1]))
        c.sync_chunks()
        assert _assert_consistent(c) == 2
    finally:
        c.close()


def test_a_failed_pack_write_keeps_the_chunks_buffered(tmp_path: Path) -> None:
    """If a pack cannot be written, sync fails and nothing is indexed; the chunks stay
    readable in the buffer and the next sync writes them (no chunk reported present can be
    missing after a sync that succeeded)."""
    path = tmp_path / "data"
    s = ChunkStore(path)
    try:
        items = [chunk(), chunk()]
        s.put_chunks(items)
        (path / PACKS_DIR).write_bytes(b"")  # where the packs go is taken: no pack written
        with pytest.raises(SamizdatError):
            s.sync_chunks()
        assert s.has_chunks([c for c, _ in items]) == [True, True]
        assert [s.get_chunk(c) for c, _ in items] == [b for _, b in items]
        (path / PACKS_DIR).unlink()
        s.sync_chunks()
        assert _assert_consistent(s) == 2 and len(pack_files(path)) == 1
    finally:
        s.close()


def test_a_full_buffer_that_cannot_be_written_takes_nothing_more(tmp_path: Path) -> None:
    """Disk full: once the buffer is full and its pack cannot be written, every further put
    raises without buffering (memory stays bounded); once the disk has room, all is well."""
    path = tmp_path / "data"
    s = ChunkStore(path, pack_mb=1)
    try:
        (path / PACKS_DIR).write_bytes(b"")  # no pack can be written
        first, second = chunk(1_200_000), chunk()
        with pytest.raises(SamizdatError):
            s.put_chunks([first])  # taken, then the flush it triggers fails
        with pytest.raises(SamizdatError):
            s.put_chunks([second])
        assert s.has_chunks([first[0], second[0]]) == [True, False]
        (path / PACKS_DIR).unlink()
        assert s.put_chunks([second]) == (1, len(second[1]))
        s.sync_chunks()
        assert _assert_consistent(s) == 2
    finally:
        s.close()


def test_full_disk_bounds_the_buffer_and_nothing_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every pack write failing ENOSPC, a node fed chunks refuses them with OutOfSpace
    once its buffer is full (memory stays within the buffer plus one batch), and no sync
    claims them durable; once the disk has room the buffered chunks are written."""
    path = tmp_path / "data"
    s = ChunkStore(path, pack_mb=1)
    real_write, real_writev = os.write, os.writev

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    try:
        monkeypatch.setattr(packs.os, "write", disk_full)
        monkeypatch.setattr(packs.os, "writev", disk_full)
        batch_bytes = 8 * (128 << 10)
        refused = 0
        for _ in range(24):  # 24 MiB offered to a 1 MiB buffer
            try:
                s.put_chunks([chunk(128 << 10) for _ in range(8)])
            except OutOfSpace:
                refused += 1
            assert s.chunk_bytes <= (1 << 20) + batch_bytes
        assert refused >= 22
        with pytest.raises(OutOfSpace):
            s.sync_chunks()
        assert pack_files(path) == []
        held = s.chunk_count
        monkeypatch.setattr(packs.os, "write", real_write)
        monkeypatch.setattr(packs.os, "writev", real_writev)
        s.sync_chunks()
        assert _assert_consistent(s) == held
    finally:
        s.close()


def test_short_writes_still_write_every_blob_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pack is written in gathered system calls (packs.WRITE_BYTES, WRITE_VIEWS); when one
    writes less than asked (a signal, a quota) the rest follows, and every blob reads back
    at the offset returned."""
    real_writev = os.writev
    short = 0

    def writev_some(fd: int, views: list[memoryview]) -> int:
        nonlocal short
        if len(views) > 1 and short < 3:  # the first view and part of the second only
            short += 1
            return real_writev(fd, [views[0], views[1][: len(views[1]) // 2]])
        return real_writev(fd, views)

    monkeypatch.setattr(packs.os, "writev", writev_some)
    blobs = [os.urandom(n) for n in (700, 5000, 0, 300_000, 900_000, 1 << 20, 12, 40_000)]
    blobs += [os.urandom(600) for _ in range(packs.WRITE_VIEWS + 5)]
    pack_dir = packs.PackDir(tmp_path / "packs")
    offsets = pack_dir.write(0, [memoryview(b) for b in blobs])
    assert short == 3
    assert [pack_dir.read(0, o, len(b)) for o, b in zip(offsets, blobs, strict=True)] == blobs
    assert pack_dir.path(0).stat().st_size == sum(map(len, blobs))


def test_an_empty_blob_is_a_chunk_like_any_other(store: ChunkStore) -> None:
    empty = (blake3.blake3(b"").digest(), b"")
    assert store.put_chunks([empty]) == (1, 0)
    assert store.get_chunk(empty[0]) == b"" and store.has_chunks([empty[0]]) == [True]
    store.sync_chunks()
    assert store.get_chunk(empty[0]) == b"" and store.chunk_size(empty[0]) == 0


def test_pack_that_is_a_fifo_is_damage_not_a_hang(tmp_path: Path) -> None:
    """A carried store whose pack is a FIFO (or a symlink): reads fail at once as a pack
    that is gone; the chunk is quarantined and reported absent."""
    path = tmp_path / "data"
    s = ChunkStore(path)
    items = [chunk(), chunk()]
    s.put_chunks(items)
    s.sync_chunks()
    s.close()
    (pack,) = pack_files(path)
    pack.unlink()
    os.mkfifo(pack)
    s = ChunkStore(path)
    try:
        with pytest.raises(FileNotFoundError):
            s.read_raw(items[0][0])
        assert s.get_chunk(items[0][0]) is None
        assert s.quarantined([items[0][0]]) == [True]
    finally:
        s.close()
    pack.unlink()
    target = tmp_path / "elsewhere"
    target.write_bytes(items[0][1] + items[1][1])
    pack.symlink_to(target)
    s = ChunkStore(path)
    try:
        with pytest.raises(FileNotFoundError):
            s.read_raw(items[1][0])
    finally:
        s.close()


def test_unlistable_packs_dir_at_start_is_a_store_error(tmp_path: Path) -> None:
    """listdir refused at node start (here ENOTDIR; EACCES and EIO alike): a StoreError
    naming the problem, not a traceback."""
    path = tmp_path / "data"
    ChunkStore(path).close()
    shutil.rmtree(path / PACKS_DIR, ignore_errors=True)
    (path / PACKS_DIR).write_bytes(b"")
    with pytest.raises(StoreError, match="cannot clean up the pack files"):
        ChunkStore(path)


def test_views_count_the_whole_message_they_keep_alive(tmp_path: Path) -> None:
    """A sender that wraps each new small chunk in a message of megabytes (duplicates of a
    chunk the node holds, or of itself) must not make the buffer pin megabytes per stored
    byte: the messages kept alive count towards a pack, once each, and fill it."""
    store = ChunkStore(tmp_path / "data")
    store._pack_bytes = 8 << 20
    old_id, old = chunk(4096)
    store.put_chunks([(old_id, old)])
    store.sync_chunks()
    packs_before = len(store.packs.numbers())
    for _ in range(3):  # 3 x 4 MiB held for 3 x 4 KiB stored: past 8 MiB, written out
        new_id, new = chunk(4096)
        message = new + old * 1024
        view = memoryview(message)
        parts = [(new_id, view[:4096])] + [
            (old_id, view[4096 * i : 4096 * (i + 1)]) for i in range(1, 1025)
        ]
        store.put_chunks(parts)
        store.put_chunks([(new_id, view[:4096])] * 2)  # the same message again: counted once
    assert len(store.packs.numbers()) > packs_before
    store.close()


def test_an_index_lying_about_a_blob_size_reads_nothing(tmp_path: Path) -> None:
    """A seized disk's index can name any size up to 4 GiB for a chunk (its pack extended
    sparsely, at no disk cost): the blob is damage, read as nothing, never allocated."""
    assert MAX_MESSAGE_BYTES < packs.MAX_BLOB_BYTES  # a blob that travelled fits the bound
    store = ChunkStore(tmp_path / "data")
    blob = b"\x07" * 1000
    chunk_id = blake3.blake3(blob).digest()
    store.put_chunks([(chunk_id, blob)])
    store.sync_chunks()
    raw = store._cf["chunk_index"].get(chunk_id)
    number, offset, _size = pack_location(raw)  # type: ignore[misc]
    _, verified, _, _ = _INDEX.unpack(raw)
    lie = packs.MAX_BLOB_BYTES + 1
    store._cf["chunk_index"][chunk_id] = _INDEX.pack(lie, verified, number, offset)
    os.truncate(store.packs.path(number), offset + lie)
    assert store.read_raw(chunk_id) == b""
    assert store.get_chunk(chunk_id) is None  # and quarantined, like any damaged blob
    assert not store.has_chunks([chunk_id])[0]
    store.close()


@pytest.mark.parametrize("which", ["MANIFEST-", "OPTIONS-", ".log"])
def test_carried_store_with_a_fifo_among_its_files_is_refused_not_a_hang(
    tmp_path: Path, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A carried copy whose MANIFEST, OPTIONS or write-ahead log is a FIFO: RocksDB's open of
    it would block for ever (restore --store hung); the read-only open refuses it at once,
    naming the file, and leaves no shadow directory behind."""
    path = tmp_path / "data"
    ChunkStore(path).close()
    name = next(n for n in sorted(os.listdir(path)) if which in n)
    (path / name).unlink()
    os.mkfifo(path / name)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the shadow would go
    with pytest.raises(StoreError, match=f"{name} is not a regular file"):
        ChunkStore(path, read_only=True)
    assert not list(temp.iterdir())


@pytest.mark.parametrize("where", ["linking", "opening"])
def test_an_interrupted_read_only_open_leaves_no_shadow(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C (KeyboardInterrupt) while the shadow is made or RocksDB opens from it: no
    shadow directory of links to the copy is left in TMPDIR (review R28)."""
    path = tmp_path / "data"
    ChunkStore(path).close()
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    if where == "linking":
        monkeypatch.setattr(os, "symlink", interrupt)
    else:
        monkeypatch.setattr(chunkstore, "_open_shadow", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ChunkStore(path, read_only=True)
    assert not list(temp.iterdir())


@pytest.mark.parametrize("shape", ["large", "symlink"])
def test_carried_store_with_a_large_or_linked_config_is_refused_not_copied(
    tmp_path: Path, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rocksdict's config file is the one file the read-only open copies: a carried copy's
    sparse 1 GiB one (or a link to any large file) filled TMPDIR (review R22). It is refused,
    naming it, and no shadow directory is left."""
    path = tmp_path / "data"
    ChunkStore(path).close()
    config = path / "rocksdict-config.json"
    config.unlink()
    if shape == "large":
        with open(config, "wb") as f:
            f.truncate(1 << 30)  # sparse: costs its maker nothing
    else:
        big = tmp_path / "big"
        with open(big, "wb") as f:
            f.truncate(1 << 30)
        config.symlink_to(big)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with pytest.raises(StoreError, match="rocksdict-config.json"):
        ChunkStore(path, read_only=True)
    assert not list(temp.iterdir())
