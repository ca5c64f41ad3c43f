"""Signed snapshot records: build, sign, load and verify.

A record is a serialized `SnapshotRecord` signed with the archive's Ed25519 key, or with a
writer key that the archive key certified (the certificate travels with the record); its id is
BLAKE3-256 of the serialized record bytes (docs/format.md, "Snapshot records").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from samizdat.core.custody import canonical_custody_record, verify_certificate
from samizdat.core.errors import KeyRoleError, SignatureError
from samizdat.core.ids import ID_SIZE, ArchiveId, SnapshotId
from samizdat.core.keys import ArchiveKey, verify_archive_signature
from samizdat.core.signing import parse_signed_body, verify_ed25519
from samizdat.v1 import records_pb2 as pb

RECORD_VERSION = 1
SIGNING_CONTEXT = "snapshot record"
# A signed record (record, signature and certificate) is at most this long. An honest record
# is a few KiB (a 100 GB archive's ~40 chunk lists and ~100 tree chunks); 256 KiB holds ~7,500
# ids, i.e. ~245 million chunks. The bound keeps any record well inside one listing page
# (LIST_PAGE_BYTES, 1 MiB), so a huge, validly signed record (a seized writer key) can never
# hold a listing, and replication with it, at its position (docs/format.md, section 9).
MAX_SIGNED_RECORD_BYTES = 256 * 1024


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
    """Fill in version, archive id, writer and time if unset, sign with the archive key or a
    writer key, and return the snapshot. A reader key raises KeyRoleError."""
    if not key.can_write:
        raise KeyRoleError("this is a reader key: it can restore and verify, not sign snapshots")
    record.version = RECORD_VERSION
    record.archive_id = bytes(key.archive_id)
    record.writer_key = key.member_key
    if not record.created_unix_ns:
        record.created_unix_ns = time.time_ns()
    raw = record.SerializeToString(deterministic=True)
    if key.member_key:
        signed = pb.SignedSnapshot(
            record=raw,
            signature=key.sign_as_member(SIGNING_CONTEXT, raw),
            certificate=key.certificate_record(),
        )
    else:
        signed = pb.SignedSnapshot(record=raw, signature=key.sign(SIGNING_CONTEXT, raw))
    _check_size(signed)
    return Snapshot(SnapshotId.of(raw), signed, record)


def canonical_snapshot(signed: pb.SignedSnapshot) -> pb.SignedSnapshot:
    """The record, its signature and its certificate's signed fields, without fields nobody
    signed (unknown ones, at any level): whoever relays a record cannot pad it (review R25: a
    lying peer padded genuine records to ~250 KiB, and the padded copy was kept and listed)."""
    out = pb.SignedSnapshot(record=signed.record, signature=signed.signature)
    if signed.HasField("certificate"):
        out.certificate.CopyFrom(canonical_custody_record(signed.certificate))
    return out


def _check_size(signed: pb.SignedSnapshot) -> None:
    """Raise SignatureError for a signed record longer than MAX_SIGNED_RECORD_BYTES."""
    size = signed.ByteSize()
    if size > MAX_SIGNED_RECORD_BYTES:
        raise SignatureError(
            f"snapshot record is malformed: {size} bytes signed, at most "
            f"{MAX_SIGNED_RECORD_BYTES} allowed"
        )


def verify_snapshot(signed: pb.SignedSnapshot, archive_id: ArchiveId | None = None) -> Snapshot:
    """Parse a signed record and check its signature (and archive, when given).

    Raises SignatureError for anything not signed by the archive key it names, or by a writer
    key that the archive key certified (revocations are the node's business: CustodyState), and
    for a signed record longer than MAX_SIGNED_RECORD_BYTES. The snapshot holds the record's
    canonical form (`canonical_snapshot`): that is what callers store and pass on.
    """
    signed = canonical_snapshot(signed)
    _check_size(signed)
    record = parse_signed_body(
        pb.SnapshotRecord(), signed.record, "snapshot record", RECORD_VERSION, archive_id
    )
    if any(len(i) != ID_SIZE for i in (*record.tree_chunk_ids, *record.chunk_list_ids)):
        # a signed record naming a chunk no store can hold would stay incomplete for ever,
        # and every node and client would stumble over it: it is malformed, not a snapshot
        raise SignatureError("snapshot record is malformed: a chunk id is not 32 bytes")
    if record.writer_key:
        verify_certificate(
            signed.certificate, record.archive_id, record.writer_key, pb.MEMBER_ROLE_WRITER
        )
        verify_ed25519(
            record.writer_key, SIGNING_CONTEXT, signed.record, signed.signature, "its writer key"
        )
    else:
        verify_archive_signature(
            record.archive_id, SIGNING_CONTEXT, signed.record, signed.signature
        )
    return Snapshot(SnapshotId.of(signed.record), signed, record)


def verify_restorable(snap: Snapshot) -> Snapshot:
    """Raise SignatureError (an unusable record, however well signed) unless the record names
    a tree to restore; return it. Nodes refuse such records and clients never pick one."""
    if not snap.record.tree_chunk_ids:
        raise SignatureError(f"snapshot record {snap.id.short()} names no tree")
    return snap
