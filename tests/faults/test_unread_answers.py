"""Answers a client never reads pin at most its calls cap of them (review R21 of 2026-12-02).

gRPC keeps an answer until its client's HTTP/2 flow-control window takes it, and nothing on the
server can drop it sooner. When admission counted a unary call only until its handler returned,
the answer was handed to gRPC after the slot was freed: a stranger granting no window
(SETTINGS_INITIAL_WINDOW_SIZE 0, a raw HTTP/2 client that answers pings so its connections stay
up) pinned every public answer it asked for, 32 per connection on as many connections as it
liked (6 connections of unread ~3 MiB custody listings: node RSS 100 -> 1,537 MiB).

Here such a client (h2 over the node's TLS) asks for the custody listing on CONNECTIONS x 32
streams: at most the strangers' calls cap of them are answered (the rest refused "node busy")
and they keep their slots, the node's RSS stays bounded, push, restore and a peer's
replication work meanwhile, and the slots come back once the connections end. The node ends
such connections itself after its connection age and grace (node.py), checked in process with
short ones.
"""

from __future__ import annotations

import secrets
import select
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest

from samizdat.core.custody import next_serial, sign_custody_record
from samizdat.core.errors import NodeBusy
from samizdat.core.keys import load_key
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.channel import TLS_SERVER_NAME, fetch_pinned_cert
from samizdat.rpc.remote import NodeClient
from samizdat.server.admission import LIMITS, PUBLISHER, STRANGER
from samizdat.server.node import RpcServer
from samizdat.server.runtime import NodeRuntime
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.e2e.test_replication import make_tree, push, wait_complete
from tests.healthcluster import configure
from tests.nodeproc import run_cli

pytestmark = pytest.mark.timeout(240)

STREAMS = 32  # the node's HTTP/2 max concurrent streams per connection
CONNECTIONS = 12
RSS_BOUND = 300 << 20  # what unread answers may add: 8 calls x ~3 MiB, with a wide margin
LISTING = "/samizdat.v1.CustodyService/ListCustodyRecords"


def big_revocation(root, serial: int) -> pb.SignedCustodyRecord:  # type: ignore[no-untyped-def]
    """A ~1 MB genuine custody record: a revocation keeping 29,000 snapshots."""
    body = pb.CustodyRecord(
        serial=serial,
        key_revocation=pb.KeyRevocation(
            member_key=secrets.token_bytes(32),
            last_sequence=29_000,
            kept_snapshot_ids=sorted(secrets.token_bytes(32) for _ in range(29_000)),
        ),
    )
    return sign_custody_record(root, body).signed


