"""A hostile node cannot choose the client's errors, write to its terminal, or crash a push.

`HostileNode` is a real gRPC server on loopback (its own node identity, pinned TLS) that lists
what a test gives it and ends every PutChunks with the status, reason code and words a test
chooses. The real `samizdat push` runs against it:

- a reason only the client raises about its own machine (`stale_id_cache`) is the node's
  misbehaviour: the local id cache is kept, and push tries the next node; so does any other
  error a node sends (`usage`);
- escape sequences in a node's words reach the terminal as text, never as escapes;
- undecodable or forged records in a node's listing are named and skipped; a verified record
  at the last sequence number stops the push, clearly, before anything is uploaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from samizdat.core.records import sign_snapshot
from samizdat.rpc.errors import REASON_METADATA
from samizdat.server.identity import create_identity
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import node_pb2_grpc as rpc
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.timeout(120)

ESCAPES = "\x1b[2K\r\x1b[1A\x1b[2Ksnapshot 5d0c (sequence 8) stored on n1\n"


class HostileNode:
    """A fake node: lists `listing`, says it holds no chunk, and aborts every PutChunks with
    `put_error` (status, reason code, details); counts the PutChunks calls in `put_calls`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        identity = create_identity(directory)
        self.address = f"{identity.node_id}@127.0.0.1:{free_port()}"
        self.listing: list[npb.StoredSnapshot] = []
        self.put_error = (grpc.StatusCode.INVALID_ARGUMENT, "usage", "refused")
        self.put_calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        hostile = self

        class Chunks(rpc.ChunkServiceServicer):
            def HasChunks(self, request, context):  # type: ignore[no-untyped-def]
                return npb.HasChunksResponse(present=[False] * len(request.ids))

            def PutChunks(self, request_iterator, context):  # type: ignore[no-untyped-def]
                hostile.put_calls += 1
                code, reason, details = hostile.put_error
                context.set_trailing_metadata(((REASON_METADATA, reason),))
                context.abort(code, details)

        class Snapshots(rpc.SnapshotServiceServicer):
            def ListSnapshots(self, request, context):  # type: ignore[no-untyped-def]
                items = [s for s in hostile.listing if s.position > request.after_position]
                last = max((s.position for s in items), default=request.after_position)
                return npb.ListSnapshotsResponse(snapshots=items, last_position=last)

        rpc.add_ChunkServiceServicer_to_server(Chunks(), self.server)
        rpc.add_SnapshotServiceServicer_to_server(Snapshots(), self.server)
        creds = grpc.ssl_server_credentials([(identity.key_pem, identity.cert_pem)])
        self.server.add_secure_port(self.address.split("@")[1], creds)

    def list_records(self, *records: pb.SignedSnapshot) -> None:
        """List these records (at positions 1, 2, ...), each under a made-up id."""
        self.listing = [
            npb.StoredSnapshot(snapshot_id=b"", snapshot=signed, position=i + 1)
            for i, signed in enumerate(records)
        ]


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[HostileNode]:
    node = HostileNode(tmp_path / "hostile")
    node.server.start()
    try:
        yield node
    finally:
        node.server.stop(grace=None)


@pytest.fixture
def push(tmp_path: Path, archive_key: KeyFile) -> Callable[..., tuple[int, str, str]]:
    """push(*node addresses) of a small tree, with the test's own id cache."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_bytes(b"hello, hostile world\n" * 100)

    def run(*addresses: str) -> tuple[int, str, str]:
        nodes = [arg for address in addresses for arg in ("--node", address)]
        return run_cli(
            "push",
            "--key",
            archive_key.path,
            *nodes,
            source,
            env={"SAMIZDAT_CACHE_DIR": str(tmp_path / "cache")},
        )

    return run


def test_a_node_cannot_make_the_client_clear_its_id_cache(
    tmp_path: Path,
    hostile: HostileNode,
    node: NodeProcess,
    push: Callable[..., tuple[int, str, str]],
) -> None:
    code, _, err = push(node.address)
    assert code == 0, err
    (cache,) = (tmp_path / "cache").iterdir()
    hostile.put_error = (
        grpc.StatusCode.DATA_LOSS,
        "stale_id_cache",
        "the local id cache names chunk 0000 but it now encodes to 1111; the cache was "
        "cleared, run the push again",
    )
    code, _, err = push(hostile.address)
    assert hostile.put_calls == 1
    assert code == 2, err  # a node's fault (PeerMisbehaved), not the client's own failure
    assert "answered against the protocol (reason 'stale_id_cache'" in err
    assert cache.is_dir() and any(cache.iterdir())  # kept
    assert "Traceback" not in err


@pytest.mark.parametrize("reason", ["stale_files_cache", "usage", "access_denied"])
def test_push_tries_the_next_node_after_any_error_a_node_sends(
    hostile: HostileNode,
    node: NodeProcess,
    push: Callable[..., tuple[int, str, str]],
    reason: str,
) -> None:
    status = {
        "stale_files_cache": grpc.StatusCode.DATA_LOSS,
        "usage": grpc.StatusCode.INVALID_ARGUMENT,
        "access_denied": grpc.StatusCode.PERMISSION_DENIED,
    }[reason]
    hostile.put_error = (status, reason, ESCAPES)
    code, out, err = push(hostile.address, node.address)
    assert code == 0, err
    assert hostile.put_calls == 1
    assert "trying the next node" in err
    assert f"stored on {node.node_id[:8]}@" in out
    # the node's words, shown as text: no escape can erase a line or fake one
    assert "\x1b" not in err + out and "\r" not in err + out
    assert r"\x1b[2K\r\x1b[1A\x1b[2Ksnapshot 5d0c (sequence 8) stored on n1\n" in err
    assert out.count("stored on") == 1


def test_forged_records_in_a_listing_are_named_and_skipped(
    archive_key: KeyFile,
    hostile: HostileNode,
    node: NodeProcess,
    push: Callable[..., tuple[int, str, str]],
) -> None:
    record = pb.SnapshotRecord(
        version=1, archive_id=bytes(archive_key.key.archive_id), sequence=2**64 - 1
    )
    hostile.list_records(
        pb.SignedSnapshot(record=b"\xff\xff\xff"),  # undecodable
        pb.SignedSnapshot(record=record.SerializeToString(), signature=bytes(64)),  # forged
    )
    code, out, err = push(hostile.address, node.address)
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("offers a forged or unusable snapshot record, skipped") == 2
    assert hostile.put_calls == 1  # went on with the sequence after the verified records
    assert f"stored on {node.node_id[:8]}@" in out and "(sequence 1)" in out


def test_a_verified_record_at_the_last_sequence_stops_the_push_before_any_upload(
    archive_key: KeyFile,
    hostile: HostileNode,
    push: Callable[..., tuple[int, str, str]],
) -> None:
    last = sign_snapshot(archive_key.key, pb.SnapshotRecord(sequence=2**64 - 1))
    hostile.list_records(last.signed)
    code, _, err = push(hostile.address)
    assert code == 1, err
    assert "Traceback" not in err
    assert f"snapshot {last.id.short()}" in err and "holds the last sequence number" in err
    assert hostile.put_calls == 0
