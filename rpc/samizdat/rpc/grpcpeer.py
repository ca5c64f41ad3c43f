"""GrpcPeer: the Peer protocol (samizdat.core.peer) over one node's gRPC services.

A thin adapter over NodeClient (samizdat.rpc.remote), which makes the calls (tokens,
deadlines, stall guard, error mapping); this module turns its wire messages into the
protocol's dataclasses (samizdat.rpc.wire) and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from samizdat.core.errors import UsageError
from samizdat.core.ids import ArchiveId
from samizdat.core.peer import (
    ChunkPart,
    CustodyPage,
    PutChunksResult,
    PutSnapshotResult,
    SnapshotPage,
)
from samizdat.rpc.limits import MAX_BATCH_IDS
from samizdat.rpc.remote import NodeClient
from samizdat.rpc.wire import chunks_to_wire, part_from_bytes
from samizdat.v1 import records_pb2 as pb


class GrpcPeer:
    """A node reached over gRPC (TLS pinned to its id, or loopback plaintext).

    `has_role`: the token role HasChunks is asked with (a writer asks before uploading, with
    a writer token; readers and peers as readers)."""

    def __init__(self, client: NodeClient, *, has_role: int = pb.ROLE_READER) -> None:
        self.client = client
        self.has_role = has_role

    @property
    def label(self) -> str:
        return self.client.label

    @property
    def damage_is_local(self) -> bool:
        return False

    def list_page(
        self, archive_id: ArchiveId | None, after: int, max_count: int = 0
    ) -> SnapshotPage:
        return self.client.list_page(archive_id, after, max_count)

    def custody_page(self, after: int) -> CustodyPage:
        return self.client.custody_page(after)

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        return self.client.has_chunks(list(ids), role=self.has_role)

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        if len(ids) > MAX_BATCH_IDS:
            raise UsageError(f"at most {MAX_BATCH_IDS} ids per call")
        for response in self.client.get_chunks_serialized(list(ids)):
            yield part_from_bytes(response, self.label)

    def put_chunks(
        self, archive_id: ArchiveId, batches: Iterable[Sequence[tuple[bytes, bytes]]]
    ) -> PutChunksResult:
        answer = self.client.put_chunks(chunks_to_wire(archive_id, batches))
        return PutChunksResult(answer.chunks_received, answer.chunks_stored, answer.bytes_stored)

    def put_snapshot(self, signed: pb.SignedSnapshot) -> PutSnapshotResult:
        answer = self.client.put_snapshot(signed)
        return PutSnapshotResult(answer.snapshot_id, answer.already_present)

    def notify_snapshots(self, archive_id: ArchiveId) -> None:
        self.client.notify_snapshots(archive_id, timeout=3.0)

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"GrpcPeer({self.label})"
