"""Restore's choice of snapshot honours custody records from any source: a seized node that
still offers what a stolen writer key signed cannot make it `latest`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from samizdat.client.sources import resolve_snapshot
from samizdat.core.custody import CustodyRecord, sign_custody_record
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import ChunkPart, CustodyPage, ListedSnapshot, SnapshotPage
from samizdat.core.records import Snapshot, sign_snapshot
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
