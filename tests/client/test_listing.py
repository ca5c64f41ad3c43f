"""The one listing of verified snapshots (samizdat.client.listing): a forged record from one
source is named and skipped, never fatal; every other record and source still counts."""

from __future__ import annotations

import blake3

from samizdat.client.listing import (
    FORGED_SHOWN,
    ListingVerifier,
    forged_lines,
    verify_custody_records,
    verify_listings,
)
from samizdat.core.custody import CustodyState, sign_custody_record
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import ListedSnapshot
from samizdat.core.records import Snapshot, sign_snapshot
from samizdat.rpc.wire import page_from_wire
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import records_pb2 as pb

KEY = ArchiveKey.generate()


def snapshot(sequence: int, key: ArchiveKey = KEY) -> Snapshot:
    return sign_snapshot(key, pb.SnapshotRecord(sequence=sequence, tree_chunk_ids=[bytes(32)]))


def listed(snap: Snapshot, position: int, held: int = 1) -> ListedSnapshot:
    return ListedSnapshot(snap.signed, held, 1, position, bytes(snap.id))


def forged_signature(snap: Snapshot) -> pb.SignedSnapshot:
    signed = pb.SignedSnapshot()
    signed.CopyFrom(snap.signed)
    signed.signature = bytes(64)
    return signed


def test_forged_records_are_named_and_skipped() -> None:
    one, two = snapshot(1), snapshot(2)
    liar = [
        ListedSnapshot(forged_signature(two), 1, 1, 1, bytes(two.id)),
        listed(one, 2),
        ListedSnapshot(one.signed, 1, 1, 3, bytes(two.id)),  # a record under another id
    ]
    verified = verify_listings([("liar", liar), ("honest", [listed(one, 1), listed(two, 2)])])
    assert [s.record.sequence for s in verified.ordered()] == [1, 2]
    assert [(f.source, f.label) for f in verified.forged] == [(0, "liar"), (0, "liar")]
    assert "another id" in verified.forged[1].reason
    assert "liar" in str(verified.forged[0])
    # the liar still counts as listing the record it listed honestly, and only that one
    assert verified.listed_by[bytes(one.id)][0] is not None
    assert verified.listed_by[bytes(two.id)] == [None, listed(two, 2)]


def test_a_forged_copy_listed_first_does_not_hide_the_real_record() -> None:
    one = snapshot(1)
    forged = ListedSnapshot(forged_signature(one), 1, 1, 1, bytes(one.id))
    verified = verify_listings([("liar", [forged]), ("down", None), ("honest", [listed(one, 1)])])
    assert list(verified.snapshots) == [bytes(one.id)]
    assert verified.listed_by[bytes(one.id)] == [None, None, listed(one, 1)]
    assert [f.label for f in verified.forged] == ["liar"]


def test_archive_and_tree_are_checked_when_asked() -> None:
    other = snapshot(1, ArchiveKey.generate())
    no_tree = sign_snapshot(KEY, pb.SnapshotRecord(sequence=3))
    listing = [("n", [listed(other, 1), listed(no_tree, 2)])]
    assert len(verify_listings(listing).snapshots) == 2
    strict = verify_listings(listing, bytes(KEY.archive_id), restorable=True)
    assert strict.snapshots == {}
    assert len(strict.forged) == 2