class Reader:
    """Connections of a client that asks and never reads: every stream a complete request
    for `method`, no flow-control window ever granted; pings and settings are answered (by
    `pump`, or by a thread between `start` and `stop`) so the connections stay up."""

    def __init__(self, address: NodeAddress, method: str) -> None:
        self.address, self.method = address, method
        self.conns: list[tuple[ssl.SSLSocket, h2.connection.H2Connection]] = []
        self.answered: set[tuple[int, int]] = set()  # (connection, stream): headers, no status
        self.ends: Counter[str] = Counter()  # how the other streams ended
        self.closed = 0  # connections the node closed
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def connect(self, streams: int = STREAMS, request: bytes = b"") -> None:
        context = ssl.create_default_context(cadata=fetch_pinned_cert(self.address).decode())
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((self.address.host, self.address.port), timeout=10)
        sock = context.wrap_socket(raw, server_hostname=TLS_SERVER_NAME)
        sock.setblocking(False)
        conn = h2.connection.H2Connection(h2.config.H2Configuration())
        conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
        )
        conn.initiate_connection()
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", self.method),
            (":authority", TLS_SERVER_NAME),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        for _ in range(streams):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, headers)
            message = struct.pack(">BI", 0, len(request)) + request  # empty: a listing's
            conn.send_data(sid, message, end_stream=True)
        self._send(sock, conn.data_to_send())
        with self.lock:
            self.conns.append((sock, conn))

    @staticmethod
    def _send(sock: ssl.SSLSocket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                select.select([], [sock], [], 0.05)

    def decided(self) -> int:
        """Streams answered (held) or ended so far."""
        with self.lock:
            return len(self.answered) + sum(self.ends.values())

    def held(self) -> int:
        with self.lock:
            return len(self.answered)

    def pump(self) -> None:
        """Reads what the node sent, answers its pings and settings; never a window."""
        with self.lock:
            conns = [(i, s, c) for i, (s, c) in enumerate(self.conns) if s.fileno() >= 0]
            readable, _, _ = select.select([s for _, s, _ in conns], [], [], 0.05)
            for i, sock, conn in conns:
                if sock not in readable and not sock.pending():
                    continue
                try:
                    data = sock.recv(1 << 16)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._lost(i, sock)
                    continue
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:  # a GOAWAY, then the node's pings
                    continue
                for event in events:
                    self._event(i, event)
                out = conn.data_to_send()
                if out:
                    self._send(sock, out)

    def _event(self, i: int, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.StreamReset):
            self.answered.discard((i, event.stream_id))
            self.ends[f"reset {event.error_code}"] += 1
        elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            status = dict(event.headers).get(b"grpc-status")
            if status is None:
                self.answered.add((i, event.stream_id))
            else:
                self.answered.discard((i, event.stream_id))
                self.ends[f"grpc-status {int(status)}"] += 1

    def _lost(self, i: int, sock: ssl.SSLSocket) -> None:
        for key in [k for k in self.answered if k[0] == i]:
            self.answered.discard(key)
            self.ends["connection closed"] += 1
        self.closed += 1
        sock.close()

    def start(self) -> None:
        def run() -> None:
            while not self.stopping.is_set():
                self.pump()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(10)
            self.thread = None

    def close(self) -> None:
        self.stop()
        with self.lock:
            for sock, _ in self.conns:
                sock.close()


def wait_for(condition, timeout: float, what: str, pump: Reader | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        if pump is not None:
            pump.pump()
        else:
            time.sleep(0.1)


def stranger_served(address: NodeAddress) -> bool:
    client = NodeClient(address)
    try:
        client.status(timeout=10)
        return True
    except NodeBusy:
        return False
    finally:
        client.close()


def test_unread_answers_hold_their_slots_and_bounded_memory_while_members_are_served(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = node_factory("a", host=[archive_key.archive_id], start=False)
    b = node_factory("b", host=[archive_key.archive_id], start=False)
    a.peer_add(b)
    b.peer_add(a)
    configure(b, sync_interval=0.5)
    a.start()
    b.start()
    first = push(archive_key, a, make_tree(tmp_path / "s1", 4 << 20, seed=41))
    wait_complete([b], {first})
    root = load_key(archive_key.path)
    address = NodeAddress.parse(a.address)
    client = NodeClient(address, root)
    try:  # an archive of some age: three large revocations, a ~3 MB listing page
        for i in range(3):
            client.put_custody_record(big_revocation(root, next_serial([]) + i))
        assert len(client.list_custody_records(0).SerializeToString()) > 2_900_000
    finally:
        client.close()

    before = peak = a.rss()
    most_held = 0
    reader = Reader(address, LISTING)

    def decided() -> bool:
        """Has every stream been answered or refused? (Samples the node meanwhile.)"""
        nonlocal peak, most_held
        peak, most_held = max(peak, a.rss()), max(most_held, reader.held())
        return reader.decided() >= len(reader.conns) * STREAMS

    try:
        for _ in range(CONNECTIONS):
            reader.connect()
            wait_for(decided, 60, f"streams undecided: {reader.ends}", pump=reader)
            if peak - before >= RSS_BOUND:
                break  # the bound is passed: no need to pin more
        held = reader.held()
        assert most_held <= LIMITS[STRANGER].calls, reader.ends
        assert peak - before < RSS_BOUND, f"node RSS {before >> 20} -> {peak >> 20} MiB"
        reader.start()  # keeps the connections up while members work
        assert not stranger_served(address)  # the strangers' slots are the unread answers'

        timings = {}
        t = time.monotonic()
        second = push(archive_key, a, make_tree(tmp_path / "s2", 4 << 20, seed=42))
        timings["push"] = time.monotonic() - t
        t = time.monotonic()
        dest = tmp_path / "restored"
        code, _, err = run_cli("restore", "--key", archive_key, "--node", a.address, dest)
        assert code == 0, err
        timings["restore"] = time.monotonic() - t
        t = time.monotonic()
        wait_complete([b], {first, second})
        timings["replication"] = time.monotonic() - t
        peak = max(peak, a.rss())
        reader.stop()
        assert reader.closed == 0 and reader.held() == held  # still held all along
    finally:
        reader.close()
    print(
        f"\n{len(reader.conns)} connections x {STREAMS} unread listings: {held} held "
        f"(at most {most_held}), {dict(reader.ends)}; node RSS {before >> 20} -> {peak >> 20} MiB; "
        + " ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    )
    assert peak - before < RSS_BOUND, f"node RSS {before >> 20} -> {peak >> 20} MiB"
    # The connections gone, their calls end and the strangers' slots come back.
    wait_for(lambda: stranger_served(address), 30, "strangers' slots never came back")


def test_the_node_ends_connections_whose_answers_are_never_read(
    node_factory, archive_key: KeyFile
) -> None:  # type: ignore[no-untyped-def]
    """Nothing but the connection's end frees a large unread answer's slot: the node asks
    every connection to close after its age and closes it after the grace."""
    proc = node_factory("a", host=[archive_key.archive_id], start=False)
    node = NodeRuntime(proc.directory)
    server = RpcServer(node, connection_age=2.0, connection_grace=2.0)
    server.start()
    address = NodeAddress.parse(proc.address)
    root = load_key(archive_key.path)
    client = NodeClient(address, root)
    try:  # a listing page of ~1 MB: an answer large enough to keep its slot until taken
        client.put_custody_record(big_revocation(root, next_serial([])))
    finally:
        client.close()
    reader = Reader(address, LISTING)
    try:
        reader.connect(LIMITS[STRANGER].calls + 1)
        wait_for(lambda: reader.decided() == LIMITS[STRANGER].calls + 1, 30, "undecided", reader)
        assert reader.held() == LIMITS[STRANGER].calls
        assert reader.ends == {"grpc-status 8": 1}  # RESOURCE_EXHAUSTED: node busy
        assert not stranger_served(address)
        # age 2 s (+10%) and grace 2 s; a wide margin for a loaded machine
        wait_for(lambda: reader.closed == 1, 30, "the connection was never closed", reader)
        assert reader.ends["connection closed"] == LIMITS[STRANGER].calls
        wait_for(lambda: stranger_served(address), 30, "strangers' slots never came back")
    finally:
        reader.close()
        server.stop(1)
        node.close()


def test_unread_small_answers_keep_no_published_record_out(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A stranger relays a genuine public custody record on more keyless PutCustodyRecord
    calls than the publishing lane holds and never reads the (small) answers: the offline
    ceremony's `key publish` still lands (review R27: the answers held the lane until the
    connection's end, ~70 minutes)."""
    node = node_factory("a", host=[archive_key.archive_id])
    seized = node_factory("seized", start=False)
    code, _, err = run_cli(
        "key", "delegate", archive_key, "--name", "w", "--out", tmp_path / "w.key",
        "--node", node.address,
    )  # fmt: skip
    assert code == 0, err
    address = NodeAddress.parse(node.address)
    client = NodeClient(address)
    try:
        genuine = client.list_custody_records(0).records[0]  # public: anyone may relay it
    finally:
        client.close()
    code, _, err = run_cli(
        "node", "revoke", "--key", archive_key, seized.node_id, "--out", tmp_path / "r.rec"
    )
    assert code == 0, err
    reader = Reader(address, "/samizdat.v1.CustodyService/PutCustodyRecord")
    calls = LIMITS[PUBLISHER].calls + 2
    try:
        reader.connect(calls, npb.PutCustodyRecordRequest(record=genuine).SerializeToString())
        wait_for(lambda: reader.decided() == calls, 60, "the node never took the calls", reader)
        reader.start()  # pings answered meanwhile: the connection stays up
        code, _, err = run_cli("key", "publish", tmp_path / "r.rec", "--node", node.address)
        assert code == 0, err
    finally:
        reader.close()
