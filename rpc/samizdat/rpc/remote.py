"""NodeClient: one node's gRPC services, with auth tokens, deadlines and error mapping.

Used by the CLI (tokens signed by the archive key) and by nodes pulling from peers (tokens
signed by the node key): the token source is the only difference.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

import grpc
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError

from samizdat.core.custody import CustodyRecord, read_custody
from samizdat.core.errors import PeerMisbehaved, PeerUnavailable, SamizdatError
from samizdat.core.ids import ArchiveId
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import CustodyPage, Listing, SnapshotPage
from samizdat.core.tokens import TOKEN_LIFETIME, archive_token, node_token
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.channel import open_channel
from samizdat.rpc.errors import error_from_rpc
from samizdat.rpc.limits import (
    AUTH_METADATA,
    MAX_BATCH_IDS,
    STREAM_DEADLINE,
    UNARY_DEADLINE,
)
from samizdat.rpc.stall import StallGuard
from samizdat.rpc.wire import custody_from_wire, page_from_wire
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import node_pb2_grpc as rpc
from samizdat.v1 import records_pb2 as pb

PUT_CHUNKS = "/samizdat.v1.ChunkService/PutChunks"
GET_CHUNKS = "/samizdat.v1.ChunkService/GetChunks"
LIST_SNAPSHOTS = "/samizdat.v1.SnapshotService/ListSnapshots"


def _serialized(request: npb.PutChunksRequest | bytes) -> bytes:
    return request if isinstance(request, bytes) else request.SerializeToString()


class TokenSource(Protocol):
    def __call__(self, role: int, audience: str) -> bytes: ...


def archive_tokens(key: ArchiveKey) -> TokenSource:
    """Reader/writer tokens signed by the archive key."""
    return lambda role, audience: archive_token(key, role, audience)


def peer_tokens(node_key: ec.EllipticCurvePrivateKey) -> TokenSource:
    """Peer tokens signed by a node's identity key (the role is always ROLE_PEER)."""
    return lambda role, audience: node_token(node_key, audience)


