"""The custody records a node holds (writer certificates, revocations) and what they mean here.

Records come from custodians (`PutCustodyRecord`) or from peers (pulled each round, like
snapshot records). Each is verified against the archive key it names, and kept only for hosted
archives; the store keeps a grow-only log of them and `CustodyState` turns the set into the
node's view: revoked nodes (refused as callers and as peers, whatever node.toml says), revoked
writer keys (their new snapshots refused, their kept ones stay). See docs/format.md, "Custody".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import blake3
from google.protobuf.message import DecodeError

from samizdat.core.custody import (
    MAX_RECORD_BYTES,
    CustodyRecord,
    CustodyState,
    canonical_custody_record,
    verify_custody_record,
)
from samizdat.core.errors import NotHosted, SignatureError, UsageError
from samizdat.core.ids import ArchiveId, short_hex
from samizdat.core.peer import CustodyPage
from samizdat.rpc.limits import CUSTODY_PAGE_BYTES
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb

log = logging.getLogger(__name__)


class NodeCustody:
    """Custody records of the hosted archives, persisted in the store's custody log."""

    def __init__(self, store: ChunkStore, hosted: Callable[[], frozenset[ArchiveId]]) -> None:
        self.store = store
        self.hosted = hosted
        self.state = CustodyState()
        self._lock = threading.Lock()
        for position, raw in store.iter_custody_log(0):
            try:
                signed = canonical_custody_record(pb.SignedCustodyRecord.FromString(raw))
                self.state.add(verify_custody_record(signed))
            except Exception as e:  # a damaged entry must not stop the node
                log.error("custody record at position %d is unreadable: %s", position, e)

    def accept(self, signed: pb.SignedCustodyRecord) -> tuple[CustodyRecord, bool]:
        """Verify and store a record; return (record, newly stored). Raises SignatureError
        (not signed by the archive key it names), NotHosted (another archive) or UsageError
        (a record over MAX_RECORD_BYTES). A record already held, or of an archive not hosted,
        costs a hash and a parse, never a signature check (anyone may send records, and a
        peer may list thousands). Only the signed fields are kept: whoever relays a record
        cannot pad it (review R12: a padded copy made every listing of the node too large)."""
        signed = canonical_custody_record(signed)
        known = self.state.get(blake3.blake3(signed.record).digest())
        if known is not None:
            return known, False
        if signed.ByteSize() > MAX_RECORD_BYTES:
            raise UsageError(
                f"custody record of {signed.ByteSize():,} bytes is over the limit of "
                f"{MAX_RECORD_BYTES:,}"
            )
        try:
            archive_id = pb.CustodyRecord.FromString(signed.record).archive_id
        except DecodeError:
            raise SignatureError("custody record is malformed") from None
        if archive_id not in self.hosted():
            raise NotHosted(f"this node does not host archive {short_hex(archive_id)}")
        rec = verify_custody_record(signed)
        with self._lock:
            if rec.id in self.state:
                return rec, False
            self.store.add_custody_record(signed.SerializeToString())
            self.state.add(rec)
        log.info(
            "custody record=%s archive=%s %s %s serial=%d stored",
            short_hex(rec.id),
            short_hex(rec.archive_id),
            rec.kind,
            rec.subject[:17],
            rec.record.serial,
        )
        return rec, True

    def learn_certificate(self, snapshot: pb.SignedSnapshot) -> None:
        """Keep the writer certificate a verified snapshot carries (so status can name it)."""
        if snapshot.HasField("certificate"):
            try:
                self.accept(snapshot.certificate)
            except (SignatureError, NotHosted, UsageError) as e:
                log.debug("certificate in snapshot not kept: %s", e)

    def revoked_nodes(self) -> frozenset[str]:
        hosted = self.hosted()
        return frozenset(
            node_id
            for node_id, rec in self.state.revoked_nodes().items()
            if rec.archive_id in hosted
        )

    def snapshot_refusal(self, snapshot_id: bytes, record: pb.SnapshotRecord) -> str:
        return self.state.snapshot_refusal(snapshot_id, record)

    def writer_refusal(self, snapshot_id: bytes, archive_id: bytes, writer_key: bytes) -> str:
        return self.state.writer_refusal(snapshot_id, archive_id, writer_key)

    def key_revoked(self, archive_id: bytes, member_key: bytes) -> bool:
        return self.state.key_revocation(archive_id, member_key) is not None

    def records(self) -> list[pb.SignedCustodyRecord]:
        """Every held record of a hosted archive."""
        hosted = self.hosted()
        return [r.signed for r in self.state.records() if r.archive_id in hosted]

    def list(self, after: int) -> CustodyPage:
        """Records of hosted archives stored after position `after`: one page, at most
        CUSTODY_PAGE_BYTES of them (or the one record that is larger); `more` if others
        follow. (One answer of every record failed past the 4 MiB receive limit, and peers
        then stopped learning records, or anything else, from this node.)"""
        records: list[pb.SignedCustodyRecord] = []
        reached, hosted, size = after, self.hosted(), 0
        for position, raw in self.store.iter_custody_log(after):
            if records and size + len(raw) > CUSTODY_PAGE_BYTES:
                return CustodyPage(records, reached, more=True)
            reached = position
            signed = canonical_custody_record(pb.SignedCustodyRecord.FromString(raw))
            if signed.ByteSize() > MAX_RECORD_BYTES:  # kept before the limit: never listed
                log.warning("custody record at position %d is over the size limit", position)
                continue
            if pb.CustodyRecord.FromString(signed.record).archive_id in hosted:
                records.append(signed)
                size += signed.ByteSize()
        return CustodyPage(records, reached)
