"""Precise answers to hostile or broken input (issue 9, items 6 and 7), against real nodes.

- out-of-range or undecodable input is INVALID_ARGUMENT, never UNKNOWN or INTERNAL;
- a record signed by the archive key but naming no tree is refused by nodes and never
  becomes `latest` for a restorer;
- `samizdat snapshots` names a node that serves a forged record, skips it, lists the rest;
- a node whose listing never ends (records replayed at new positions, or empty pages that
  always say more follow) is named and left out by `snapshots`, restore and status' listing,
  instead of holding them for ever.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from samizdat.core import peer as peer_module
from samizdat.core.errors import PeerMisbehaved, PeerUnavailable
from samizdat.core.keys import signed_message
from samizdat.core.peer import all_snapshots
from samizdat.core.records import sign_snapshot
from samizdat.core.tokens import SIGNING_CONTEXT, _claims
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.channel import open_channel
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.rpc.limits import AUTH_METADATA
from samizdat.rpc.remote import NodeClient
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import node_pb2_grpc as rpc
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.healthcluster import configure
from tests.netfaults import EvilPeer
from tests.nodeproc import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.timeout(120)

P256_OID = bytes.fromhex("2a8648ce3d030107")
UNKNOWN_CURVE_OID = bytes.fromhex("2a0304050607080a")  # 1.2.3.4.5.6.7.8.10


def unknown_curve_token(audience: str) -> bytes:
    """A peer token whose key names an EC curve nobody supports (same length as P-256's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    claims = _claims(pb.ROLE_PEER, spki.replace(P256_OID, UNKNOWN_CURVE_OID), audience, 600)
    raw = claims.SerializeToString()
    signature = key.sign(signed_message(SIGNING_CONTEXT, raw), ec.ECDSA(hashes.SHA256()))
    return pb.AuthToken(claims=raw, signature=signature).SerializeToString()


def push_text(key: KeyFile, node: NodeProcess, src: Path, text: str) -> None:
    """Push a tree of one file, a.txt holding `text`."""
    src.mkdir()
    (src / "a.txt").write_text(text)
    code, _, err = run_cli("push", "--key", key, "--node", node.address, src)
    assert code == 0, err


def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code()  # type: ignore[no-any-return]


def test_out_of_range_position_and_unknown_curve_are_invalid_argument(node: NodeProcess) -> None:
    channel = open_channel(NodeAddress.parse(node.address))
    try:
        snapshots = rpc.SnapshotServiceStub(channel)
        request = npb.ListSnapshotsRequest(after_position=2**64 - 1)
        assert _code(lambda: snapshots.ListSnapshots(request, timeout=10)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )
        token = unknown_curve_token(node.node_id)
        status = rpc.NodeServiceStub(channel)
        call = lambda: status.NotifySnapshots(  # noqa: E731
            npb.NotifySnapshotsRequest(), timeout=10, metadata=[(AUTH_METADATA, token)]
        )
        assert _code(call) == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        channel.close()
    assert "level=error" not in node.logs()


def test_record_without_tree_is_refused_and_never_latest(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    honest = node_factory("honest", host=[archive_key.archive_id])
    push_text(archive_key, honest, tmp_path / "src", "the real latest\n")

    client = honest.client(archive_key.key)
    try:
        empty = sign_snapshot(archive_key.key, pb.SnapshotRecord(sequence=99))
        with pytest.raises(Exception, match="names no tree"):
            client.put_snapshot(empty.signed)
    finally:
        client.close()

    # A node that lists one anyway (with the highest sequence) does not make it `latest`.
    evil = EvilPeer(tmp_path / "evil", honest.address, "notree", key=archive_key.key).start()
    try:
        honest.peer_add(evil.node_id, evil.hostport)
        dest = tmp_path / "restored"
        code, _, err = run_cli(
            "restore", "--key", archive_key, "--node", f"{evil.node_id}@{evil.hostport}", dest
        )
        assert code == 0, err
        assert evil.served_bad > 0
        assert (dest / "a.txt").read_text() == "the real latest\n"
    finally:
        evil.stop()


def test_snapshots_names_the_node_with_a_forged_record_and_lists_the_rest(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    honest = node_factory("honest", host=[archive_key.archive_id])
    push_text(archive_key, honest, tmp_path / "src", "x\n")
    evil = EvilPeer(tmp_path / "evil", honest.address, "forge").start()
    try:
        honest.peer_add(evil.node_id, evil.hostport)
        evil_address = f"{evil.node_id}@{evil.hostport}"
        code, out, err = run_cli("snapshots", "--node", evil_address, "--node", honest.address)
        assert code == 0, err
        assert "forged" in err and evil.node_id[:8] in err
        rows = [line for line in out.splitlines() if archive_key.archive_id[:12] in line]
        assert len(rows) == 1 and honest.node_id[:8] in rows[0]
    finally:
        evil.stop()


@pytest.mark.parametrize("mode", ["replay", "endless"])
def test_a_listing_that_never_ends_is_cut_off_and_the_other_nodes_serve(
    node_factory, archive_key: KeyFile, tmp_path: Path, mode: str
) -> None:  # type: ignore[no-untyped-def]
    honest = node_factory("honest", host=[archive_key.archive_id])
    push_text(archive_key, honest, tmp_path / "src", "the real one\n")
    evil = EvilPeer(tmp_path / "evil", honest.address, mode).start()
    try:
        honest.peer_add(evil.node_id, evil.hostport)
        evil_address = f"{evil.node_id}@{evil.hostport}"
        nodes = ("--node", evil_address, "--node", honest.address)
        # Before the whole listing was bounded, each of these listed the liar for ever.
        code, out, err = run_cli("snapshots", *nodes, timeout=60)
        assert code == 0, err
        assert evil.node_id[:8] in err
        assert archive_key.archive_id[:12] in out
        dest = tmp_path / "restored"
        code, _, err = run_cli("restore", "--key", archive_key, *nodes, dest, timeout=60)
        assert code == 0, err
        assert (dest / "a.txt").read_text() == "the real one\n"
        client = NodeClient(NodeAddress.parse(evil_address), archive_key.key)
        try:  # status' listing (rpc.remote.NodeClient.all_snapshots)
            with pytest.raises(PeerMisbehaved):
                client.all_snapshots()
        finally:
            client.close()
    finally:
        evil.stop()


def test_a_listing_that_never_ends_is_given_up_after_its_time(
    node_factory, archive_key: KeyFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """However well-formed and slow its pages (each just before its call's deadline, in the
    worst case), one listing ends after MAX_LISTING_SECONDS (here 0.5 s, and no page cap)."""
    monkeypatch.setattr(peer_module, "MAX_LISTING_PAGES", 10**9)
    monkeypatch.setattr(peer_module, "MAX_LISTING_SECONDS", 0.5)
    honest = node_factory("honest", host=[archive_key.archive_id])
    evil = EvilPeer(tmp_path / "evil", honest.address, "endless").start()
    client = NodeClient(NodeAddress.parse(f"{evil.node_id}@{evil.hostport}"), archive_key.key)
    try:
        with pytest.raises(PeerUnavailable, match="to list its records: given up"):
            client.all_snapshots()
        assert evil.served_bad > 1
    finally:
        client.close()
        evil.stop()


@pytest.mark.parametrize(
    ("mode", "pages", "refusal"),
    [
        ("tiny", 101, "100000 records"),  # 20 MiB of records, but 100,000 of them
        ("padded", 22, "64 MiB"),  # 8 bytes of record and 3 KiB of unknown fields each
        ("longid", 1, "an id of 4000 bytes"),
    ],
)
def test_a_listing_of_junk_is_refused_before_it_fills_the_memory(
    node_factory, archive_key: KeyFile, tmp_path: Path, mode: str, pages: int, refusal: str
) -> None:  # type: ignore[no-untyped-def]
    """The whole listing of a lying node is bounded in records and in bytes as received,
    whatever they hold, for `status` (NodeClient) as for restore and `snapshots` (GrpcPeer)."""
    honest = node_factory("honest", host=[archive_key.archive_id])
    evil = EvilPeer(tmp_path / "evil", honest.address, mode).start()
    client = NodeClient(NodeAddress.parse(f"{evil.node_id}@{evil.hostport}"), archive_key.key)
    try:
        for listing in (client.all_snapshots, lambda: all_snapshots(GrpcPeer(client), None)):
            evil.served_bad = 0
            with pytest.raises(PeerMisbehaved, match=refusal):
                listing()
            assert evil.served_bad == pages
    finally:
        client.close()
        evil.stop()


GARBAGE = b"\xff\xff\xff\xff\xff"
METHODS = {
    "/samizdat.v1.ChunkService/HasChunks": "unary",
    "/samizdat.v1.ChunkService/GetChunks": "stream_out",
    "/samizdat.v1.ChunkService/PutChunks": "stream_in",
    "/samizdat.v1.SnapshotService/PutSnapshot": "unary",
    "/samizdat.v1.SnapshotService/ListSnapshots": "unary",
    "/samizdat.v1.NodeService/GetStatus": "unary",
    "/samizdat.v1.NodeService/NotifySnapshots": "unary",
}


def test_undecodable_messages_are_invalid_argument_counted_not_logged_and_sigterm_stops(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Items 4 and 7: raw bytes that are no message get INVALID_ARGUMENT on every method, no
    error log line, a count in metrics; a PutChunks stream left open after its undecodable
    first message does not keep the node from stopping on SIGTERM (nor its store locked)."""
    node = node_factory("n1", host=[archive_key.archive_id], start=False)
    metrics_port = free_port()
    configure(node, metrics_listen=f"127.0.0.1:{metrics_port}")
    node.start()
    client = node.client(archive_key.key)  # a writer token of the hosted archive
    channel = open_channel(NodeAddress.parse(node.address))
    release = threading.Event()
    try:
        metadata = client.metadata(pb.ROLE_WRITER)
        for method, kind in METHODS.items():
            if kind == "unary":
                call = channel.unary_unary(method)
                code = _code(lambda: call(GARBAGE, timeout=10, metadata=metadata))  # noqa: B023
            elif kind == "stream_out":
                call = channel.unary_stream(method)
                code = _code(lambda: list(call(GARBAGE, timeout=10, metadata=metadata)))  # noqa: B023
            else:
                call = channel.stream_unary(method)
                code = _code(lambda: call(iter([GARBAGE]), timeout=10, metadata=metadata))  # noqa: B023
            assert code == grpc.StatusCode.INVALID_ARGUMENT, method

        def held_open() -> Iterator[bytes]:
            yield GARBAGE
            release.wait(60)

        put = channel.stream_unary("/samizdat.v1.ChunkService/PutChunks")
        pending = put.future(held_open(), timeout=60, metadata=metadata)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        rejected = [
            float(line.rsplit(" ", 1)[1])
            for line in text.read().decode().splitlines()
            if line.startswith("samizdat_rpc_rejected_total") and 'reason="undecodable"' in line
        ]
        assert sum(rejected) >= len(METHODS)
        assert node.stop() == 0  # within NodeProcess.STOP_TIMEOUT, or it raises
        assert pending.exception(timeout=10) is not None
    finally:
        release.set()
        channel.close()
        client.close()
    assert "level=error" not in node.logs()
    node.start()  # the store's lock was released
