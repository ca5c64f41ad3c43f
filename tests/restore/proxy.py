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
        return self.proxy.upstream.list_snapshots(request.archive_id, request.after_position)


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


class CuttableTcpProxy:
    """A loopback TCP proxy to a node that can lose the network: `cut()` resets every
    connection and refuses new ones until `restore()`. TLS passes through untouched, so the
    client still pins the node's certificate. With `rate` (bytes per second, each direction
    of each connection) it is also a slow link, so a restore takes long enough to interrupt
    it at a chosen point however fast the machine is."""

    def __init__(self, target_port: int, rate: float | None = None) -> None:
        import socket
        import threading

        self._socket, self._threading = socket, threading
        self.target_port = target_port
        self.rate = rate
        self.flowing = threading.Event()  # cleared by freeze(): a black hole, nothing closes
        self.flowing.set()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.conns: list = []  # type: ignore[type-arg]
        self.lock = threading.Lock()
        self.listener = None
        self.cuts = 0
        self.restore()

    def restore(self) -> None:
        s = self._socket.socket()
        s.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        self._threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the node is down: so is the link
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        import time

        try:
            while data := src.recv(1 << 16):
                self.flowing.wait()
                dst.sendall(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        for s in (src, dst):
            try:  # shutdown wakes the other pipe's recv; close() alone would not end it
                s.shutdown(self._socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def freeze(self) -> None:
        """Stop forwarding in both directions without closing anything: the link turns into a
        black hole (a seized node's traffic dropped by a firewall, say)."""
        self.flowing.clear()

    def cut(self) -> None:
        import struct

        self.cuts += 1
        if self.listener is not None:
            try:  # wakes the accept thread; close() alone leaves the port listening
                self.listener.shutdown(self._socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:  # RST, as a dropped link eventually looks to the peer
                c.setsockopt(
                    self._socket.SOL_SOCKET, self._socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                c.shutdown(self._socket.SHUT_RDWR)  # as in _pipe: close() alone may not
                c.close()
            except OSError:
                pass

    def close(self) -> None:
        self.flowing.set()
        self.cut()

    stop = close
