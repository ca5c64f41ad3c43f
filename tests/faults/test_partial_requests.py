"""Requests sent all but their last byte pin at most the sender's calls cap of messages
(review R1 of 2026-12-01).

gRPC buffers a request's bytes, up to the receive limit (4 MiB), once the server has a read
pending for it. When admission counted a unary call only once its request had arrived, a
stranger opening 32 streams per connection, each announcing a 4 MiB message and sending all of
it but the last byte, pinned 4 MiB per stream, on as many connections as it liked, for as long
as it liked (4 connections: node RSS 68 -> 602 MiB).

Here a raw HTTP/2 client (h2, over the node's TLS) does exactly that on CONNECTIONS x 32
streams, as a stranger (no token) and as a configured peer gone rogue (its node token): at
most that caller's calls cap of them at a time get their bytes in,
the rest are refused at once, every held one ends within REQUEST_WAIT (+ a margin), the
node's RSS stays bounded, and a member is served meanwhile.
"""

from __future__ import annotations

import base64
import select
import socket
import ssl
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest

from samizdat.core.tokens import node_token
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.channel import TLS_SERVER_NAME, fetch_pinned_cert
from samizdat.rpc.limits import AUTH_METADATA
from samizdat.rpc.remote import NodeClient
from samizdat.server.admission import LIMITS, PEER, REQUEST_WAIT, STRANGER
from samizdat.server.identity import create_identity
from tests.conftest import KeyFile

pytestmark = pytest.mark.timeout(180)

CONNECTIONS = 4
STREAMS = 32  # the node's HTTP/2 max concurrent streams per connection
ANNOUNCED = 4 * 1024 * 1024  # the node's receive limit is 4 MiB + 64 KiB
# Unary methods each caller may call: public for strangers, a peer's for the rogue peer.
METHODS = {
    STRANGER: "/samizdat.v1.CustodyService/PutCustodyRecord",
    PEER: "/samizdat.v1.ChunkService/HasChunks",
}
RSS_BOUND = 300 << 20


@dataclass
class Connection:
    sock: ssl.SSLSocket
    h2: h2.connection.H2Connection
    unsent: dict[int, bytes] = field(default_factory=dict)  # stream id -> bytes left to send
    ended: dict[int, str] = field(default_factory=dict)  # stream id -> how it ended

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def receive(self) -> None:
        data = self.sock.recv(1 << 16)  # called when readable: a TLS record is arriving
        if not data:
            for sid in list(self.unsent):
                self.ended[sid] = "connection closed"
                del self.unsent[sid]
            return
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.StreamReset):
                self._end(event.stream_id, f"reset {event.error_code}")
            elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                status = dict(event.headers).get(b"grpc-status")
                if status is not None:
                    self._end(event.stream_id, f"grpc-status {int(status)}")
            elif isinstance(event, h2.events.StreamEnded):
                self._end(event.stream_id, "ended")
        self.flush()

    def _end(self, sid: int, how: str) -> None:
        self.unsent.pop(sid, None)
        self.ended.setdefault(sid, how)

    def send_what_flow_control_allows(self) -> None:
        for sid, rest in list(self.unsent.items()):
            if len(rest) <= 1:
                continue  # the last byte is never sent
            try:
                window = self.h2.local_flow_control_window(sid)
            except h2.exceptions.StreamClosedError:
                self._end(sid, "closed")
                continue
            n = min(window, len(rest) - 1, self.h2.max_outbound_frame_size)
            if n > 0:
                self.h2.send_data(sid, rest[:n])
                self.unsent[sid] = rest[n:]
        self.flush()


def open_connection(address: NodeAddress, method: str, token: bytes) -> Connection:
    context = ssl.create_default_context(cadata=fetch_pinned_cert(address).decode())
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection((address.host, address.port), timeout=10)
    sock = context.wrap_socket(raw, server_hostname=TLS_SERVER_NAME)
    conn = Connection(sock, h2.connection.H2Connection(h2.config.H2Configuration()))
    conn.h2.initiate_connection()
    conn.flush()
    headers = [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", method),
        (":authority", TLS_SERVER_NAME),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    if token:
        headers.append((AUTH_METADATA, base64.b64encode(token).decode()))
    message = struct.pack(">BI", 0, ANNOUNCED) + bytes(ANNOUNCED)
    for _ in range(STREAMS):
        sid = conn.h2.get_next_available_stream_id()
        conn.h2.send_headers(sid, headers)
        conn.unsent[sid] = message
    conn.flush()
    return conn


def pump(conns: list[Connection], until: object, deadline: float) -> None:
    """Sends and receives on every connection until `until()` is true; fails at `deadline`."""
    while not until():  # type: ignore[operator]
        assert time.monotonic() < deadline, [(c.ended, len(c.unsent)) for c in conns]
        for c in conns:
            c.send_what_flow_control_allows()
        readable, _, _ = select.select([c.sock for c in conns], [], [], 0.05)
        for c in conns:
            if c.sock in readable or c.sock.pending():
                c.receive()


@pytest.mark.parametrize("caller", [STRANGER, PEER])
def test_partial_requests_pin_at_most_the_callers_calls_cap(
    caller: str, node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    node = node_factory("a", host=[archive_key.archive_id], start=False)
    token = b""
    if caller == PEER:
        (tmp_path / "rogue").mkdir()
        rogue = create_identity(tmp_path / "rogue")
        node.peer_add(rogue.node_id, "127.0.0.1:9")
    node.start()
    address = NodeAddress.parse(node.address)
    if caller == PEER:
        token = node_token(rogue.key, node.node_id)
    before = node.rss()
    peak = {"rss": before, "in": 0}

    def sample() -> None:
        """Records the node's RSS and how many streams have sent all but their last byte."""
        peak["rss"] = max(peak["rss"], node.rss())
        sent = sum(len(rest) <= 1 for c in conns for rest in c.unsent.values())
        peak["in"] = max(peak["in"], sent)

    conns = [open_connection(address, METHODS[caller], token) for _ in range(CONNECTIONS)]
    try:

        def some_in() -> bool:
            sample()
            return peak["in"] > 0

        pump(conns, some_in, time.monotonic() + 60)
        member = NodeClient(address, archive_key.key)
        try:
            assert member.status().node_id == node.node_id  # members are served meanwhile
        finally:
            member.close()

        def all_ended() -> bool:
            sample()
            return all(not c.unsent for c in conns)

        # Each call ends by itself: refused at once, or REQUEST_WAIT after its headers.
        pump(conns, all_ended, time.monotonic() + REQUEST_WAIT + 30)
    finally:
        for c in conns:
            c.sock.close()
    endings = Counter(how for c in conns for how in c.ended.values())
    print(f"\nat most {peak['in']} in; node RSS {before >> 20} -> {peak['rss'] >> 20} MiB", endings)
    cap = LIMITS[caller].calls
    # Held for REQUEST_WAIT (DEADLINE_EXCEEDED, grpc-status 4): at most the cap. A call the
    # node refused or displaced may still have got its bytes in before the client saw that
    # (the window it had granted), so at a moment more than `cap` can look "in": the RSS
    # bounds below are what that may cost (it failed 18 > 16 once at load 6).
    assert endings["grpc-status 4"] <= cap, endings
    assert peak["in"] <= 2 * cap
    assert peak["rss"] - before < (cap + 8) * ANNOUNCED
    assert peak["rss"] < RSS_BOUND
    stranger = NodeClient(address)
    try:
        assert stranger.status().node_id == node.node_id
    finally:
        stranger.close()