def test_records_are_verified_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import samizdat.client.listing as listing

    calls = []
    real = listing.verify_snapshot
    monkeypatch.setattr(
        listing, "verify_snapshot", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    one = snapshot(1)
    verify_listings([(f"n{i}", [listed(one, 1)]) for i in range(5)])
    assert len(calls) == 1
    assert blake3.blake3(one.signed.record).digest() == bytes(one.id)


def test_forged_records_past_a_few_per_source_are_counted_in_one_line() -> None:
    """A lying node may list up to 100,000 junk records: the first FORGED_SHOWN of each
    source are named, the rest of that source counted, so the report stays a few lines."""
    snaps = [snapshot(seq) for seq in range(1, FORGED_SHOWN + 6)]
    liar = [ListedSnapshot(forged_signature(s), 1, 1, i + 1) for i, s in enumerate(snaps)]
    other = [ListedSnapshot(forged_signature(snaps[0]), 1, 1, 1)]
    verified = verify_listings([("liar", liar), ("other", other)])
    # only the named ones are kept; every one is still counted (status' counters)
    assert len(verified.forged) == FORGED_SHOWN + 1
    assert verified.forged_count == [len(snaps), 1]
    lines = forged_lines(verified)
    assert len(lines) == FORGED_SHOWN + 2
    assert lines[-1] == "liar offers 5 more forged or unusable records, skipped"
    assert sum("other" in line for line in lines) == 1


# Verification is shared between sources only for the very same bytes: a copy that differs from
# an honest one in its signature or certificate is judged on its own, whichever comes first.

ROOT = ArchiveKey(signing_seed=b"\x71" * 32, master_secret=b"\x72" * 32)
WRITER, _ = ROOT.delegate(pb.MEMBER_ROLE_WRITER, "amal", serial=1)


def altered_certificate(snap: Snapshot) -> pb.SignedSnapshot:
    signed = pb.SignedSnapshot()
    signed.CopyFrom(snap.signed)
    signed.certificate.signature = bytes(64)
    return signed


def test_a_forged_copy_after_an_honest_one_is_reported_for_its_source() -> None:
    one = sign_snapshot(WRITER, pb.SnapshotRecord(sequence=1, tree_chunk_ids=[bytes(32)]))
    forgeries = {
        "signature": forged_signature(one),
        "certificate": altered_certificate(one),
        "no certificate": pb.SignedSnapshot(
            record=one.signed.record, signature=one.signed.signature
        ),
    }
    for what, forged in forgeries.items():
        sources = [
            ("honest", [listed(one, 1)]),
            ("liar", [ListedSnapshot(forged, 1, 1, 1, bytes(one.id))]),
            ("twin", [ListedSnapshot(forged, 1, 1, 1, bytes(one.id))]),  # same bytes as liar's
            ("honest2", [listed(one, 1)]),
        ]
        verified = verify_listings(sources, bytes(ROOT.archive_id), restorable=True)
        assert [(f.source, f.label) for f in verified.forged] == [(1, "liar"), (2, "twin")], what
        assert verified.listed_by[bytes(one.id)] == [listed(one, 1), None, None, listed(one, 1)]
        assert verified.snapshots[bytes(one.id)].signed == one.signed


def test_identical_valid_copies_share_a_verdict_altered_ones_get_their_own(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import samizdat.client.listing as listing

    calls: list[bytes] = []
    real = listing.verify_snapshot
    monkeypatch.setattr(
        listing, "verify_snapshot", lambda s, *a: calls.append(s.signature) or real(s, *a)
    )
    one = snapshot(1)
    forged = ListedSnapshot(forged_signature(one), 1, 1, 1, bytes(one.id))
    verified = verify_listings(
        [("a", [listed(one, 1)]), ("b", [forged]), ("c", [listed(one, 1)]), ("d", [forged])]
    )
    # the valid copy is checked once; a failing one at each listing (never remembered)
    assert calls == [one.signed.signature, bytes(64), bytes(64)]
    assert [f.label for f in verified.forged] == ["b", "d"]


def test_revocation_applies_to_records_every_source_lists() -> None:
    kept = sign_snapshot(WRITER, pb.SnapshotRecord(sequence=1, tree_chunk_ids=[bytes(32)]))
    later = sign_snapshot(WRITER, pb.SnapshotRecord(sequence=2, tree_chunk_ids=[bytes(32)]))
    custody = CustodyState()
    custody.add(
        sign_custody_record(
            ROOT,
            pb.CustodyRecord(
                serial=5,
                key_revocation=pb.KeyRevocation(
                    member_key=WRITER.member_key,
                    kept_snapshot_ids=[bytes(kept.id)],
                    last_sequence=1,
                ),
            ),
        )
    )
    sources = [(f"n{i}", [listed(kept, 1), listed(later, 2)]) for i in range(3)]
    verified = verify_listings(sources, custody=custody)
    assert list(verified.snapshots) == [bytes(kept.id)]
    assert [s.id for s, _ in verified.refused] == [later.id]
    assert "revoked" in verified.refused[0][1]


def test_custody_records_are_verified_once_and_forged_copies_counted_per_source(  # type: ignore[no-untyped-def]
    monkeypatch,
) -> None:
    import samizdat.client.listing as listing

    revocation = sign_custody_record(
        ROOT,
        pb.CustodyRecord(serial=6, key_revocation=pb.KeyRevocation(member_key=WRITER.member_key)),
    ).signed
    forged = pb.SignedCustodyRecord(record=revocation.record, signature=bytes(64))
    calls: list[bytes] = []
    real = listing.verify_custody_record
    monkeypatch.setattr(
        listing, "verify_custody_record", lambda s, *a: calls.append(s.signature) or real(s, *a)
    )
    custody, bad = verify_custody_records([[revocation], [forged], [revocation], [forged], []])
    assert bad == [0, 1, 0, 1, 0]
    assert calls == [revocation.signature, bytes(64), bytes(64)]
    assert custody.key_revocation(bytes(ROOT.archive_id), WRITER.member_key) is not None
    # a forged copy alone revokes nothing
    alone, bad = verify_custody_records([[forged]])
    assert bad == [1] and alone.key_revocation(bytes(ROOT.archive_id), WRITER.member_key) is None


def test_pages_are_verified_as_they_come_and_a_listing_refused_midway_counts_for_nothing() -> None:
    """Status, `snapshots` and restore verify each page as it arrives (R5); a source whose
    listing is refused after some pages (PeerMisbehaved) is one that did not answer: its
    entries, the snapshots only it listed and its forged count are forgotten."""
    one, two, three = snapshot(1), snapshot(2), snapshot(3)
    verifier = ListingVerifier(["liar", "honest"])
    verifier.take(0, [listed(one, 1), ListedSnapshot(forged_signature(three), 1, 1, 2)])
    verifier.take(1, [listed(one, 1), listed(three, 2)])
    verifier.take(0, [listed(two, 3)])
    verifier.failed(0)
    verified = verifier.result()
    assert set(verified.snapshots) == {bytes(one.id), bytes(three.id)}
    assert verified.listed_by[bytes(one.id)][0] is None
    assert verified.listed_by[bytes(one.id)][1] is not None
    assert verified.forged == [] and verified.forged_count == [0, 0]
    assert not verifier.answered(0) and verifier.answered(1)


def test_a_kept_record_holds_nothing_of_the_page_it_came_in() -> None:
    """A verified record is kept as a copy of its known fields, shared by every source that
    lists it: a protobuf sub-message would keep its whole page alive (a liar's junk around
    one genuine record, or unknown fields padding the record itself)."""
    one = snapshot(1)
    item = npb.StoredSnapshot(
        snapshot_id=bytes(one.id), snapshot=one.signed, position=1, chunks_held=1, chunks_total=1
    )
    padding = b"\x9a\x06\x80\x18" + bytes(3072)  # an unknown field of 3 KiB
    wire = npb.ListSnapshotsResponse(snapshots=[item], last_position=2)
    wire.snapshots[0].snapshot.MergeFromString(padding)
    wire.snapshots.add().MergeFromString(padding)  # and a junk item beside it
    page = page_from_wire(npb.ListSnapshotsResponse.FromString(wire.SerializeToString()))
    verifier = ListingVerifier(["a", "b"])
    verifier.take(0, page.snapshots)
    verifier.take(1, [listed(one, 1)])
    verified = verifier.result()
    kept = verified.snapshots[bytes(one.id)]
    assert kept.signed.ByteSize() == one.signed.ByteSize()  # the padding is not kept
    entries = verified.listed_by[bytes(one.id)]
    assert all(e is not None and e.signed is kept.signed for e in entries)
    assert verified.forged_count == [1, 0]
