"""Custody records, member keys and tokens in process: who can sign what, ordering, replays."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samizdat.core.custody import (
    CustodyRecord,
    CustodyState,
    sign_custody_record,
    verify_custody_record,
)
from samizdat.core.errors import AccessDenied, KeyFileError, KeyRoleError, SignatureError
from samizdat.core.keys import ArchiveKey, load_key, read_key_file, save_key
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