class _Stubs:
    """One channel to a node and every stub on it, built once with the channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.chunks = rpc.ChunkServiceStub(channel)
        self.snapshots = rpc.SnapshotServiceStub(channel)
        self.node = rpc.NodeServiceStub(channel)
        self.custody = rpc.CustodyServiceStub(channel)
        # The two chunk streams carry serialized messages (samizdat.rpc.wire): no protobuf
        # objects on either side of the call.
        self.get_chunks = channel.unary_stream(
            GET_CHUNKS, request_serializer=npb.GetChunksRequest.SerializeToString
        )
        self.put_chunks = channel.stream_unary(
            PUT_CHUNKS,
            request_serializer=_serialized,
            response_deserializer=npb.PutChunksResponse.FromString,
        )
        # Listing pages as received: their size is then known without serializing them again.
        self.list_snapshots = channel.unary_unary(
            LIST_SNAPSHOTS, request_serializer=npb.ListSnapshotsRequest.SerializeToString
        )


class NodeClient:
    """Calls on one node. Tokens are minted per role and renewed before they expire."""

    def __init__(
        self,
        address: NodeAddress,
        key: ArchiveKey | None = None,
        *,
        tokens: TokenSource | None = None,
    ) -> None:
        self.address = address
        self.tokens = (
            tokens if tokens is not None else (archive_tokens(key) if key is not None else None)
        )
        self._open: _Stubs | None = None
        self._tokens: dict[int, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return self.address.label

    def _stubs(self) -> _Stubs:
        """The stubs on this node's channel, opened at first use."""
        with self._lock:
            if self._open is None:
                self._open = _Stubs(open_channel(self.address))
            return self._open

    def metadata(self, role: int) -> list[tuple[str, bytes]]:
        if self.tokens is None:
            return []
        now = time.time()
        cached = self._tokens.get(role)
        if cached is None or cached[0] < now + 60:
            token = self.tokens(role, self.address.node_id)
            cached = (now + TOKEN_LIFETIME, token)
            self._tokens[role] = cached
        return [(AUTH_METADATA, cached[1])]

    def _fail(self, err: grpc.RpcError) -> SamizdatError:
        return error_from_rpc(err, self.label)

    # ------------------------------------------------------------------ calls

    def status(self, timeout: float = UNARY_DEADLINE) -> npb.GetStatusResponse:
        try:
            return self._stubs().node.GetStatus(
                npb.GetStatusRequest(), timeout=timeout, metadata=self.metadata(pb.ROLE_READER)
            )
        except grpc.RpcError as e:
            raise self._fail(e) from None

    def list_snapshots(
        self,
        archive_id: ArchiveId | None = None,
        after: int = 0,
        max_count: int = 0,
        timeout: float = UNARY_DEADLINE,
    ) -> npb.ListSnapshotsResponse:
        """One page of the node's listing (of `archive_id`, None: of every hosted archive)
        after position `after` (see `all_snapshots`)."""
        try:
            return self._stubs().snapshots.ListSnapshots(
                npb.ListSnapshotsRequest(
                    archive_id=archive_id or b"", after_position=after, max_count=max_count
                ),
                timeout=timeout,
                metadata=self.metadata(pb.ROLE_READER),
            )
        except grpc.RpcError as e:
            raise self._fail(e) from None

    def list_page(
        self,
        archive_id: ArchiveId | None = None,
        after: int = 0,
        max_count: int = 0,
        timeout: float = UNARY_DEADLINE,
    ) -> SnapshotPage:
        """`list_snapshots` as a SnapshotPage, its size that of the message received."""
        request = npb.ListSnapshotsRequest(
            archive_id=archive_id or b"", after_position=after, max_count=max_count
        )
        try:
            raw = self._stubs().list_snapshots(
                request, timeout=timeout, metadata=self.metadata(pb.ROLE_READER)
            )
        except grpc.RpcError as e:
            raise self._fail(e) from None
        try:
            page = npb.ListSnapshotsResponse.FromString(raw)
        except DecodeError:
            raise PeerMisbehaved(f"node {self.label} answered a listing with no message") from None
        return page_from_wire(page, len(raw))

    def snapshot_pages(
        self, archive_id: ArchiveId | None = None, timeout: float = UNARY_DEADLINE
    ) -> Iterator[SnapshotPage]:
        """The listed records (of `archive_id`, or of every hosted archive), one checked page
        at a time (a caller keeps only what it needs of each: samizdat.client.listing).
        Raises PeerMisbehaved for a listing samizdat.core.peer.Listing refuses."""
        listing = Listing(self.label)
        while not listing.done:
            page = self.list_page(archive_id, listing.after, timeout=timeout)
            listing.take(page)
            yield page

    def all_snapshots(
        self, archive_id: ArchiveId | None = None, timeout: float = UNARY_DEADLINE
    ) -> list[npb.StoredSnapshot]:
        """Every listed record (of `archive_id`, or of every hosted archive), page after page.
        Raises PeerMisbehaved for a listing samizdat.core.peer.Listing refuses."""
        out: list[npb.StoredSnapshot] = []
        listing = Listing(self.label)
        while not listing.done:
            page = self.list_snapshots(archive_id, listing.after, timeout=timeout)
            listing.take(page_from_wire(page))
            out.extend(page.snapshots)
        return out

    def has_chunks(self, ids: list[bytes], role: int = pb.ROLE_READER) -> list[bool]:
        out: list[bool] = []
        try:
            for i in range(0, len(ids), MAX_BATCH_IDS):
                response = self._stubs().chunks.HasChunks(
                    npb.HasChunksRequest(ids=ids[i : i + MAX_BATCH_IDS]),
                    timeout=UNARY_DEADLINE,
                    metadata=self.metadata(role),
                )
                if len(response.present) != len(ids[i : i + MAX_BATCH_IDS]):
                    raise PeerMisbehaved(
                        f"node {self.label} answered HasChunks with {len(response.present)} "
                        f"flags for {len(ids[i : i + MAX_BATCH_IDS])} ids"
                    )
                out.extend(response.present)
        except grpc.RpcError as e:
            raise self._fail(e) from None
        return out

    def get_chunks(self, ids: list[bytes]) -> Iterator[npb.GetChunksResponse]:
        """Stream the chunks for `ids` (at most MAX_BATCH_IDS); bytes are NOT yet verified.
        Raises PeerUnavailable if the node sends nothing for STALL_SECONDS."""
        for response in self.get_chunks_serialized(ids):
            yield npb.GetChunksResponse.FromString(response)

    def get_chunks_serialized(self, ids: list[bytes]) -> Iterator[bytes]:
        """`get_chunks`, each GetChunksResponse as the bytes received (to be parsed without
        protobuf's copies: samizdat.rpc.wire.part_from_bytes)."""
        call = self._stubs().get_chunks(
            npb.GetChunksRequest(ids=ids),
            timeout=STREAM_DEADLINE,
            metadata=self.metadata(pb.ROLE_READER),
        )
        guard = StallGuard(call)
        try:
            while True:
                guard.waiting()
                try:
                    response = next(call)
                except StopIteration:
                    return
                guard.received()
                yield response
        except grpc.RpcError as e:
            if guard.fired:
                raise PeerUnavailable(
                    f"node {self.label} sent nothing for {guard.limit:.0f}s; gave up on the call"
                ) from None
            raise self._fail(e) from None
        finally:
            guard.close()
            call.cancel()  # no-op once the call has ended; frees it if the caller stopped early

    def put_chunks(self, requests: Iterable[npb.PutChunksRequest | bytes]) -> npb.PutChunksResponse:
        """Stream chunks to the node; a request may come serialized already
        (samizdat.rpc.wire.put_chunks_request: no copies through protobuf objects)."""
        try:
            return self._stubs().put_chunks(
                iter(requests), timeout=STREAM_DEADLINE, metadata=self.metadata(pb.ROLE_WRITER)
            )
        except grpc.RpcError as e:
            raise self._fail(e) from None

    def put_snapshot(self, signed: pb.SignedSnapshot) -> npb.PutSnapshotResponse:
        try:
            return self._stubs().snapshots.PutSnapshot(
                npb.PutSnapshotRequest(snapshot=signed),
                timeout=STREAM_DEADLINE,
                metadata=self.metadata(pb.ROLE_WRITER),
            )
        except grpc.RpcError as e:
            raise self._fail(e) from None

    def notify_snapshots(self, archive_id: ArchiveId, timeout: float = 5.0) -> None:
        try:
            self._stubs().node.NotifySnapshots(
                npb.NotifySnapshotsRequest(archive_id=archive_id),
                timeout=timeout,
                metadata=self.metadata(pb.ROLE_PEER),
            )
        except grpc.RpcError as e:
            raise self._fail(e) from None

    def put_custody_record(self, signed: pb.SignedCustodyRecord) -> npb.PutCustodyRecordResponse:
        """Offer a record; with a key, the call carries its token (the node then counts it
        among the archive's calls, not the strangers')."""
        try:
            return self._stubs().custody.PutCustodyRecord(
                npb.PutCustodyRecordRequest(record=signed),
                timeout=UNARY_DEADLINE,
                metadata=self.metadata(pb.ROLE_READER),
            )
        except grpc.RpcError as e:
            raise self._fail(e) from None

    def list_custody_records(self, after: int = 0) -> npb.ListCustodyRecordsResponse:
        """Custody records stored at the node after `after`; none from a node whose software
        predates them (no CustodyService), so mixed-version clusters keep replicating."""
        try:
            return self._stubs().custody.ListCustodyRecords(
                npb.ListCustodyRecordsRequest(after_position=after),
                timeout=UNARY_DEADLINE,
                metadata=self.metadata(pb.ROLE_READER),
            )
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                return npb.ListCustodyRecordsResponse(last_position=after)
            raise self._fail(e) from None

    def custody_page(self, after: int) -> CustodyPage:
        """`list_custody_records` as a page of the Peer protocol (its size as received)."""
        return custody_from_wire(self.list_custody_records(after))

    def all_custody_records(self, archive_id: bytes | None = None) -> list[CustodyRecord]:
        """The custody records the node holds that verify (of `archive_id`, else of the
        archive each names), page after page within `CustodyListing`'s bounds. Raises
        PeerMisbehaved (a listing past them, naming the node), PeerUnavailable."""
        return read_custody(self, archive_id)

    def close(self) -> None:
        with self._lock:
            stubs, self._open = self._open, None
        if stubs is not None:
            stubs.channel.close()
