"""Accepting signed snapshot records and tracking how much of each a node holds."""

from __future__ import annotations

from collections.abc import Iterator

from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.errors import IncompleteSnapshot, NotHosted, Revoked
from samizdat.core.records import Snapshot, verify_snapshot
from samizdat.server.custody import NodeCustody
from samizdat.server.store import ChunkStore
from samizdat.v1 import records_pb2 as pb

_BATCH = 4096


def iter_referenced(store: ChunkStore, snap: Snapshot) -> Iterator[tuple[bytes, int] | None]:
    """Yield (id, stored size) for every chunk the snapshot references: its chunk lists, then
    their contents. Yields None for each chunk list the store lacks (contents unknown)."""
    for list_id in snap.record.chunk_list_ids:
        blob = store.get_chunk(list_id)
        if blob is None:
            yield None
            continue
        yield list_id, len(blob)
        yield from decode_chunk_list(list_id, blob)


def count_held(store: ChunkStore, snap: Snapshot) -> tuple[int, int, int]:
    """Return (chunks held, chunks total, stored bytes of the snapshot) for this store.

    Total is known exactly once every chunk list is present; until then it comes from the
    signed totals. O(chunks): used when a record arrives or its chunks do, not per round.
    """
    held = total = nbytes = 0
    lists_missing = 0
    batch: list[tuple[bytes, int]] = []

    def drain() -> int:
        present = store.has_chunks([cid for cid, _ in batch])
        batch.clear()
        return sum(present)

    for item in iter_referenced(store, snap):
        if item is None:
            lists_missing += 1
            continue
        total += 1
        nbytes += item[1]
        batch.append(item)
        if len(batch) >= _BATCH:
            held += drain()
    held += drain()
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

    Raises SignatureError (forged), NotHosted (archive not hosted here), Revoked (signed by a
    revoked writer key and not kept by its revocation), IncompleteSnapshot (when
    `require_complete` and chunks are missing). Chunks are made durable first.
    """
    snap = verify_snapshot(signed)
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
