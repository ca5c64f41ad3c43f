"""What a stranger at the port can make a node spend, bounded (issue 15, `stranger` slice).

- GetStatus is public; its snapshot list costs O(snapshots) to build (~45 ms of node CPU a
  call at 10,000 snapshots). It is built once per change of the stored records and shared:
  200 strangers' calls build it at most once, a member's call made during the flood succeeds,
  and a new snapshot shows in the very next call (no staleness).
- The metrics endpoint started a thread per connection with no timeout: 200 connections that
  send nothing held 200 threads for ever. Now its threads are fixed (metrics_http), a fresh
  scrape is answered while they are open, and the node closes every one of them.
- ListCustodyRecords answered every record in one message. Only the archive key's records are
  kept (a stranger's are refused), but its holder (or whoever seized it) could pass the 4 MiB
  receive limit: every listing then failed, and peers marked the node unreachable each round
  (no records, no snapshots pulled from it). It is paged now; peers pull page by page.
- Anyone could relay a genuine custody record padded with an unknown field to the message
  limit; the node kept it as received, and its listing stayed too large for ever (review
  R12). Only the signed fields are kept now, and a record over 1 MiB is refused.
- Strangers shared one budget of 8 calls, and custody records were offered without a token:
  8 health Watch streams (held a minute, re-openable) kept every revocation out (review R10).
  Watch and keyless PutCustodyRecord have lanes of their own now, and a custodian holding the
  archive key sends its token (counted among the archive's calls).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from samizdat.core.custody import sign_custody_record
from samizdat.core.errors import UsageError
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.limits import CUSTODY_PAGE_BYTES, MAX_MESSAGE_BYTES
from samizdat.rpc.remote import NodeClient
from samizdat.server.admission import LIMITS, WATCHER
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.e2e.test_metrics import scrape, value
from tests.e2e.test_replication import make_tree, push
from tests.healthcluster import configure
from tests.hostile import HoldCalls
from tests.nodeproc import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.timeout(120)

FLOOD_THREADS, FLOOD_CALLS = 8, 25
IDLE = 200


def threads(node: NodeProcess) -> int:
    assert node.proc is not None
    status = Path(f"/proc/{node.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def closed_by_node(sock: socket.socket, deadline: float) -> bool:
    """Wait (until `deadline`) for the node to close `sock`; True if it did."""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def builds(port: int) -> dict[str, float]:
    samples, _ = scrape(port)
    return {
        answer: value(samples, "samizdat_shared_builds_total", answer=answer)
        for answer in ("snapshot_counters", "status_snapshots")
    }


def test_stranger_status_flood_builds_the_snapshot_list_once_and_members_stay_fresh(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    metrics_port = free_port()
    node = node_factory("a", host=[archive_key.archive_id], start=False)
    configure(node, metrics_listen=f"127.0.0.1:{metrics_port}", scrub_rate_mb=0)
    node.start()
    first = push(archive_key, node, make_tree(tmp_path / "s1", 1 << 20, seed=1))
    node.status()  # the list as of the push, built
    before = builds(metrics_port)

    errors: list[BaseException] = []
    answers: list[int] = []

    def stranger() -> None:
        client = NodeClient(NodeAddress.parse(node.address))  # no token: a stranger
        try:
            for _ in range(FLOOD_CALLS):
                answers.append(len(client.status(timeout=30).snapshots))
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            client.close()

    threads = [threading.Thread(target=stranger) for _ in range(FLOOD_THREADS)]
    for t in threads:
        t.start()
    member = NodeClient(NodeAddress.parse(node.address), archive_key.key)
    try:
        status = member.status(timeout=30)  # during the flood
        assert [s.snapshot_id.hex() for s in status.snapshots] == [first]
    finally:
        member.close()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[0]
    assert answers == [1] * FLOOD_THREADS * FLOOD_CALLS
    after = builds(metrics_port)
    # Nothing was stored meanwhile: no call built the list again (the scrapes share it too).
    assert after == before, (before, after)

    second = push(archive_key, node, make_tree(tmp_path / "s2", 1 << 20, seed=2))
    listed = {s.snapshot_id.hex() for s in node.status().snapshots}  # the very next call
    assert listed == {first, second}
    fresh = builds(metrics_port)
    assert all(fresh[k] > after[k] for k in after), (after, fresh)


def test_idle_metrics_connections_hold_no_threads_and_are_closed(
    node_factory,
) -> None:  # type: ignore[no-untyped-def]
    metrics_port = free_port()
    node = node_factory("a", start=False)
    configure(node, metrics_listen=f"127.0.0.1:{metrics_port}", scrub_rate_mb=0)
    node.start()
    scrape(metrics_port)
    before = threads(node)
    idle = []
    try:
        for _ in range(IDLE):  # connect and send nothing (slowloris)
            idle.append(socket.create_connection(("127.0.0.1", metrics_port), timeout=10))
        samples, _ = scrape(metrics_port)  # a fresh scrape, answered while they are open
        assert value(samples, "samizdat_chunks_stored") == 0
        during = threads(node)
        # A thread per connection would be +200; the workers are fixed (2) and started.
        assert during <= before + 8, (before, during)
        deadline = time.monotonic() + 60
        assert all(closed_by_node(s, deadline) for s in idle)
    finally:
        for s in idle:
            s.close()
    scrape(metrics_port)


def big_revocation(key: KeyFile, serial: int, reason_bytes: int) -> pb.SignedCustodyRecord:
    """A valid revocation, by the archive key, of a random member key, with a long reason."""
    record = pb.CustodyRecord(
        serial=serial,
        key_revocation=pb.KeyRevocation(member_key=os.urandom(32), reason="r" * reason_bytes),
    )
    return sign_custody_record(key.key, record).signed


def test_custody_records_past_the_message_limit_are_paged_and_still_replicate(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = node_factory("a", host=[archive_key.archive_id], start=False)
    b = node_factory("b", host=[archive_key.archive_id], start=False)
    a.peer_add(b)
    b.peer_add(a)
    configure(b, sync_interval=0.5, scrub_rate_mb=0)
    a.start()
    b.start()
    records = [big_revocation(archive_key, serial, 900_000) for serial in range(1, 6)]
    assert sum(r.ByteSize() for r in records) > MAX_MESSAGE_BYTES
    publisher = NodeClient(NodeAddress.parse(a.address))  # no token needed to publish
    reader = NodeClient(NodeAddress.parse(a.address))
    try:
        for record in records:
            assert not publisher.put_custody_record(record).already_present
        first = reader.list_custody_records(0)
        assert first.more and 0 < len(first.records) < len(records)
        assert first.ByteSize() <= CUSTODY_PAGE_BYTES + (1 << 20)
        assert [r.signed for r in reader.all_custody_records()] == records
    finally:
        publisher.close()
        reader.close()

    snapshot = push(archive_key, a, make_tree(tmp_path / "s1", 1 << 20, seed=3))
    client = NodeClient(NodeAddress.parse(b.address))
    try:
        deadline = time.monotonic() + 60
        while True:  # B learns every record and the snapshot from A, whole
            held = [r.signed for r in client.all_custody_records()]
            listed = {
                s.snapshot_id.hex(): s.chunks_held == s.chunks_total > 0
                for s in client.all_snapshots()
            }
            if held == records and listed.get(snapshot):
                break
            assert time.monotonic() < deadline, (len(held), listed)
            time.sleep(0.2)
    finally:
        client.close()


def test_held_watch_streams_keep_out_no_custody_record(
    node_factory, archive_key: KeyFile, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    node = node_factory("a", host=[archive_key.archive_id])
    bystander = node_factory("b")
    hold = HoldCalls(node.address)
    try:
        hold.start("watch", 20)
        cap = LIMITS[WATCHER].streams
        deadline = time.monotonic() + 60
        while hold.outcomes()["watch"]["open"] > cap:  # the rest refused at once
            assert time.monotonic() < deadline, hold.outcomes()
            time.sleep(0.1)
        assert hold.outcomes()["watch"]["open"] == cap
        # With the archive key: the certificate goes out with its token.
        code, out, err = run_cli(
            "key", "delegate", archive_key, "--name", "w", "--out", tmp_path / "w.key",
            "--node", node.address, "--json",
        )  # fmt: skip
        assert code == 0, err
        # Without a key (the offline ceremony): a revocation written there, published here.
        code, _, err = run_cli(
            "node", "revoke", "--key", archive_key, bystander.node_id, "--out", tmp_path / "r.rec"
        )
        assert code == 0, err
        code, out, err = run_cli("key", "publish", tmp_path / "r.rec", "--node", node.address)
        assert code == 0, err
        assert node.status().node_id == node.node_id  # the strangers' calls are free too
        assert hold.outcomes()["watch"]["open"] == cap  # held all along
    finally:
        hold.close()
    client = NodeClient(NodeAddress.parse(node.address))
    try:
        assert len(client.all_custody_records()) == 2
    finally:
        client.close()


def padded(signed: pb.SignedCustodyRecord, size: int) -> pb.SignedCustodyRecord:
    """`signed` with an unknown length-delimited field 15 of `size` bytes appended."""
    pad = b"\x7a" + _varint(size) + b"p" * size
    return pb.SignedCustodyRecord.FromString(signed.SerializeToString() + pad)


def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out, n = out + bytes([(n & 0x7F) | 0x80]), n >> 7
    return out + bytes([n])


def test_a_relayed_record_padded_to_the_limit_is_kept_as_signed(
    node_factory, archive_key: KeyFile
) -> None:  # type: ignore[no-untyped-def]
    a = node_factory("a", host=[archive_key.archive_id], start=False)
    b = node_factory("b", host=[archive_key.archive_id], start=False)
    a.peer_add(b)
    b.peer_add(a)
    configure(b, sync_interval=0.5, scrub_rate_mb=0)
    a.start()
    b.start()
    genuine = big_revocation(archive_key, 1, 100)
    relayed = padded(genuine, MAX_MESSAGE_BYTES - (64 << 10))
    stranger = NodeClient(NodeAddress.parse(a.address))
    custodian = NodeClient(NodeAddress.parse(a.address), archive_key.key)
    try:
        assert not stranger.put_custody_record(relayed).already_present
        assert custodian.put_custody_record(genuine).already_present
        assert stranger.list_custody_records(0).records == [genuine]  # as signed, no more
        assert [r.SerializeToString() for r in a.status().custody_records] == [
            genuine.SerializeToString()
        ]
        with pytest.raises(UsageError, match="over the limit"):  # too large even if signed
            custodian.put_custody_record(big_revocation(archive_key, 2, 1_100_000))
    finally:
        stranger.close()
        custodian.close()
    client = NodeClient(NodeAddress.parse(b.address))
    try:
        deadline = time.monotonic() + 60
        while [r.signed for r in client.all_custody_records()] != [genuine]:  # b pulls it from a
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        client.close()
