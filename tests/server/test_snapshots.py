"""accept_snapshot without gRPC: forged, foreign and incomplete records are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from samizdat.core.errors import IncompleteSnapshot, NotHosted, SignatureError
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot
from samizdat.server.custody import NodeCustody
from samizdat.server.snapshots import accept_snapshot, count_held
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb
from tests.crafted import random_snapshot

KEY = ArchiveKey(signing_seed=b"\x31" * 32, master_secret=b"\x32" * 32)
OTHER = ArchiveKey(signing_seed=b"\x33" * 32, master_secret=b"\x34" * 32)
HOSTED = frozenset({bytes(KEY.archive_id)})


def custody_of(store: ChunkStore) -> NodeCustody:
    return NodeCustody(store, lambda: HOSTED)


def build(key: ArchiveKey, n: int = 4) -> tuple[Snapshot, list[tuple[bytes, bytes]]]:
    """A snapshot of `n` data chunks (the first one doubles as the 'tree') and its blobs."""
    return random_snapshot(key, n, 3000)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = ChunkStore(tmp_path / "data")
    yield s
    s.close()


def test_complete_snapshot_is_stored_once(store: ChunkStore) -> None:
    snap, blobs = build(KEY)
    store.put_chunks(blobs)
    got, new = accept_snapshot(
        store, snap.signed, HOSTED, require_complete=True, custody=custody_of(store)
    )
    assert new and got.id == snap.id
    assert store.has_snapshot(snap.id)
    assert store.snapshot_state(snap.id)[:2] == (5, 5)
    got, new = accept_snapshot(
        store, snap.signed, HOSTED, require_complete=True, custody=custody_of(store)
    )
    assert not new
    assert len(list(store.iter_snapshot_log())) == 1


def test_bad_signature_is_refused_and_nothing_stored(store: ChunkStore) -> None:
    snap, blobs = build(KEY)
    store.put_chunks(blobs)
    forged = pb.SignedSnapshot(record=snap.signed.record, signature=bytes(64))
    with pytest.raises(SignatureError):
        accept_snapshot(store, forged, HOSTED, require_complete=True, custody=custody_of(store))
    # a record claiming KEY's archive, signed by another key
    record = pb.SnapshotRecord.FromString(snap.signed.record)
    record.sequence = 99
    raw = record.SerializeToString(deterministic=True)
    with pytest.raises(SignatureError):
        forged = pb.SignedSnapshot(record=raw, signature=OTHER.sign("snapshot record", raw))
        accept_snapshot(store, forged, HOSTED, require_complete=True, custody=custody_of(store))
    assert list(store.iter_snapshot_log()) == []


def test_archive_not_hosted_is_refused(store: ChunkStore) -> None:
    snap, blobs = build(OTHER)
    store.put_chunks(blobs)
    with pytest.raises(NotHosted, match="does not host archive"):
        accept_snapshot(
            store, snap.signed, HOSTED, require_complete=True, custody=custody_of(store)
        )
    with pytest.raises(NotHosted):
        accept_snapshot(
            store, snap.signed, HOSTED, require_complete=False, custody=custody_of(store)
        )
    assert not store.has_snapshot(snap.id)


@pytest.mark.parametrize("drop", ["data chunk", "chunk list"])
def test_incomplete_snapshot_is_refused_for_writers(store: ChunkStore, drop: str) -> None:
    snap, blobs = build(KEY)
    kept = blobs[1:] if drop == "data chunk" else blobs[:-1]
    store.put_chunks(kept)
    with pytest.raises(IncompleteSnapshot, match="missing"):
        accept_snapshot(
            store, snap.signed, HOSTED, require_complete=True, custody=custody_of(store)
        )
    assert not store.has_snapshot(snap.id)
    # Replication may record it incomplete and fill it in later.
    _, new = accept_snapshot(
        store, snap.signed, HOSTED, require_complete=False, custody=custody_of(store)
    )
    held, total, _ = store.snapshot_state(snap.id)
    assert new and held < total
    store.put_chunks(blobs)
    assert count_held(store, snap)[:2] == (5, 5)


def test_custody_records_held_or_not_hosted_cost_no_signature_check(store: ChunkStore) -> None:
    """A peer may list thousands of custody records and anyone may send them: one of an
    archive not hosted here, or one already held, is answered from its bytes alone (a broken
    signature there shows that no check ran); one of a hosted archive is verified."""
    from samizdat.core.custody import sign_custody_record

    custody = custody_of(store)
    ours = sign_custody_record(
        KEY, pb.CustodyRecord(node_revocation=pb.NodeRevocation(node_id="x"))
    )
    theirs = sign_custody_record(
        OTHER, pb.CustodyRecord(node_revocation=pb.NodeRevocation(node_id="x"))
    )
    unsigned = bytes(64)
    with pytest.raises(NotHosted):
        custody.accept(pb.SignedCustodyRecord(record=theirs.signed.record, signature=unsigned))
    with pytest.raises(SignatureError):
        custody.accept(pb.SignedCustodyRecord(record=ours.signed.record, signature=unsigned))
    assert custody.accept(ours.signed) == (ours, True)
    replay = pb.SignedCustodyRecord(record=ours.signed.record, signature=unsigned)
    record, new = custody.accept(replay)
    assert not new and record.signed == ours.signed  # the verified copy, not the replay's
    assert custody.records() == [ours.signed]
