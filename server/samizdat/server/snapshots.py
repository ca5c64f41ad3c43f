"""Accepting signed snapshot records and tracking how much of each a node holds."""

from __future__ import annotations

from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.errors import IncompleteSnapshot, NotHosted, Revoked
from samizdat.core.records import Snapshot, verify_restorable, verify_snapshot
from samizdat.server.custody import NodeCustody
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb

_BATCH = 4096


ListCounts = dict[bytes, tuple[int, int, int]]


def _count_list(store: ChunkStore, list_id: bytes) -> tuple[int, int, int] | None:
    """(held, total, stored bytes) of one chunk list and the chunks it names; None if absent."""
    blob = store.get_chunk(list_id)
    if blob is None:
        return None
    held, total, nbytes = 1, 1, len(blob)
    entries = decode_chunk_list(list_id, blob)
    for i in range(0, len(entries), _BATCH):
        part = entries[i : i + _BATCH]
        held += sum(store.has_chunks([cid for cid, _ in part]))
        total += len(part)
        nbytes += sum(size for _, size in part)
    return held, total, nbytes


def count_held(
    store: ChunkStore, snap: Snapshot, cache: ListCounts | None = None
) -> tuple[int, int, int]:
    """Return (chunks held, chunks total, stored bytes of the snapshot) for this store.

    Total is known exactly once every chunk list is present; until then it comes from the
    signed totals. O(chunks): used when a record arrives or its chunks do, not per round.
    `cache` keeps the counts per chunk list for snapshots that share lists, as long as the
    caller adds no chunks meanwhile.
    """
    held = total = nbytes = 0
    lists_missing = 0
    for list_id in snap.record.chunk_list_ids:
        counts = cache.get(list_id) if cache is not None else None
        if counts is None:
            counts = _count_list(store, list_id)
            if counts is None:
                lists_missing += 1
                continue
            if cache is not None:
                cache[list_id] = counts
        held, total, nbytes = held + counts[0], total + counts[1], nbytes + counts[2]
    if lists_missing:
        total = max(total, len(snap.record.chunk_list_ids) + snap.record.totals.chunks)
        nbytes = max(nbytes, snap.record.totals.stored_bytes)
    return held, total, nbytes


def accept_snapshot(
    store: ChunkStore,
    signed: pb.SignedSnapshot,
    hosted: frozenset[bytes],
    *,
    require_complete: bool,
    custody: NodeCustody,
) -> tuple[Snapshot, bool]:
    """Verify a signed record and store it; return (snapshot, newly stored).

    Raises SignatureError (forged, or naming no tree), NotHosted (archive not hosted here),
    Revoked (signed by a revoked writer key and not kept by its revocation),
    IncompleteSnapshot (when `require_complete` and chunks are missing). Chunks are made
    durable first.
    """
    snap = verify_restorable(verify_snapshot(signed))
    if bytes(snap.archive_id) not in hosted:
        raise NotHosted(f"this node does not host archive {snap.archive_id.short()}")
    refusal = custody.snapshot_refusal(bytes(snap.id), snap.record)
    if refusal:
        raise Revoked(f"snapshot refused: {refusal}")
    custody.learn_certificate(signed)
    if store.has_snapshot(snap.id):
        return snap, False
    held, total, nbytes = count_held(store, snap)
    if require_complete and held < total:
        raise IncompleteSnapshot(
            f"snapshot incomplete: {total - held} of {total} referenced chunks are missing"
        )
    store.sync_chunks()
    store.add_snapshot(snap.id, signed.SerializeToString(), held, total, nbytes)
    return snap, True
