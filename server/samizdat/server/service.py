"""gRPC servicers: thin adapters that decode, check access, call the node, encode.

They run behind samizdat.server.admission: the synchronous methods in its thread pool with a
`SyncContext`, the coroutines (PutChunks) on the event loop. Refusals are logged at debug
level only (anyone can provoke them) and counted by the admission layer's metrics."""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict
from typing import Any, TypeVar

import grpc

from samizdat.core.errors import OutOfSpace, SamizdatError, StoreError, UsageError
from samizdat.core.ids import ID_SIZE, ChunkId
from samizdat.core.records import verify_restorable, verify_snapshot
from samizdat.core.tokens import Caller
from samizdat.rpc.errors import abort_args
from samizdat.rpc.limits import AUTH_METADATA, MAX_BATCH_BYTES, MAX_BATCH_IDS
from samizdat.rpc.wire import (
    PutChunksWire,
    custody_to_wire,
    get_chunks_response,
    page_to_wire,
    parse_put_chunks_request,
)
from samizdat.server.access import caller_from_metadata, require_reader, require_writer
from samizdat.server.admission import Deferred, OffLoop
from samizdat.server.reports import PeerReport, ScrubReport, SnapshotReport
from samizdat.server.runtime import NodeRuntime
from samizdat.server.shared import SharedBuild
from samizdat.server.snapshots import accept_verified
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import node_pb2_grpc as rpc
from samizdat.v1 import records_pb2 as pb

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _refusal(rpc: str, error: SamizdatError) -> tuple[Any, ...]:
    """`context.abort` arguments for `error`. A fault of this node's own store is logged
    here in full and sent as its reason with a generic message: the caller never learns the
    node's paths or RocksDB's wording."""
    if isinstance(error, StoreError | OutOfSpace):
        log.error("rpc=%s failed: %s", rpc, error)
        generic = OutOfSpace("node disk is full") if isinstance(error, OutOfSpace) else None
        return abort_args(generic or StoreError("node store failed"))
    log.debug("rpc=%s refused: %s", rpc, error)
    return abort_args(error)


