"""Restore's choice of snapshot honours custody records from any source: a seized node that
still offers what a stolen writer key signed cannot make it `latest`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from samizdat.client.sources import resolve_snapshot
from samizdat.core.custody import CustodyRecord, read_custody, sign_custody_record
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import ChunkPart, CustodyPage, ListedSnapshot, SnapshotPage
from samizdat.core.records import Snapshot, sign_snapshot
from samizdat.store.chunkstore import ChunkStore
from samizdat.store.holdings import store_snapshot
from samizdat.store.localpeer import LocalPeer
from samizdat.v1 import records_pb2 as pb

ROOT = ArchiveKey.generate()
WRITER, _ = ROOT.delegate(pb.MEMBER_ROLE_WRITER, "amal", serial=1)


class Listing:
    """A source that only lists records (resolve_snapshot reads nothing else)."""

    def __init__(self, name: str, snaps: list[Snapshot], records: list[CustodyRecord]) -> None:
        self.label, self.snaps, self.records = name, snaps, records

    def list_page(self, archive_id: bytes, after: int, max_count: int = 0) -> SnapshotPage:
        listed = [ListedSnapshot(s.signed, 1, 1, i + 1) for i, s in enumerate(self.snaps)]
        return SnapshotPage(listed[after:], len(listed))

    def custody_page(self, after: int) -> CustodyPage:
        return CustodyPage([r.signed for r in self.records], len(self.records))

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        return [False] * len(ids)

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        return iter(())

    def close(self) -> None:
        pass


def test_a_stolen_writer_keys_snapshot_is_not_latest() -> None:
    legit = sign_snapshot(WRITER, pb.SnapshotRecord(sequence=1, tree_chunk_ids=[bytes(32)]))
    stolen = sign_snapshot(  # made after the theft
        WRITER, pb.SnapshotRecord(sequence=7, tree_chunk_ids=[bytes(32)])
    )
    revocation = sign_custody_record(
        ROOT,
        pb.CustodyRecord(
            serial=2,
            key_revocation=pb.KeyRevocation(
                member_key=WRITER.member_key, kept_snapshot_ids=[bytes(legit.id)], last_sequence=1
            ),
        ),
    )
    seized = Listing("seized", [legit, stolen], [])  # withholds the revocation
    honest = Listing("honest", [legit], [revocation])
    archive = bytes(ROOT.archive_id)
    assert resolve_snapshot([seized], archive, "latest").snapshot.id == stolen.id
    assert resolve_snapshot([seized, honest], archive, "latest").snapshot.id == legit.id
    # A forged "revocation" (not signed by the archive key) hides nothing.
    forged = pb.SignedCustodyRecord(record=revocation.signed.record, signature=bytes(64))
    liar = Listing("liar", [legit, stolen], [])
    liar.custody_records = lambda: [forged]  # type: ignore[method-assign]
    assert resolve_snapshot([liar], archive, "latest").snapshot.id == stolen.id


def big_revocation(serial: int) -> CustodyRecord:
    """A revocation of some other key that kept its 30,000 snapshots: ~1 MB."""
    kept = sorted(i.to_bytes(32, "big") for i in range(30_000))
    body = pb.KeyRevocation(member_key=bytes(32), kept_snapshot_ids=kept, last_sequence=30_000)
    return sign_custody_record(ROOT, pb.CustodyRecord(serial=serial, key_revocation=body))


def test_a_store_copys_revocation_past_its_first_custody_page_is_honoured(
    tmp_path: Path,
) -> None:
    """A copied data directory (`restore --store`) reads every page of its custody log too
    (review R17): the revocation made after the seizure is the last record of the log."""
    legit = sign_snapshot(WRITER, pb.SnapshotRecord(sequence=1, tree_chunk_ids=[bytes(32)]))
    stolen = sign_snapshot(WRITER, pb.SnapshotRecord(sequence=7, tree_chunk_ids=[bytes(32)]))
    store = ChunkStore(tmp_path / "store")
    for snap in (legit, stolen):
        store_snapshot(store, snap, require_complete=False)
    old = [big_revocation(serial) for serial in range(1, 5)]  # three fill a page
    revocation = sign_custody_record(
        ROOT,
        pb.CustodyRecord(
            serial=9,
            key_revocation=pb.KeyRevocation(
                member_key=WRITER.member_key, kept_snapshot_ids=[bytes(legit.id)], last_sequence=1
            ),
        ),
    )
    for rec in (*old, revocation):
        store.add_custody_record(rec.signed.SerializeToString())
    peer = LocalPeer(store, owns_store=True)
    try:
        first = peer.custody_page(0)
        assert first.more and len(first.records) == 3
        assert [r.id for r in read_custody(peer, ROOT.archive_id)] == [
            *(r.id for r in old),
            revocation.id,
        ]
        archive = bytes(ROOT.archive_id)
        assert resolve_snapshot([peer], archive, "latest").snapshot.id == legit.id
    finally:
        peer.close()
