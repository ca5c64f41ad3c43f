"""A validly signed but huge snapshot record (a seized writer key can sign anything) must not
hold a node's listing at its position, and with it every later record's replication (review
R11: a 1.3 MiB record, over LIST_PAGE_BYTES, made every page after it empty with `more` set).
Records are bounded at MAX_SIGNED_RECORD_BYTES when signed and verified; one stored before the
bound is never listed, and pages go past it. Nor can whoever relays a genuine record pad it
with fields nobody signed (review R25): a node keeps and lists the record as signed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from samizdat.core.errors import SignatureError
from samizdat.core.ids import ArchiveId, SnapshotId
from samizdat.core.keys import ArchiveKey, load_key
from samizdat.core.records import (
    MAX_SIGNED_RECORD_BYTES,
    SIGNING_CONTEXT,
    Snapshot,
    sign_snapshot,
    verify_snapshot,
)
from samizdat.rpc.limits import LIST_PAGE_BYTES
from samizdat.server.runtime import NodeRuntime
from samizdat.server.snapshots import accept_snapshot
from samizdat.store.holdings import store_snapshot
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.crafted import CraftedSnapshot, craft_snapshot, file_entry, upload
from tests.e2e.test_replication import push, wait_complete
from tests.healthcluster import configure, make_tree
from tests.netfaults import EvilPeer
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.timeout(120)

HUGE_IDS = LIST_PAGE_BYTES // 32 + 1000  # a record over one listing page: ~1.06 MiB


def crafted(key: ArchiveKey, sequence: int) -> CraftedSnapshot:
    return craft_snapshot(key, [file_entry(b"f", b"content %d" % sequence)], sequence)


def huge(key: ArchiveKey, sequence: int) -> tuple[Snapshot, CraftedSnapshot]:
    """A genuine snapshot whose record names its one chunk list HUGE_IDS times, signed with
    the archive key directly (sign_snapshot refuses it): every id it names is stored."""
    base = crafted(key, sequence)
    record = pb.SnapshotRecord()
    record.CopyFrom(base.snapshot.record)
    record.chunk_list_ids.extend([record.chunk_list_ids[0]] * HUGE_IDS)
    raw = record.SerializeToString(deterministic=True)
    signed = pb.SignedSnapshot(record=raw, signature=key.sign(SIGNING_CONTEXT, raw))
    assert signed.ByteSize() > LIST_PAGE_BYTES
    return Snapshot(SnapshotId.of(raw), signed, record), base


def test_records_over_the_bound_are_neither_signed_nor_verified(archive_key: KeyFile) -> None:
    snap, base = huge(archive_key.key, 1)
    with pytest.raises(SignatureError, match="at most"):
        verify_snapshot(snap.signed)
    record = pb.SnapshotRecord()
    record.CopyFrom(base.snapshot.record)
    record.chunk_list_ids.extend([record.chunk_list_ids[0]] * (MAX_SIGNED_RECORD_BYTES // 32))
    with pytest.raises(SignatureError, match="at most"):
        sign_snapshot(archive_key.key, record)
    assert verify_snapshot(base.snapshot.signed).id == base.snapshot.id  # honest ones pass


@pytest.fixture
def runtime(tmp_path: Path, archive_key: KeyFile) -> Iterator[NodeRuntime]:
    proc = NodeProcess(tmp_path / "node")
    proc.init()
    proc.host(archive_key.archive_id)
    node = NodeRuntime(proc.directory)
    yield node
    node.close()


def test_a_stored_oversized_record_is_not_listed_and_pages_go_past_it(
    runtime: NodeRuntime, archive_key: KeyFile
) -> None:
    def accept(c: CraftedSnapshot) -> bytes:
        runtime.store.put_chunks(c.blobs)
        snap, _ = accept_snapshot(
            runtime.store,
            c.snapshot.signed,
            runtime.config.hosted_archives,
            require_complete=True,
            custody=runtime.custody,
        )
        return bytes(snap.id)

    first = accept(crafted(archive_key.key, 1))
    big, base = huge(archive_key.key, 2)
    runtime.store.put_chunks(base.blobs)
    assert store_snapshot(runtime.store, big, require_complete=True)  # as before the bound
    last = accept(crafted(archive_key.key, 3))

    listed, after = [], 0
    for _ in range(4):  # each page moves on: two pages at most here
        page = runtime.list_snapshots(b"", after, 1)
        listed += [item.snapshot_id for item in page.snapshots]
        assert page.last_position > after or not page.more
        after = page.last_position
        if not page.more:
            break
    assert listed == [first, last]
    assert [c.snapshot_id for c in runtime.snapshot_counters()] == [first, last]


def test_a_node_refuses_an_oversized_record_and_replication_goes_on(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile
) -> None:
    a = node_factory("a", host=[archive_key.archive_id], start=False)
    b = node_factory("b", host=[archive_key.archive_id], start=False)
    a.peer_add(b)
    b.peer_add(a)
    a.start()
    b.start()
    big, base = huge(archive_key.key, 1)
    client = a.client(archive_key.key)
    try:
        upload(client, base)  # its chunks, and the honest record beside it
        with pytest.raises(SignatureError, match="at most"):
            client.put_snapshot(big.signed)
        later = crafted(archive_key.key, 2)
        upload(client, later)
    finally:
        client.close()
    wait_complete([a, b], {base.snapshot.id.hex(), later.snapshot.id.hex()})


def padded(signed: pb.SignedSnapshot, pad: int = 250_000) -> pb.SignedSnapshot:
    """`signed` with an unknown field 15 of `pad` bytes appended (nobody signed it)."""
    unknown = pb.SignedSnapshot(record=b"p" * pad).SerializeToString()[1:]  # field 1's length
    return pb.SignedSnapshot.FromString(signed.SerializeToString() + b"\x7a" + unknown)


def test_verify_keeps_only_what_was_signed(archive_key: KeyFile) -> None:
    genuine = crafted(archive_key.key, 1).snapshot.signed
    assert verify_snapshot(padded(genuine)).signed == genuine
    writer, _ = archive_key.key.delegate(pb.MEMBER_ROLE_WRITER, "amal", serial=1)
    by_writer = sign_snapshot(writer, pb.SnapshotRecord(sequence=2, tree_chunk_ids=[b"t" * 32]))
    relayed = pb.SignedSnapshot()
    relayed.CopyFrom(by_writer.signed)
    certificate = pb.SignedCustodyRecord.FromString(
        relayed.certificate.SerializeToString() + b"\x7a\x03pad"  # in the certificate too
    )
    relayed.certificate.CopyFrom(certificate)
    assert relayed != by_writer.signed
    assert verify_snapshot(padded(relayed)).signed == by_writer.signed


class PaddingPeer(EvilPeer):
    """Serves its upstream honestly, but lists every record padded."""

    def _lie(self, request: npb.ListSnapshotsRequest) -> npb.ListSnapshotsResponse:
        page = self.upstream.list_snapshots(
            request.archive_id, request.after_position, request.max_count
        )
        out = npb.ListSnapshotsResponse()
        out.CopyFrom(page)
        for item in out.snapshots:
            item.snapshot.CopyFrom(padded(item.snapshot))
        return out


def test_a_relayed_record_is_kept_and_listed_as_signed(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    honest = node_factory("honest", host=[archive_key.archive_id], start=False)
    fresh = node_factory("fresh", host=[archive_key.archive_id], start=False)
    liar = PaddingPeer(tmp_path / "liar", honest.address, "rewind", load_key(archive_key.path))
    honest.peer_add(liar.node_id, liar.hostport)
    honest.start()
    liar.start()
    try:
        push(archive_key, honest, make_tree(tmp_path / "src", seed=1))
        fresh.peer_add(liar.node_id, liar.hostport)
        configure(fresh, sync_interval=1)
        fresh.start()
        client = fresh.client(archive_key.key)
        try:
            deadline = time.monotonic() + 60
            archive = ArchiveId(archive_key.key.archive_id)
            while not (items := client.list_snapshots(archive).snapshots):
                assert time.monotonic() < deadline, "the fresh node never stored the record"
                time.sleep(0.2)
        finally:
            client.close()
    finally:
        liar.stop()
    assert items[0].snapshot.ByteSize() < 16 << 10  # as signed (~1 KiB), not ~250 KiB
