"""Custody records, member keys and tokens in process: who can sign what, ordering, replays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samizdat.core.custody import (
    MAX_CUSTODY_PAGES,
    CustodyListing,
    CustodyRecord,
    CustodyState,
    read_custody,
    sign_custody_record,
    verify_custody_record,
)
from samizdat.core.errors import (
    AccessDenied,
    KeyFileError,
    KeyRoleError,
    PeerMisbehaved,
    SignatureError,
)
from samizdat.core.keys import ArchiveKey, load_key, read_key_file, save_key
from samizdat.core.peer import CustodyPage
from samizdat.core.records import sign_snapshot, verify_snapshot
from samizdat.core.signing import ed25519_sign
from samizdat.core.tokens import archive_token, verify_token
from samizdat.v1 import records_pb2 as pb

ROOT = ArchiveKey(signing_seed=b"\x61" * 32, master_secret=b"\x62" * 32)
OTHER = ArchiveKey(signing_seed=b"\x63" * 32, master_secret=b"\x64" * 32)
WRITER, WRITER_CERT = ROOT.delegate(pb.MEMBER_ROLE_WRITER, "amal", serial=1)
READER, _ = ROOT.delegate(pb.MEMBER_ROLE_READER, "restorer", serial=2)
NODE_ID = "a" * 52


def revoke_writer(serial: int, kept: list[bytes], key: ArchiveKey = ROOT) -> CustodyRecord:
    return sign_custody_record(
        key,
        pb.CustodyRecord(
            serial=serial,
            key_revocation=pb.KeyRevocation(
                member_key=WRITER.member_key, kept_snapshot_ids=kept, last_sequence=len(kept)
            ),
        ),
    )


def test_member_keys_share_the_archive_secrets_but_not_its_signing_key(tmp_path: Path) -> None:
    for member, kind in ((WRITER, pb.KEY_KIND_WRITER), (READER, pb.KEY_KIND_READER)):
        assert member.archive_id == ROOT.archive_id
        assert member.encryption_key == ROOT.encryption_key
        assert member.chunker_seed == ROOT.chunker_seed
        assert member.kind == kind and not member.signing_seed
        path = tmp_path / f"{member.kind_name}.key"
        save_key(member, path, passphrase="pw")
        assert read_key_file(path).kind == kind
        assert load_key(path, "pw") == member
        with pytest.raises(KeyRoleError):
            member.sign("custody record", b"x")
        with pytest.raises(KeyRoleError):
            member.delegate(pb.MEMBER_ROLE_WRITER, "x", 1)


def test_a_member_key_with_a_foreign_or_forged_certificate_does_not_load() -> None:
    _, foreign_cert = OTHER.delegate(pb.MEMBER_ROLE_WRITER, "x", 1)
    with pytest.raises(KeyFileError, match="certificate"):
        ArchiveKey(
            b"", ROOT.master_secret, WRITER.member_seed, foreign_cert.signed.SerializeToString()
        )
    forged = pb.SignedCustodyRecord(record=WRITER_CERT.signed.record, signature=bytes(64))
    with pytest.raises(KeyFileError, match="certificate"):
        ArchiveKey(b"", ROOT.master_secret, WRITER.member_seed, forged.SerializeToString())


def test_writer_snapshots_verify_reader_keys_cannot_sign() -> None:
    snap = sign_snapshot(WRITER, pb.SnapshotRecord(sequence=3))
    assert snap.record.writer_key == WRITER.member_key
    assert verify_snapshot(snap.signed, bytes(ROOT.archive_id)).id == snap.id
    # The certificate of another archive's writer does not make it this archive's writer.
    other_writer, _ = OTHER.delegate(pb.MEMBER_ROLE_WRITER, "x", 1)
    tampered = pb.SignedSnapshot()
    tampered.CopyFrom(snap.signed)
    tampered.certificate.CopyFrom(other_writer.certificate_record())
    with pytest.raises(SignatureError):
        verify_snapshot(tampered)
    # A reader certificate does not certify a writer.
    reader_signed = pb.SignedSnapshot()
    reader_signed.CopyFrom(snap.signed)
    reader_signed.certificate.CopyFrom(READER.certificate_record())
    with pytest.raises(SignatureError):
        verify_snapshot(reader_signed)
    with pytest.raises(KeyRoleError):
        sign_snapshot(READER, pb.SnapshotRecord(sequence=4))


def test_member_tokens() -> None:
    caller = verify_token(archive_token(WRITER, pb.ROLE_WRITER, "node"), "node")
    assert (caller.role, caller.archive_id, caller.member_key) == (
        pb.ROLE_WRITER,
        bytes(ROOT.archive_id),
        WRITER.member_key,
    )
    caller = verify_token(archive_token(READER, pb.ROLE_READER, "node"), "node")
    assert caller.role == pb.ROLE_READER and caller.member_key == READER.member_key
    with pytest.raises(KeyRoleError):
        archive_token(READER, pb.ROLE_WRITER, "node")
    # A reader's certificate under a writer role claim is refused by the node.
    token = pb.AuthToken.FromString(archive_token(READER, pb.ROLE_READER, "node"))
    claims = pb.AuthClaims.FromString(token.claims)
    claims.role = pb.ROLE_WRITER
    raw = claims.SerializeToString()
    forged = pb.AuthToken(claims=raw, signature=READER.sign_as_member("auth token", raw))
    with pytest.raises(AccessDenied, match="role"):
        verify_token(forged.SerializeToString(), "node")


def test_only_the_archive_key_signs_custody_records() -> None:
    record = pb.CustodyRecord(
        version=1,
        archive_id=bytes(ROOT.archive_id),
        serial=9,
        node_revocation=pb.NodeRevocation(node_id=NODE_ID),
    )
    raw = record.SerializeToString()
    by_writer = pb.SignedCustodyRecord(
        record=raw, signature=ed25519_sign(WRITER.member_seed, "custody record", raw)
    )
    with pytest.raises(SignatureError):
        verify_custody_record(by_writer)
    by_other = pb.SignedCustodyRecord(record=raw, signature=OTHER.sign("custody record", raw))
    with pytest.raises(SignatureError):
        verify_custody_record(by_other)
    # Another archive's own record is valid, but not for this archive.
    theirs = sign_custody_record(
        OTHER, pb.CustodyRecord(serial=1, node_revocation=record.node_revocation)
    )
    with pytest.raises(SignatureError, match="another archive"):
        verify_custody_record(theirs.signed, bytes(ROOT.archive_id))
    # A signature made for another purpose never passes as a custody record.
    as_snapshot = pb.SignedCustodyRecord(record=raw, signature=ROOT.sign("snapshot record", raw))
    with pytest.raises(SignatureError):
        verify_custody_record(as_snapshot)


def test_newest_revocation_decides_and_replays_change_nothing() -> None:
    kept, later = b"\x01" * 32, b"\x02" * 32
    old, new = revoke_writer(10, [kept, later]), revoke_writer(20, [kept])
    state = CustodyState()
    for rec in (WRITER_CERT, new, old, WRITER_CERT, old):  # replays, out of order
        state.add(rec)
    revocation = state.key_revocation(bytes(ROOT.archive_id), WRITER.member_key)
    assert revocation is not None and list(revocation.kept_snapshot_ids) == [kept]
    record = pb.SnapshotRecord(archive_id=bytes(ROOT.archive_id), writer_key=WRITER.member_key)
    assert state.snapshot_refusal(kept, record) == ""
    assert "revoked" in state.snapshot_refusal(later, record)
    assert "revoked" in state.snapshot_refusal(b"\x03" * 32, record)
    # A newer certificate does not undo a revocation: revocations are final.
    recert = sign_custody_record(
        ROOT,
        pb.CustodyRecord(
            serial=99,
            certificate=pb.KeyCertificate(
                member_key=WRITER.member_key, role=pb.MEMBER_ROLE_WRITER, name="again"
            ),
        ),
    )
    state.add(recert)
    assert "revoked" in state.snapshot_refusal(b"\x03" * 32, record)
    members = state.members(bytes(ROOT.archive_id))
    assert [(k, revoked) for k, _, revoked in members] == [(WRITER.member_key, True)]


@given(st.permutations(range(4)))
def test_state_does_not_depend_on_arrival_order(order: list[int]) -> None:
    records = [
        WRITER_CERT,
        revoke_writer(10, [b"\x01" * 32]),
        revoke_writer(20, []),
        sign_custody_record(
            ROOT, pb.CustodyRecord(serial=5, node_revocation=pb.NodeRevocation(node_id=NODE_ID))
        ),
    ]
    state = CustodyState()
    for i in order:
        state.add(records[i])
    revocation = state.key_revocation(bytes(ROOT.archive_id), WRITER.member_key)
    assert revocation is not None and list(revocation.kept_snapshot_ids) == []
    assert set(state.revoked_nodes()) == {NODE_ID}


NODE = pb.NodeRevocation(node_id=NODE_ID)
ELSEWHERE = sign_custody_record(OTHER, pb.CustodyRecord(serial=1, node_revocation=NODE)).signed
JUNK = pb.SignedCustodyRecord(
    record=pb.CustodyRecord(
        version=1, archive_id=bytes(ROOT.archive_id), serial=1
    ).SerializeToString(),
    signature=bytes(64),
)


class Pages:
    """A custody source answering `pages(after)`; counts the pages asked."""

    label = "lister"

    def __init__(self, pages: Callable[[int], CustodyPage]) -> None:
        self.pages, self.asked = pages, 0

    def custody_page(self, after: int) -> CustodyPage:
        self.asked += 1
        return self.pages(after)


def test_a_custody_listing_keeps_every_page_of_what_verifies() -> None:
    revocation = revoke_writer(3, [])
    forged = pb.SignedCustodyRecord(record=revocation.signed.record, signature=bytes(64))
    other = sign_custody_record(OTHER, pb.CustodyRecord(serial=1, node_revocation=NODE))
    malformed = pb.SignedCustodyRecord(record=b"\xff")
    pages = {
        0: CustodyPage([WRITER_CERT.signed, forged, other.signed, malformed], 4, more=True),
        4: CustodyPage([WRITER_CERT.signed, revocation.signed], 6),
    }
    source = Pages(lambda after: pages[after])
    listing = CustodyListing(source.label, ROOT.archive_id)
    while not listing.done:
        listing.take(source.custody_page(listing.after))
    assert [r.id for r in listing.records] == [WRITER_CERT.id, revocation.id]
    # the forged copy is junk; the other archive's record and the malformed one cost a count
    assert listing.junk == 1
    assert [r.id for r in read_custody(Pages(lambda after: pages[after]))] == [
        WRITER_CERT.id,
        other.id,
        revocation.id,
    ]


@pytest.mark.parametrize(
    ("page", "says"),
    [
        # pages without records that advance and say more follow, for ever
        (lambda after: CustodyPage([], after + 1, more=True), "1000 pages"),
        # another archive's records, 1,000 a page, for ever (no signature checked)
        (lambda after: CustodyPage([ELSEWHERE] * 1000, after + 1000, True), "100000 records"),
        # pages that each take 4 MiB on the wire
        (lambda after: CustodyPage([], after + 1, True, nbytes=4 << 20), "128 MiB"),
        # records naming the archive, none signed by its key
        (lambda after: CustodyPage([JUNK] * 600, after + 600, more=True), "did not sign"),
        # a page that says more follow but does not advance, or goes back
        (lambda after: CustodyPage([], after, more=True), "with more to come"),
        (lambda after: CustodyPage([], after - 1 if after else 5, more=True), "ending at 4"),
    ],
)
def test_a_custody_listing_that_does_not_end_is_refused(
    page: Callable[[int], CustodyPage], says: str
) -> None:
    source = Pages(page)
    with pytest.raises(PeerMisbehaved, match=f"node lister .*{says}"):
        read_custody(source, ROOT.archive_id)
    assert source.asked <= MAX_CUSTODY_PAGES
