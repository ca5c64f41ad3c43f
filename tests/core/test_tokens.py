"""Per-call tokens: audience, lifetime and signature are enforced (AccessDenied)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.errors import AccessDenied
from samizdat.core.keys import ArchiveKey, signed_message
from samizdat.core.tokens import (
    CLOCK_SKEW,
    TOKEN_LIFETIME,
    archive_token,
    node_token,
    verify_token,
)
from samizdat.v1 import records_pb2 as pb

KEY = ArchiveKey(signing_seed=b"\x21" * 32, master_secret=b"\x22" * 32)
OTHER = ArchiveKey(signing_seed=b"\x23" * 32, master_secret=b"\x24" * 32)
NODE = "a" * 52


@pytest.mark.parametrize("role", [pb.ROLE_READER, pb.ROLE_WRITER])
def test_archive_token_round_trip(role: int) -> None:
    caller = verify_token(archive_token(KEY, role, NODE), NODE)
    assert caller.role == role and caller.archive_id == bytes(KEY.archive_id)


def test_node_token_names_the_node() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from samizdat.core.ids import node_id_of

    node_key = ec.generate_private_key(ec.SECP256R1())
    caller = verify_token(node_token(node_key, NODE), NODE)
    spki = node_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert caller.role == pb.ROLE_PEER and caller.node_id == node_id_of(spki)


def test_audience_mismatch_is_denied() -> None:
    token = archive_token(KEY, pb.ROLE_WRITER, NODE)
    with pytest.raises(AccessDenied, match="another node"):
        verify_token(token, "b" * 52)


def test_expired_and_far_future_tokens_are_denied() -> None:
    token = archive_token(KEY, pb.ROLE_WRITER, NODE, lifetime=60)
    now = time.time()
    verify_token(token, NODE, now=now + 60 + CLOCK_SKEW - 5)  # within skew
    with pytest.raises(AccessDenied, match="expired"):
        verify_token(token, NODE, now=now + 60 + CLOCK_SKEW + 5)
    long_lived = archive_token(KEY, pb.ROLE_WRITER, NODE, lifetime=10 * TOKEN_LIFETIME)
    with pytest.raises(AccessDenied, match="expired"):
        verify_token(long_lived, NODE)


def _resign(token: bytes, mutate, signer) -> bytes:  # type: ignore[no-untyped-def]
    t = pb.AuthToken.FromString(token)
    claims = pb.AuthClaims.FromString(t.claims)
    mutate(claims)
    raw = claims.SerializeToString()
    return pb.AuthToken(claims=raw, signature=signer(raw)).SerializeToString()


def test_forged_tokens_are_denied() -> None:
    token = archive_token(KEY, pb.ROLE_READER, NODE)
    # claim KEY's archive but sign with OTHER
    forged = _resign(token, lambda c: None, lambda raw: OTHER.sign("auth token", raw))
    with pytest.raises(AccessDenied, match="does not verify"):
        verify_token(forged, NODE)
    # escalate reader -> writer without re-signing
    t = pb.AuthToken.FromString(token)
    claims = pb.AuthClaims.FromString(t.claims)
    claims.role = pb.ROLE_WRITER
    escalated = pb.AuthToken(
        claims=claims.SerializeToString(), signature=t.signature
    ).SerializeToString()
    with pytest.raises(AccessDenied, match="does not verify"):
        verify_token(escalated, NODE)
    # a node key claiming a peer identity it does not hold
    node_key, impostor = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    from cryptography.hazmat.primitives import hashes

    stolen = _resign(
        node_token(node_key, NODE),
        lambda c: None,
        lambda raw: impostor.sign(signed_message("auth token", raw), ec.ECDSA(hashes.SHA256())),
    )
    with pytest.raises(AccessDenied, match="does not verify"):
        verify_token(stolen, NODE)
    # no role
    roleless = _resign(
        token,
        lambda c: setattr(c, "role", pb.ROLE_UNSPECIFIED),
        lambda raw: KEY.sign("auth token", raw),
    )
    with pytest.raises(AccessDenied, match="no valid role"):
        verify_token(roleless, NODE)


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_garbage_is_denied_never_crashes(raw: bytes) -> None:
    with pytest.raises(AccessDenied):
        verify_token(raw, NODE)


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_any_flipped_bit_is_denied(data: st.DataObject) -> None:
    token = bytearray(archive_token(KEY, pb.ROLE_WRITER, NODE))
    pos = data.draw(st.integers(0, len(token) - 1))
    token[pos] ^= 1 << data.draw(st.integers(0, 7))
    try:
        caller = verify_token(bytes(token), NODE)
    except AccessDenied:
        return
    # A flip in protobuf framing can still parse to the same signed claims; then nothing
    # about the grant may have changed.
    assert caller.role == pb.ROLE_WRITER and caller.archive_id == bytes(KEY.archive_id)
