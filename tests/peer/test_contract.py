"""One contract for every Peer (samizdat.core.peer): the same tests run against a real node
process over gRPC (GrpcPeer) and against a real chunk store on disk (LocalPeer).

A behaviour both must share is written once here; a transport that differs fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from samizdat.core.errors import IncompleteSnapshot, IntegrityError, SignatureError, UsageError
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import Peer, all_snapshots, check_page, iter_blobs
from samizdat.core.records import verify_snapshot
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.localpeer import LocalPeer
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.crafted import CraftedSnapshot, craft_snapshot, file_entry
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.timeout(90)


def crafted(key: ArchiveKey, sequence: int) -> CraftedSnapshot:
    return craft_snapshot(
        key, [file_entry(b"note.txt", f"note {sequence}".encode() * 300)], sequence=sequence
    )


def upload(peer: Peer, snap: CraftedSnapshot) -> None:
    archive_id = bytes(snap.snapshot.archive_id)
    peer.put_chunks(archive_id, [snap.blobs])
    peer.put_snapshot(snap.snapshot.signed)


class PeerContract:
    """Subclasses provide the `peer` fixture: an empty peer that accepts `archive_key`'s
    archive (for a node: hosts it, and the peer holds a writer token)."""

    def test_chunks_round_trip(self, peer: Peer) -> None:
        blobs = [bytes([i]) * (3000 + i) for i in range(5)]
        items = [(blake3.blake3(b).digest(), b) for b in blobs]
        result = peer.put_chunks(b"", [items[:3], items[2:]])
        assert (result.received, result.stored) == (6, 5)
        assert result.bytes_stored == sum(map(len, blobs))
        again = peer.put_chunks(b"", [items])
        assert (again.received, again.stored, again.bytes_stored) == (5, 0, 0)
        absent = blake3.blake3(b"never stored").digest()
        ids = [i for i, _ in items]
        assert peer.has_chunks([ids[0], absent, ids[4]]) == [True, False, True]
        parts = list(peer.get_chunks([*ids, absent]))
        assert dict(c for p in parts for c in p.chunks) == dict(items)
        assert [m for p in parts for m in p.missing] == [absent]
        assert dict(iter_blobs(peer, ids[:2])) == dict(items[:2])

    def test_chunk_that_does_not_match_its_id_is_refused(self, peer: Peer) -> None:
        wrong = (blake3.blake3(b"one").digest(), b"another")
        with pytest.raises(IntegrityError):
            peer.put_chunks(b"", [[wrong]])
        assert peer.has_chunks([wrong[0]]) == [False]

    def test_snapshot_is_listed_once_with_its_counters(
        self, peer: Peer, archive_key: KeyFile
    ) -> None:
        archive_id = bytes(archive_key.key.archive_id)
        snap = crafted(archive_key.key, 1)
        peer.put_chunks(archive_id, [snap.blobs])
        first = peer.put_snapshot(snap.snapshot.signed)
        assert (first.snapshot_id, first.already_present) == (bytes(snap.snapshot.id), False)
        assert peer.put_snapshot(snap.snapshot.signed).already_present
        page = peer.list_page(archive_id, 0)
        check_page(page, 0, 1000, peer.label)
        assert not page.more and len(page.snapshots) == 1
        item = page.snapshots[0]
        assert item.snapshot_id == bytes(snap.snapshot.id)
        assert item.position == page.last_position > 0
        assert item.claims_complete and item.chunks_held == len(snap.blobs)
        assert item.bytes_total > 0
        assert verify_snapshot(item.signed, archive_id).id == snap.snapshot.id
        later = peer.list_page(archive_id, page.last_position)
        assert (list(later.snapshots), later.last_position, later.more) == (
            [],
            page.last_position,
            False,
        )
        other = peer.list_page(bytes(ArchiveKey.generate().archive_id), 0)
        assert list(other.snapshots) == []

    def test_listing_pages_and_positions(self, peer: Peer, archive_key: KeyFile) -> None:
        archive_id = bytes(archive_key.key.archive_id)
        snaps = [crafted(archive_key.key, n) for n in (1, 2, 3)]
        for snap in snaps:
            upload(peer, snap)
        after, seen = 0, []
        while True:
            page = peer.list_page(archive_id, after, 2)
            check_page(page, after, 2, peer.label)
            seen += [item.snapshot_id for item in page.snapshots]
            if not page.more:
                break
            after = page.last_position
        assert seen == [bytes(s.snapshot.id) for s in snaps]
        assert [i.snapshot_id for i in all_snapshots(peer, b"")] == seen
        with pytest.raises(UsageError):
            peer.list_page(archive_id, page.last_position + 5)

    def test_incomplete_or_forged_snapshot_is_refused(
        self, peer: Peer, archive_key: KeyFile
    ) -> None:
        archive_id = bytes(archive_key.key.archive_id)
        snap = crafted(archive_key.key, 1)
        peer.put_chunks(archive_id, [snap.blobs[:-1]])
        with pytest.raises(IncompleteSnapshot):
            peer.put_snapshot(snap.snapshot.signed)
        peer.put_chunks(archive_id, [snap.blobs])
        signed = pb.SignedSnapshot()
        signed.CopyFrom(snap.snapshot.signed)
        signed.signature = bytes(64)
        with pytest.raises(SignatureError):
            peer.put_snapshot(signed)
        assert list(peer.list_page(archive_id, 0).snapshots) == []
        assert list(peer.custody_page(0).records) == []


class TestGrpcPeer(PeerContract):
    @pytest.fixture
    def peer(self, node: NodeProcess, archive_key: KeyFile) -> Iterator[Peer]:
        grpc_peer = GrpcPeer(node.client(archive_key.key), has_role=pb.ROLE_WRITER)
        yield grpc_peer
        grpc_peer.close()


class TestLocalPeer(PeerContract):
    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        local = LocalPeer(ChunkStore(tmp_path / "store"), owns_store=True)
        yield local
        local.close()


def test_a_read_only_copy_refuses_writes(tmp_path: Path) -> None:
    ChunkStore(tmp_path / "data").close()
    copy = LocalPeer.open_copy(tmp_path)
    try:
        item = (blake3.blake3(b"x").digest(), b"x")
        with pytest.raises(UsageError, match="read-only"):
            copy.put_chunks(b"", [[item]])
        assert copy.has_chunks([item[0]]) == [False]
    finally:
        copy.close()
