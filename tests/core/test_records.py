"""Signed snapshot records: sign/verify round trips; every forgery is a SignatureError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.errors import SignatureError
from samizdat.core.ids import SnapshotId
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import RECORD_VERSION, sign_snapshot, verify_snapshot
from samizdat.v1 import records_pb2 as pb

KEY = ArchiveKey(signing_seed=b"\x11" * 32, master_secret=b"\x12" * 32)
OTHER = ArchiveKey(signing_seed=b"\x13" * 32, master_secret=b"\x14" * 32)

ids = st.binary(min_size=32, max_size=32)
records = st.builds(
    lambda seq, t, tree, lists, n: pb.SnapshotRecord(
        sequence=seq,
        created_unix_ns=t,
        tree_chunk_ids=tree,
        chunk_list_ids=lists,
        totals=pb.SnapshotTotals(files=n, chunks=len(lists), plaintext_bytes=n * 7),
        chunker=pb.ChunkerParams(min_size=1, avg_size=2, max_size=3),
    ),
    st.integers(0, 2**64 - 1),
    st.integers(1, 2**62),
    st.lists(ids, max_size=5),
    st.lists(ids, max_size=5),
    st.integers(0, 2**40),
)


@given(records)
@settings(max_examples=100, deadline=None)
def test_sign_verify_round_trip(record: pb.SnapshotRecord) -> None:
    snap = sign_snapshot(KEY, record)
    assert snap.archive_id == KEY.archive_id
    assert snap.id == SnapshotId.of(snap.signed.record)
    wire = pb.SignedSnapshot.FromString(snap.signed.SerializeToString())
    back = verify_snapshot(wire, bytes(KEY.archive_id))
    assert back.id == snap.id
    assert back.record == snap.record
    assert back.record.version == RECORD_VERSION


@given(records, st.data())
@settings(max_examples=100, deadline=None)
def test_any_tampered_byte_is_refused(record: pb.SnapshotRecord, data: st.DataObject) -> None:
    snap = sign_snapshot(KEY, record)
    field = data.draw(st.sampled_from(["record", "signature"]))
    raw = bytearray(getattr(snap.signed, field))
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    forged = pb.SignedSnapshot()
    forged.CopyFrom(snap.signed)
    setattr(forged, field, bytes(raw))
    with pytest.raises(SignatureError):
        verify_snapshot(forged)


def test_record_signed_by_another_key_is_refused() -> None:
    # A seized node signs a record naming our archive with its own key.
    snap = sign_snapshot(OTHER, pb.SnapshotRecord(sequence=1))
    record = pb.SnapshotRecord.FromString(snap.signed.record)
    record.archive_id = bytes(KEY.archive_id)
    raw = record.SerializeToString(deterministic=True)
    forged = pb.SignedSnapshot(record=raw, signature=OTHER.sign("snapshot record", raw))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_snapshot(forged)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_snapshot(forged, bytes(KEY.archive_id))


def test_record_of_another_archive_is_refused_when_archive_given() -> None:
    snap = sign_snapshot(OTHER, pb.SnapshotRecord(sequence=1))
    verify_snapshot(snap.signed)  # valid on its own
    with pytest.raises(SignatureError, match="another archive"):
        verify_snapshot(snap.signed, bytes(KEY.archive_id))


def test_malformed_unsigned_and_wrong_version_records_are_refused() -> None:
    with pytest.raises(SignatureError, match="malformed"):
        verify_snapshot(pb.SignedSnapshot(record=b"\xff\xff\xff", signature=b""))
    with pytest.raises(SignatureError):
        verify_snapshot(pb.SignedSnapshot())
    snap = sign_snapshot(KEY, pb.SnapshotRecord(sequence=1))
    with pytest.raises(SignatureError):
        verify_snapshot(pb.SignedSnapshot(record=snap.signed.record, signature=b""))
    record = pb.SnapshotRecord.FromString(snap.signed.record)
    record.version = RECORD_VERSION + 1
    raw = record.SerializeToString(deterministic=True)
    with pytest.raises(SignatureError, match="unsupported version"):
        verify_snapshot(pb.SignedSnapshot(record=raw, signature=KEY.sign("snapshot record", raw)))


@pytest.mark.parametrize("field", ["tree_chunk_ids", "chunk_list_ids"])
@pytest.mark.parametrize("size", [0, 31, 33])
def test_a_signed_record_naming_a_chunk_id_of_the_wrong_size_is_refused(
    field: str, size: int
) -> None:
    """A writer can sign such a record; no store could ever hold that chunk, so the record
    would stay incomplete for ever on every node. It is malformed, however well signed."""
    record = pb.SnapshotRecord(tree_chunk_ids=[b"\x01" * 32], chunk_list_ids=[b"\x02" * 32])
    getattr(record, field).append(b"\x03" * size)
    snap = sign_snapshot(KEY, record)
    with pytest.raises(SignatureError, match="a chunk id is not 32 bytes"):
        verify_snapshot(snap.signed)
