"""A malicious node: a real gRPC server in the test process that fronts a real node and
tampers with what it serves (flips bytes, withholds chunks). Plaintext on loopback, so the
CLI reaches it as `--node 127.0.0.1:PORT` (reader tokens for plaintext nodes carry the empty
audience; this proxy does not even look at them)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc

from samizdat.rpc.limits import CHANNEL_OPTIONS
from samizdat.rpc.remote import NodeClient
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import node_pb2_grpc as rpc


class _Chunks(rpc.ChunkServiceServicer):
    def __init__(self, proxy: LyingProxy) -> None:
        self.proxy = proxy

    def GetChunks(
        self, request: npb.GetChunksRequest, context: grpc.ServicerContext
    ) -> Iterator[npb.GetChunksResponse]:
        p = self.proxy
        if p.mode == "withhold":
            yield npb.GetChunksResponse(missing_ids=list(request.ids))
            return
        for response in p.upstream.get_chunks(list(request.ids)):
            for chunk in response.chunks:
                p.served += 1
                if p.mode == "flip" and p.served % p.every == 0:
                    data = bytearray(chunk.data)
                    data[len(data) // 2] ^= 0x01
                    chunk.data = bytes(data)
                    p.flipped += 1
            yield response

    def HasChunks(
        self, request: npb.HasChunksRequest, context: grpc.ServicerContext
    ) -> npb.HasChunksResponse:
        return npb.HasChunksResponse(present=self.proxy.upstream.has_chunks(list(request.ids)))


class _Snapshots(rpc.SnapshotServiceServicer):
    def __init__(self, proxy: LyingProxy) -> None:
        self.proxy = proxy

    def ListSnapshots(
        self, request: npb.ListSnapshotsRequest, context: grpc.ServicerContext
    ) -> npb.ListSnapshotsResponse:
        return self.proxy.upstream.list_snapshots(
            request.archive_id, request.after_position, request.max_count
        )


class LyingProxy:
    """mode "flip": every `every`-th chunk served has one bit flipped; "withhold": claims the
    whole snapshot but serves nothing."""

    def __init__(self, upstream: NodeClient, mode: str = "flip", every: int = 5) -> None:
        self.upstream, self.mode, self.every = upstream, mode, every
        self.served = self.flipped = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(8), options=CHANNEL_OPTIONS)
        rpc.add_ChunkServiceServicer_to_server(_Chunks(self), self.server)
        rpc.add_SnapshotServiceServicer_to_server(_Snapshots(self), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace=None)
        self.upstream.close()
