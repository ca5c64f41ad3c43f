"""Accepting signed snapshot records on a node: the one accept path, used by PutSnapshot and
by replication. The store-side half (counters, durable write) is samizdat.store.holdings."""

from __future__ import annotations

from samizdat.core.errors import NotHosted, Revoked
from samizdat.core.ids import ArchiveId
from samizdat.core.records import Snapshot, verify_restorable, verify_snapshot
from samizdat.server.custody import NodeCustody
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.holdings import ListCounts, count_held, store_snapshot
from samizdat.v1 import records_pb2 as pb

__all__ = ["ListCounts", "accept_snapshot", "accept_verified", "count_held", "verify_record"]


def verify_record(signed: pb.SignedSnapshot) -> Snapshot:
    """The verified, restorable snapshot of a signed record. Raises SignatureError (forged,
    or naming no tree)."""
    return verify_restorable(verify_snapshot(signed))


def check_acceptable(snap: Snapshot, hosted: frozenset[ArchiveId], custody: NodeCustody) -> None:
    """Raise NotHosted (archive not hosted here) or Revoked (signed by a revoked writer key
    and not kept by its revocation); otherwise learn the writer's certificate."""
    if snap.archive_id not in hosted:
        raise NotHosted(f"this node does not host archive {snap.archive_id.short()}")
    refusal = custody.snapshot_refusal(snap.id, snap.record)
    if refusal:
        raise Revoked(f"snapshot refused: {refusal}")
    custody.learn_certificate(snap.signed)


def accept_verified(
    store: ChunkStore,
    snap: Snapshot,
    hosted: frozenset[ArchiveId],
    *,
    require_complete: bool,
    custody: NodeCustody,
) -> bool:
    """Store a snapshot whose signature the caller verified (`verify_record`); return True if
    newly stored. Raises NotHosted, Revoked, IncompleteSnapshot (when `require_complete` and
    chunks are missing). Chunks are made durable first."""
    check_acceptable(snap, hosted, custody)
    return store_snapshot(store, snap, require_complete=require_complete)


def accept_snapshot(
    store: ChunkStore,
    signed: pb.SignedSnapshot,
    hosted: frozenset[ArchiveId],
    *,
    require_complete: bool,
    custody: NodeCustody,
) -> tuple[Snapshot, bool]:
    """Verify a signed record and store it; return (snapshot, newly stored). Raises
    SignatureError and what `accept_verified` raises."""
    snap = verify_record(signed)
    new = accept_verified(store, snap, hosted, require_complete=require_complete, custody=custody)
    return snap, new
