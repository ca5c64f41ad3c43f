"""Signed snapshot records: build, sign, load and verify.

A record is a serialized `SnapshotRecord` signed with the archive's Ed25519 key; its id is
BLAKE3-256 of the serialized record bytes (docs/format.md, "Snapshot records").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from samizdat.core.errors import SignatureError
from samizdat.core.ids import ArchiveId, SnapshotId
from samizdat.core.keys import ArchiveKey, verify_archive_signature
from samizdat.v1 import records_pb2 as pb

RECORD_VERSION = 1
SIGNING_CONTEXT = "snapshot record"


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot record."""

    id: SnapshotId
    signed: pb.SignedSnapshot
    record: pb.SnapshotRecord

    @property
    def archive_id(self) -> ArchiveId:
        return ArchiveId(self.record.archive_id)


def sign_snapshot(key: ArchiveKey, record: pb.SnapshotRecord) -> Snapshot:
    """Fill in version, archive id and time if unset, sign, and return the snapshot."""
    record.version = RECORD_VERSION
    record.archive_id = bytes(key.archive_id)
    if not record.created_unix_ns:
        record.created_unix_ns = time.time_ns()
    raw = record.SerializeToString(deterministic=True)
    signed = pb.SignedSnapshot(record=raw, signature=key.sign(SIGNING_CONTEXT, raw))
    return Snapshot(SnapshotId.of(raw), signed, record)


def verify_snapshot(signed: pb.SignedSnapshot, archive_id: bytes | None = None) -> Snapshot:
    """Parse a signed record and check its signature (and archive, when given).

    Raises SignatureError for anything not signed by the archive key it names.
    """
    record = pb.SnapshotRecord()
    try:
        record.ParseFromString(signed.record)
    except DecodeError:
        raise SignatureError("snapshot record is malformed") from None
    if record.version != RECORD_VERSION:
        raise SignatureError(f"snapshot record has unsupported version {record.version}")
    if len(record.archive_id) != 32:
        raise SignatureError("snapshot record names no valid archive")
    if archive_id is not None and record.archive_id != bytes(archive_id):
        raise SignatureError("snapshot record belongs to another archive")
    verify_archive_signature(record.archive_id, SIGNING_CONTEXT, signed.record, signed.signature)
    return Snapshot(SnapshotId.of(signed.record), signed, record)
