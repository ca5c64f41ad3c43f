"""Hostile and instrumented network pieces for multi-node tests.

- `EvilPeer`: a real gRPC server with its own node identity and pinned TLS certificate that
  proxies an honest node but corrupts what it serves (flipped bytes, wrong ids, forged
  snapshot records).
- `TcpLink`: a TCP proxy standing for the network: counts bytes, limits the rate, cuts the
  connections or turns into a black hole.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc

from samizdat.core.ids import SnapshotId
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import sign_snapshot
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient, peer_tokens
from samizdat.server.identity import create_identity
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import node_pb2_grpc as rpc
from samizdat.v1 import records_pb2 as pb
from tests.nodeproc import free_port

LIST_LIES = (
    "rewind",
    "flood",
    "replay",
    "stuck",
    "mislabel",
    "endless",
    "tiny",
    "padded",
    "longid",
    "bulky",
    "many",
)
FORGED_CUSTODY = 500
ENDLESS_CUSTODY = 1500  # junk records a page in "custody_endless" mode (~1.5 MB)
# Pages of junk the "bulky" and "many" listings send before they end (1,000 records each).
JUNK_PAGES = {"bulky": 20, "many": 99}
LYING_MODES = {
    "short_flags": "flags for",
    "long_flags": "flags for",
    "claim_all": "then reported missing",
    "unrequested": "not requested",
    "rewind": "listed a record at position",
    "flood": "records for",
    "replay": "twice",
    "stuck": "with more to come",
    "mislabel": "under another id",
}


class EvilPeer:
    """A peer that serves an honest node's data, corrupted according to `mode`:

    - "flip": every chunk has one byte flipped;
    - "swap": chunks are returned under the id of another requested chunk;
    - "forge": snapshot records are forged (tampered, or signed by another key);
    - "truncate": every GetChunks stream ends early, cleanly, after half the chunks of its
      first message, without naming the rest missing.

    Lying answers (LYING_MODES: mode -> what the receiver's offence says):
    - "short_flags" / "long_flags": HasChunks answers one flag too few / too many;
    - "claim_all": HasChunks claims every chunk, GetChunks then reports them all missing;
    - "unrequested": GetChunks reports an id missing that nobody asked for;
    - "rewind": listings ignore after_position and start again from the first record;
    - "flood": a listing of more records than asked for (the first record, replayed);
    - "replay": endless pages, each the first record three times at new positions;
    - "stuck": empty pages that say more follow but never advance;
    - "mislabel": records listed under an id that is not theirs;
    - "endless": empty pages that advance by one position and always say more follow (each
      page well-formed on its own; only the whole listing never ends);
    - "tiny": endless full pages of distinct 8-byte (forged) records;
    - "padded": like "tiny", each listed item carrying 3 KiB of unknown fields;
    - "longid": one record listed under a 4,000-byte id;
    - "bulky": like "padded", but the listing ends after JUNK_PAGES["bulky"] pages, under
      every bound of a whole listing (samizdat.core.peer.Listing): ~60 MiB of junk;
    - "many": like "tiny", but the listing ends after JUNK_PAGES["many"] pages: 99,000
      forged records, just under MAX_LISTING_RECORDS.

    - "notree": listings end with a record validly signed by `key` (a seized custodian's, or
      a bug) with the highest sequence yet, naming no tree.
    - "custody_forge": its custody listing holds FORGED_CUSTODY records naming `key`'s
      archive, none signed by it (it serves no custody records in the other modes);
    - "custody_endless": its custody listing never ends: pages of ENDLESS_CUSTODY junk records
      (~1 KB each, naming `key`'s archive, signed by nobody) that advance and say more follow
      (a seized node holding a custodian's `samizdat key` command);
    - "list_busy": ListSnapshots answers RESOURCE_EXHAUSTED (a busy node, a listing failed).
    """

    def __init__(
        self, directory: Path, upstream_address: str, mode: str, key: ArchiveKey | None = None
    ) -> None:
        self.key = key
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
                present = evil.upstream.has_chunks(list(request.ids), role=pb.ROLE_PEER)
                evil.served_bad += evil.mode in ("short_flags", "long_flags", "claim_all")
                if evil.mode == "short_flags":
                    present = present[:-1]
                elif evil.mode == "long_flags":
                    present = [*present, True]
                elif evil.mode == "claim_all":
                    present = [True] * len(request.ids)
                return npb.HasChunksResponse(present=present)

            def GetChunks(self, request, context):  # type: ignore[no-untyped-def]
                if evil.mode == "claim_all":
                    yield npb.GetChunksResponse(missing_ids=request.ids)
                    return
                if evil.mode == "unrequested":
                    evil.served_bad += 1
                    yield npb.GetChunksResponse(missing_ids=[bytes(31) + b"\x01"])
                yield from evil._corrupt(evil.upstream.get_chunks(list(request.ids)))

        class Snapshots(rpc.SnapshotServiceServicer):
            def ListSnapshots(self, request, context):  # type: ignore[no-untyped-def]
                if evil.mode == "list_busy":
                    evil.served_bad += 1
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too busy to list")
                if evil.mode in LIST_LIES:
                    return evil._lie(request)
                if evil.mode == "notree":
                    return evil._no_tree(request)
                if evil.mode == "forge":  # two forged records at positions 2p-1, 2p for each p
                    listing = evil.upstream.list_snapshots(
                        request.archive_id, request.after_position // 2, request.max_count // 2
                    )
                    return evil._forge(listing)
                return evil.upstream.list_snapshots(
                    request.archive_id, request.after_position, request.max_count
                )

        class Custody(rpc.CustodyServiceServicer):
            def ListCustodyRecords(self, request, context):  # type: ignore[no-untyped-def]
                assert evil.key is not None, "custody_forge needs the archive key's id"
                if evil.mode == "custody_endless":
                    return evil._endless_custody(request.after_position)
                evil.served_bad += FORGED_CUSTODY
                forged = [
                    pb.SignedCustodyRecord(
                        record=pb.CustodyRecord(
                            version=1,
                            archive_id=bytes(evil.key.archive_id),
                            serial=i + 1,
                            node_revocation=pb.NodeRevocation(node_id=f"n{i}"),
                        ).SerializeToString(),
                        signature=bytes(64),
                    )
                    for i in range(FORGED_CUSTODY)
                ]
                return npb.ListCustodyRecordsResponse(
                    records=forged, last_position=request.after_position + FORGED_CUSTODY
                )

        class Node(rpc.NodeServiceServicer):
            def GetStatus(self, request, context):  # type: ignore[no-untyped-def]
                status = evil.upstream.status()  # the honest node's, under the liar's name
                status.node_id = evil.node_id
                status.name = f"evil-{evil.mode}"
                return status

            def NotifySnapshots(self, request, context):  # type: ignore[no-untyped-def]
                return npb.NotifySnapshotsResponse()

        rpc.add_ChunkServiceServicer_to_server(Chunks(), self.server)
        rpc.add_SnapshotServiceServicer_to_server(Snapshots(), self.server)
        rpc.add_NodeServiceServicer_to_server(Node(), self.server)
        if mode in ("custody_forge", "custody_endless"):
            rpc.add_CustodyServiceServicer_to_server(Custody(), self.server)
        creds = grpc.ssl_server_credentials([(self.identity.key_pem, self.identity.cert_pem)])
        self.server.add_secure_port(f"127.0.0.1:{self.port}", creds)

    def _corrupt(
        self, responses: Iterator[npb.GetChunksResponse]
    ) -> Iterator[npb.GetChunksResponse]:
        for response in responses:
            chunks = list(response.chunks)
            if self.mode == "truncate":
                self.served_bad += len(chunks) - len(chunks) // 2
                yield npb.GetChunksResponse(chunks=chunks[: len(chunks) // 2])
                return
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

    def _no_tree(self, request: npb.ListSnapshotsRequest) -> npb.ListSnapshotsResponse:
        page = self.upstream.list_snapshots(request.archive_id, request.after_position)
        if self.key is None or page.more or not page.snapshots:
            return page
        last = pb.SnapshotRecord.FromString(page.snapshots[-1].snapshot.record)
        record = pb.SnapshotRecord(sequence=last.sequence + 1, chunk_list_ids=last.chunk_list_ids)
        snap = sign_snapshot(self.key, record)
        self.served_bad += 1
        page.last_position += 1
        page.snapshots.add(
            snapshot_id=bytes(snap.id),
            snapshot=snap.signed,
            position=page.last_position,
            chunks_held=1,
            chunks_total=1,
        )
        return page

    def _lie(self, request: npb.ListSnapshotsRequest) -> npb.ListSnapshotsResponse:
        """A listing that breaks the protocol as `mode` says (LIST_LIES)."""
        after = request.after_position
        if self.mode == "endless":
            self.served_bad += 1
            return npb.ListSnapshotsResponse(last_position=after + 1, more=True)
        if self.mode in ("tiny", "padded", "longid", "bulky", "many"):
            return self._junk(after)
        first = self.upstream.list_snapshots(request.archive_id, 0, 1).snapshots
        if self.mode == "stuck" or not first:
            self.served_bad += self.mode == "stuck"
            return npb.ListSnapshotsResponse(last_position=after, more=self.mode == "stuck")
        self.served_bad += 1
        if self.mode == "rewind":
            return self.upstream.list_snapshots(request.archive_id, 0, request.max_count)
        if self.mode == "mislabel":
            page = self.upstream.list_snapshots(request.archive_id, 0, request.max_count)
            for item in page.snapshots:
                item.snapshot_id = bytes(32)
            return page
        count = (request.max_count or 1000) + 1 if self.mode == "flood" else 3
        out = npb.ListSnapshotsResponse(last_position=after + count, more=self.mode == "replay")
        for i in range(count):
            item = out.snapshots.add()
            item.CopyFrom(first[0])
            item.position = after + 1 + i
        return out

    def _junk(self, after: int) -> npb.ListSnapshotsResponse:
        """A page of distinct junk records for the "tiny", "padded", "longid", "bulky" and
        "many" modes."""
        self.served_bad += 1
        count = 1 if self.mode == "longid" else 1000
        padded = self.mode in ("padded", "bulky")
        unknown = b"\x9a\x06\x80\x18" + bytes(3072) if padded else b""
        end = JUNK_PAGES.get(self.mode, 0) * count
        more = not end or after + count < end
        out = npb.ListSnapshotsResponse(last_position=after + count, more=more)
        for i in range(count):
            item = npb.StoredSnapshot(
                snapshot=pb.SignedSnapshot(record=(after + i).to_bytes(8, "big")),
                snapshot_id=bytes(4000) if self.mode == "longid" else b"",
                position=after + 1 + i,
            )
            out.snapshots.append(npb.StoredSnapshot.FromString(item.SerializeToString() + unknown))
        return out

    def _endless_custody(self, after: int) -> npb.ListCustodyRecordsResponse:
        assert self.key is not None
        self.served_bad += ENDLESS_CUSTODY
        junk = pb.SignedCustodyRecord(
            record=pb.CustodyRecord(
                version=1,
                archive_id=bytes(self.key.archive_id),
                serial=after + 1,
                node_revocation=pb.NodeRevocation(node_id="x" * 900),
            ).SerializeToString(),
            signature=bytes(64),
        )
        return npb.ListCustodyRecordsResponse(
            records=[junk] * ENDLESS_CUSTODY, last_position=after + ENDLESS_CUSTODY, more=True
        )

    def _forge(self, listing: npb.ListSnapshotsResponse) -> npb.ListSnapshotsResponse:
        out = npb.ListSnapshotsResponse(last_position=2 * listing.last_position, more=listing.more)
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
                        snapshot_id=bytes(SnapshotId.of(signed.record)),
                        snapshot=signed,
                        position=2 * item.position - 1 + i,
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


class TcpLink:
    """A loopback TCP proxy standing for the network between a client and a node. TLS passes
    through untouched, so the client still pins the node's certificate.

    - `bytes`/`reset()`: bytes that crossed it, both directions;
    - `rate` (bytes per second, each direction of each connection): a slow link, so a
      transfer takes long enough to interrupt it at a chosen point however fast the machine;
    - `cut()`: every connection reset, new ones refused until `restore()`;
    - `freeze()`: a black hole, nothing forwarded and nothing closed.
    """

    def __init__(self, target_port: int, rate: float | None = None) -> None:
        self.target_port = target_port
        self.rate = rate
        self.port = free_port()
        self.bytes = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self.restore()

    def restore(self) -> None:
        """Accept connections (again)."""
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the node is down: so is the link
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                self._flowing.wait()
                with self._lock:
                    self.bytes += len(data)
                dst.sendall(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        for s in (src, dst):
            _close(s)

    def reset(self) -> int:
        """Bytes counted since the last reset."""
        with self._lock:
            value, self.bytes = self.bytes, 0
        return value

    def freeze(self) -> None:
        """Stop forwarding in both directions without closing anything (a seized node's
        traffic dropped by a firewall, say)."""
        self._flowing.clear()

    def cut(self) -> None:
        """Reset every connection and refuse new ones until `restore()`."""
        if self._listener is not None:
            _close(self._listener)
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:  # RST, as a dropped link eventually looks to the peer
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            _close(c)

    def close(self) -> None:
        self._flowing.set()
        self.cut()

    stop = close


def _close(s: socket.socket) -> None:
    """Close a socket another thread may be blocked on: shutdown wakes that thread's
    accept/recv (close alone would leave the socket open until the call returns)."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
