"""How much of a snapshot a store holds, and storing a verified record with its counters.

Used by the node (samizdat.server.snapshots: PutSnapshot and replication) and by a store on
disk as a peer (samizdat.store.localpeer): the store-side half of accepting a snapshot, after
the caller verified the record's signature (and, on a node, hosting and custody).
"""

from __future__ import annotations

from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.errors import IncompleteSnapshot
from samizdat.core.ids import SnapshotId
from samizdat.core.records import Snapshot
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


def stored_snapshot(signed_bytes: bytes) -> Snapshot:
    """A record as this store holds it: parsed, not verified again (every record is verified
    before it is stored; whoever reads a store copy verifies it: samizdat.client.listing)."""
    signed = pb.SignedSnapshot.FromString(signed_bytes)
    return Snapshot(
        SnapshotId.of(signed.record), signed, pb.SnapshotRecord.FromString(signed.record)
    )


def store_snapshot(store: ChunkStore, snap: Snapshot, *, require_complete: bool) -> bool:
    """Store a record the caller verified, with its counters; return True if newly stored.

    Raises IncompleteSnapshot (when `require_complete` and chunks are missing). The chunks
    are made durable first, so no stored record names a chunk a crash could lose."""
    if store.has_snapshot(bytes(snap.id)):
        store.sync_chunks()  # "already held" is an acknowledgement too: of durable chunks
        return False
    held, total, nbytes = count_held(store, snap)
    if require_complete and held < total:
        raise IncompleteSnapshot(
            f"snapshot incomplete: {total - held} of {total} referenced chunks are missing"
        )
    store.sync_chunks()  # after the count: every chunk it counted is durable
    store.add_snapshot(bytes(snap.id), snap.signed.SerializeToString(), held, total, nbytes)
    return True
