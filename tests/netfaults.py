"""Hostile and instrumented network pieces for multi-node tests.

- `EvilPeer`: a real gRPC server with its own node identity and pinned TLS certificate that
  proxies an honest node but corrupts what it serves (flipped bytes, wrong ids, forged
  snapshot records).
- `ByteCountingProxy`: a TCP proxy that counts the bytes crossing it in both directions.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from samizdat.core.keys import ArchiveKey
from samizdat.core.records import sign_snapshot
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient, peer_tokens
from samizdat.server.identity import create_identity
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import node_pb2_grpc as rpc
from samizdat.v1 import records_pb2 as pb
from tests.nodeproc import free_port


class EvilPeer:
    """A peer that serves an honest node's data, corrupted according to `mode`:

    - "flip": every chunk has one byte flipped;
    - "swap": chunks are returned under the id of another requested chunk;
    - "forge": snapshot records are forged (tampered, or signed by another key).
    """

    def __init__(self, directory: Path, upstream_address: str, mode: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.identity = create_identity(directory)
        self.node_id = self.identity.node_id
        self.port = free_port()
        self.mode = mode
        self.upstream = NodeClient(
            NodeAddress.parse(upstream_address), tokens=peer_tokens(self.identity.key)
        )
        self.served_bad = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(8))
        evil = self

        class Chunks(rpc.ChunkServiceServicer):
            def HasChunks(self, request, context):  # type: ignore[no-untyped-def]
                return npb.HasChunksResponse(
                    present=evil.upstream.has_chunks(list(request.ids), role=pb.ROLE_PEER)
                )

            def GetChunks(self, request, context):  # type: ignore[no-untyped-def]
                yield from evil._corrupt(evil.upstream.get_chunks(list(request.ids)))

        class Snapshots(rpc.SnapshotServiceServicer):
            def ListSnapshots(self, request, context):  # type: ignore[no-untyped-def]
                listing = evil.upstream.list_snapshots(request.archive_id, request.after_position)
                if evil.mode == "forge":
                    return evil._forge(listing)
                return listing

        class Node(rpc.NodeServiceServicer):
            def NotifySnapshots(self, request, context):  # type: ignore[no-untyped-def]
                return npb.NotifySnapshotsResponse()

        rpc.add_ChunkServiceServicer_to_server(Chunks(), self.server)
        rpc.add_SnapshotServiceServicer_to_server(Snapshots(), self.server)
        rpc.add_NodeServiceServicer_to_server(Node(), self.server)
        creds = grpc.ssl_server_credentials([(self.identity.key_pem, self.identity.cert_pem)])
        self.server.add_secure_port(f"127.0.0.1:{self.port}", creds)

    def _corrupt(
        self, responses: Iterator[npb.GetChunksResponse]
    ) -> Iterator[npb.GetChunksResponse]:
        for response in responses:
            chunks = list(response.chunks)
            if self.mode == "flip":
                for c in chunks:
                    data = bytearray(c.data)
                    data[len(data) // 2] ^= 0x40
                    c.data = bytes(data)
                    self.served_bad += 1
            elif self.mode == "swap" and chunks:
                ids = [c.id for c in chunks]
                for c, other in zip(chunks, ids[1:] + ids[:1], strict=True):
                    c.id = other if len(chunks) > 1 else bytes(32)
                    self.served_bad += 1
            yield npb.GetChunksResponse(chunks=chunks, missing_ids=response.missing_ids)

    def _forge(self, listing: npb.ListSnapshotsResponse) -> npb.ListSnapshotsResponse:
        out = npb.ListSnapshotsResponse(last_position=listing.last_position)
        impostor = ArchiveKey.generate()
        for item in listing.snapshots:
            record = pb.SnapshotRecord.FromString(item.snapshot.record)
            # 1. tampered: a later sequence under the original signature
            record.sequence += 100
            tampered = pb.SignedSnapshot(
                record=record.SerializeToString(), signature=item.snapshot.signature
            )
            # 2. signed by another key but naming the real archive
            other = sign_snapshot(impostor, pb.SnapshotRecord.FromString(item.snapshot.record))
            forged_record = pb.SnapshotRecord.FromString(other.signed.record)
            forged_record.archive_id = record.archive_id
            forged = pb.SignedSnapshot(
                record=forged_record.SerializeToString(), signature=other.signed.signature
            )
            for i, signed in enumerate((tampered, forged)):
                out.snapshots.append(
                    npb.StoredSnapshot(
                        snapshot_id=bytes([i]) * 32,
                        snapshot=signed,
                        position=item.position,
                        chunks_held=item.chunks_total,
                        chunks_total=item.chunks_total,
                    )
                )
        return out

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EvilPeer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None)
        self.upstream.close()


class ByteCountingProxy:
    """Forwards TCP connections from a loopback port to `target`, counting bytes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.bytes = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the target is down: so is the proxied connection
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    self.bytes += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def reset(self) -> int:
        with self._lock:
            value, self.bytes = self.bytes, 0
        return value

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