def _rpc(method: F) -> F:
    """End a call that raised a samizdat error with its status and reason code
    (samizdat.rpc.errors); never leak tracebacks to callers."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except SamizdatError as e:
            context.abort(*_refusal(method.__name__, e))

    return wrapper  # type: ignore[return-value]


def _stream_rpc(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except SamizdatError as e:
            context.abort(*_refusal(method.__name__, e))

    return wrapper  # type: ignore[return-value]


def _check_ids(ids: Any) -> list[ChunkId]:
    """The chunk ids of a request, or UsageError (InvalidArgument) for too many or one of
    another length than ID_SIZE."""
    if len(ids) > MAX_BATCH_IDS:
        raise UsageError(f"too many ids in one request (max {MAX_BATCH_IDS})")
    if any(len(i) != ID_SIZE for i in ids):
        raise UsageError("chunk ids must be 32 bytes")
    return [ChunkId(i) for i in ids]


def _peer_to_wire(report: PeerReport, member: bool) -> npb.PeerSyncStatus:
    """A peer as GetStatus shows it: to a stranger without its address, and its last error
    and offence only as a category (the error's reason code, the offence's kind), since the
    texts tell how a node reaches its peers (review R20)."""
    fields = asdict(report)
    fields["bad_chunks_received"] = fields.pop("bad_chunks")
    fields["bad_records_received"] = fields.pop("bad_records")
    fields["backed_off_until_unix"] = int(report.backed_off_until_unix)
    error_reason, offence_kind = fields.pop("last_error_reason"), fields.pop("last_offence_kind")
    if not member:  # the cluster's topology is for members only
        fields["address"] = ""
        fields["last_error"] = (error_reason or "error") if report.last_error else ""
        fields["last_offence"] = (offence_kind or "offence") if report.last_offence else ""
    return npb.PeerSyncStatus(**fields)


def _snapshot_to_wire(report: SnapshotReport) -> npb.StoredSnapshot:
    """A stored snapshot as GetStatus lists it: id, position and counters, no record."""
    return npb.StoredSnapshot(
        snapshot_id=report.snapshot_id,
        position=report.position,
        chunks_held=report.chunks_held,
        chunks_total=report.chunks_total,
        bytes_total=report.bytes_total,
    )


def _scrub_to_wire(report: ScrubReport) -> npb.ScrubStatus:
    fields = asdict(report)
    findings = fields.pop("findings")
    return npb.ScrubStatus(
        **fields,
        findings=[
            npb.ScrubFinding(
                chunk_id=bytes.fromhex(f["chunk_hex"]),
                found_unix=f["found_unix"],
                repaired_unix=f["repaired_unix"],
                detail=f["detail"],
            )
            for f in findings
        ],
    )


class _Base:
    def __init__(self, node: NodeRuntime) -> None:
        self.node = node

    def _authenticated(self, context: grpc.ServicerContext) -> bool:
        """True if the call carries a token that passes the reader rules."""
        if not any(k == AUTH_METADATA for k, _ in context.invocation_metadata()):
            return False
        try:
            require_reader(self.caller(context), self.node.config, self.node.custody)
        except SamizdatError:
            return False
        return True

    def caller(self, context: grpc.ServicerContext) -> Caller:
        return caller_from_metadata(
            context.invocation_metadata(), self.node.config, self.node.node_id
        )


class ChunkServicer(_Base, rpc.ChunkServiceServicer):
    @_stream_rpc
    def GetChunks(
        self, request: npb.GetChunksRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        """Serialized GetChunksResponses (samizdat.rpc.wire: each blob copied once)."""
        caller = self.caller(context)
        require_reader(caller, self.node.config, self.node.custody)
        ids = _check_ids(request.ids)
        chunks: list[tuple[bytes, bytes]] = []
        missing: list[bytes] = []
        size = 0
        for chunk_id, blob in self.node.store.get_chunks(ids):
            if blob is None:
                missing.append(chunk_id)
                continue
            if size and size + len(blob) > MAX_BATCH_BYTES:
                self.node.metrics.chunks_served(caller, size)
                yield get_chunks_response(chunks, missing)
                chunks, missing, size = [], [], 0
            chunks.append((chunk_id, blob))
            size += len(blob)
        self.node.metrics.chunks_served(caller, size)
        yield get_chunks_response(chunks, missing)

    @_rpc
    def HasChunks(
        self, request: npb.HasChunksRequest, context: grpc.ServicerContext
    ) -> npb.HasChunksResponse:
        caller = self.caller(context)
        if caller.role == pb.ROLE_WRITER:  # a writer asks before uploading
            require_writer(caller, self.node.config, caller.archive_id, self.node.custody)
        else:
            require_reader(caller, self.node.config, self.node.custody)
        return npb.HasChunksResponse(present=self.node.store.has_chunks(_check_ids(request.ids)))

    async def PutChunks(
        self,
        request_iterator: AsyncIterator[Deferred],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> npb.PutChunksResponse:
        """Client-streaming, so a coroutine: waiting for the writer's next message holds no
        thread. The token names the archive: checked before any message is read. Each
        message is then handled in one worker-thread step (`_put_message`)."""
        try:
            caller = self.caller(context)
            require_writer(caller, self.node.config, caller.archive_id, self.node.custody)
            received = stored = nbytes = 0
            async for message in request_iterator:
                r, n, b = await asyncio.to_thread(self._put_message, caller, message)
                received, stored, nbytes = received + r, stored + n, nbytes + b
        except SamizdatError as e:
            await context.abort(*_refusal("PutChunks", e))
        self.node.metrics.chunks_stored(stored, nbytes)
        return npb.PutChunksResponse(
            chunks_received=received, chunks_stored=stored, bytes_stored=nbytes
        )

    def _put_message(self, caller: Caller, message: Deferred) -> tuple[int, int, int]:
        """One PutChunks message, in a worker thread: parse it (samizdat.rpc.wire: blobs are
        views of the received bytes), refuse an archive the token does not name, store.
        Returns (chunks received, chunks stored, bytes stored)."""
        request: PutChunksWire = message.parse()
        if request.archive_id and request.archive_id != caller.archive_id:
            require_writer(caller, self.node.config, request.archive_id, self.node.custody)
        stored, nbytes = self.node.store.put_chunks(request.chunks)
        return len(request.chunks), stored, nbytes


class SnapshotServicer(_Base, rpc.SnapshotServiceServicer):
    @_rpc
    def PutSnapshot(
        self, request: npb.PutSnapshotRequest, context: grpc.ServicerContext
    ) -> npb.PutSnapshotResponse:
        caller = self.caller(context)
        snap = verify_snapshot(request.snapshot)  # the one signature check of this call
        require_writer(caller, self.node.config, bytes(snap.archive_id), self.node.custody)
        snap = verify_restorable(snap)
        new = accept_verified(
            self.node.store,
            snap,
            self.node.config.hosted_archives,
            require_complete=True,
            custody=self.node.custody,
        )
        if new:
            log.info(
                "snapshot=%s archive=%s stored from writer",
                snap.id.short(),
                snap.archive_id.short(),
            )
            self.node.snapshot_stored(snap)
        return npb.PutSnapshotResponse(snapshot_id=bytes(snap.id), already_present=not new)

    @_rpc
    def ListSnapshots(
        self, request: npb.ListSnapshotsRequest, context: grpc.ServicerContext
    ) -> npb.ListSnapshotsResponse:
        # Signed records are public metadata: anonymous callers may list them. A caller that
        # presents a token must pass the access rules, so a revoked peer is refused.
        if any(k == AUTH_METADATA for k, _ in context.invocation_metadata()):
            require_reader(self.caller(context), self.node.config, self.node.custody)
        return page_to_wire(
            self.node.list_snapshots(request.archive_id, request.after_position, request.max_count)
        )


class NodeServicer(_Base, rpc.NodeServiceServicer):
    def __init__(self, node: NodeRuntime) -> None:
        super().__init__(node)
        self._snapshots = SharedBuild(
            node.records_key, self._encode_snapshots, node.metrics.built("status_snapshots")
        )

    def _encode_snapshots(self) -> bytes:
        """The `snapshots` field of a GetStatusResponse, encoded (O(snapshots): shared)."""
        items = [_snapshot_to_wire(item) for item in self.node.snapshot_counters()]
        return npb.GetStatusResponse(snapshots=items).SerializeToString()

    @_rpc
    def GetStatus(self, request: npb.GetStatusRequest, context: grpc.ServicerContext) -> bytes:
        """An encoded GetStatusResponse: what changes with every call (O(peers + custody
        records)) encoded here, followed by the snapshot list encoded once per change of the
        stored records for every caller (protobuf merges the concatenation)."""
        node, store = self.node, self.node.store
        snapshots = self._snapshots.get()  # first: as fresh as the counters read below
        disk = shutil.disk_usage(store.path)
        member = self._authenticated(context)
        peers = [_peer_to_wire(p, member) for p in node.peer_status()]
        head = npb.GetStatusResponse(
            node_id=node.node_id,
            name=node.config.name,
            jurisdiction=node.config.jurisdiction,
            software_version=importlib.metadata.version("samizdat"),
            hosted_archive_ids=sorted(node.config.hosted_archives),
            chunks_stored=store.chunk_count,
            bytes_stored=store.chunk_bytes,
            disk_free_bytes=disk.free,
            disk_total_bytes=disk.total,
            time_unix=int(time.time()),
            quarantined_chunks=store.quarantined_count(),
            unrepairable_chunks=node.unrepairable_count(),
            peers=peers,
            scrub=_scrub_to_wire(node.scrub_status()),
            custody_records=node.custody.records(),
        )
        return head.SerializeToString() + snapshots

    @_rpc
    def NotifySnapshots(
        self, request: npb.NotifySnapshotsRequest, context: grpc.ServicerContext
    ) -> npb.NotifySnapshotsResponse:
        caller = self.caller(context)
        require_reader(caller, self.node.config, self.node.custody)
        self.node.wake_replication()
        return npb.NotifySnapshotsResponse()


class CustodyServicer(_Base, rpc.CustodyServiceServicer):
    @_rpc
    def PutCustodyRecord(
        self, request: npb.PutCustodyRecordRequest, context: grpc.ServicerContext
    ) -> npb.PutCustodyRecordResponse:
        # No token needed: a record is valid only if the archive key signed it, and a replay
        # changes nothing. So a custodian can publish from any machine, without a key.
        rec, new = self.node.custody.accept(request.record)
        if new:
            self.node.custody_changed(rec.archive_id)
        return npb.PutCustodyRecordResponse(record_id=rec.id, already_present=not new)

    @_rpc
    def ListCustodyRecords(
        self, request: npb.ListCustodyRecordsRequest, context: grpc.ServicerContext
    ) -> npb.ListCustodyRecordsResponse:
        # Like ListSnapshots: public, but a caller presenting a token must pass the rules.
        if any(k == AUTH_METADATA for k, _ in context.invocation_metadata()):
            require_reader(self.caller(context), self.node.config, self.node.custody)
        return custody_to_wire(self.node.custody.list(request.after_position))


def _add_chunk_service(server: grpc.Server, servicer: ChunkServicer) -> None:
    """rpc.add_ChunkServiceServicer_to_server, but GetChunks yields serialized responses and
    PutChunks takes requests parsed by samizdat.rpc.wire."""
    handlers = {
        "GetChunks": grpc.unary_stream_rpc_method_handler(
            servicer.GetChunks,
            request_deserializer=npb.GetChunksRequest.FromString,
            response_serializer=bytes,
        ),
        "HasChunks": grpc.unary_unary_rpc_method_handler(
            servicer.HasChunks,
            request_deserializer=npb.HasChunksRequest.FromString,
            response_serializer=npb.HasChunksResponse.SerializeToString,
        ),
        "PutChunks": grpc.stream_unary_rpc_method_handler(
            servicer.PutChunks,
            request_deserializer=OffLoop(parse_put_chunks_request),
            response_serializer=npb.PutChunksResponse.SerializeToString,
        ),
    }
    _register(server, "samizdat.v1.ChunkService", handlers)


def _add_node_service(server: grpc.Server, servicer: NodeServicer) -> None:
    """rpc.add_NodeServiceServicer_to_server, but GetStatus answers encoded bytes."""
    handlers = {
        "GetStatus": grpc.unary_unary_rpc_method_handler(
            servicer.GetStatus,
            request_deserializer=npb.GetStatusRequest.FromString,
            response_serializer=bytes,
        ),
        "NotifySnapshots": grpc.unary_unary_rpc_method_handler(
            servicer.NotifySnapshots,
            request_deserializer=npb.NotifySnapshotsRequest.FromString,
            response_serializer=npb.NotifySnapshotsResponse.SerializeToString,
        ),
    }
    _register(server, "samizdat.v1.NodeService", handlers)


def _register(server: grpc.Server, service: str, handlers: dict[str, Any]) -> None:
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def add_servicers(server: grpc.Server, node: NodeRuntime) -> None:
    _add_chunk_service(server, ChunkServicer(node))
    rpc.add_SnapshotServiceServicer_to_server(SnapshotServicer(node), server)
    _add_node_service(server, NodeServicer(node))
    rpc.add_CustodyServiceServicer_to_server(CustodyServicer(node), server)
