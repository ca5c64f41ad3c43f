"""Conversions between the node API's wire messages (node.proto) and the transport-free
dataclasses of samizdat.core.peer. The only place where a listing or a chunk answer changes
form; used by the gRPC peer (client side) and by the servicers (server side)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from samizdat.core.peer import ChunkPart, CustodyPage, ListedSnapshot, SnapshotPage
from samizdat.v1 import node_pb2 as npb


def listed_from_wire(item: npb.StoredSnapshot) -> ListedSnapshot:
    return ListedSnapshot(
        signed=item.snapshot,
        chunks_held=item.chunks_held,
        chunks_total=item.chunks_total,
        position=item.position,
        snapshot_id=item.snapshot_id,
        bytes_total=item.bytes_total,
    )


def listed_to_wire(item: ListedSnapshot) -> npb.StoredSnapshot:
    return npb.StoredSnapshot(
        snapshot_id=item.snapshot_id,
        snapshot=item.signed,
        position=item.position,
        chunks_held=item.chunks_held,
        chunks_total=item.chunks_total,
        bytes_total=item.bytes_total,
    )


def counters_to_wire(item: ListedSnapshot) -> npb.StoredSnapshot:
    """A listed record's id, position and counters, without the record (GetStatus)."""
    return npb.StoredSnapshot(
        snapshot_id=item.snapshot_id,
        position=item.position,
        chunks_held=item.chunks_held,
        chunks_total=item.chunks_total,
        bytes_total=item.bytes_total,
    )


def page_from_wire(page: npb.ListSnapshotsResponse) -> SnapshotPage:
    return SnapshotPage(
        [listed_from_wire(item) for item in page.snapshots], page.last_position, page.more
    )


def page_to_wire(page: SnapshotPage) -> npb.ListSnapshotsResponse:
    return npb.ListSnapshotsResponse(
        snapshots=[listed_to_wire(item) for item in page.snapshots],
        last_position=page.last_position,
        more=page.more,
    )


def custody_from_wire(page: npb.ListCustodyRecordsResponse) -> CustodyPage:
    return CustodyPage(list(page.records), page.last_position)


def custody_to_wire(page: CustodyPage) -> npb.ListCustodyRecordsResponse:
    return npb.ListCustodyRecordsResponse(records=page.records, last_position=page.last_position)


def part_from_wire(response: npb.GetChunksResponse) -> ChunkPart:
    return ChunkPart([(c.id, c.data) for c in response.chunks], list(response.missing_ids))


def chunks_to_wire(
    archive_id: bytes, batches: Iterable[Sequence[tuple[bytes, bytes]]]
) -> Iterable[npb.PutChunksRequest]:
    for batch in batches:
        yield npb.PutChunksRequest(
            archive_id=archive_id, chunks=[npb.Chunk(id=c, data=d) for c, d in batch]
        )
