"""Per-call authentication tokens: signed, audience-bound, short-lived claims.

A writer or reader proves possession of the archive key, or of a member key the archive key
certified (the certificate travels in the token), by an Ed25519 signature; a node proves its
identity by an ECDSA P-256 signature with its node key. Tokens name the node they are for
(its id), so a seized node cannot replay a token it received against another node.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from google.protobuf.message import DecodeError

from samizdat.core.custody import verify_certificate
from samizdat.core.errors import AccessDenied, KeyRoleError, MalformedToken, SignatureError
from samizdat.core.ids import node_id_of
from samizdat.core.keys import ArchiveKey
from samizdat.core.signing import signed_message
from samizdat.v1 import records_pb2 as pb

TOKEN_VERSION = 1
SIGNING_CONTEXT = "auth token"
TOKEN_LIFETIME = 600
CLOCK_SKEW = 300


def _token(claims: pb.AuthClaims, signature: bytes) -> bytes:
    return pb.AuthToken(claims=claims.SerializeToString(), signature=signature).SerializeToString()


def _claims(role: int, subject: bytes, audience: str, lifetime: int) -> pb.AuthClaims:
    return pb.AuthClaims(
        version=TOKEN_VERSION,
        role=role,  # type: ignore[arg-type]
        subject_key=subject,
        audience=audience,
        expires_unix=int(time.time()) + lifetime,
        nonce=secrets.token_bytes(8),
    )


def archive_token(
    key: ArchiveKey, role: int, audience: str, lifetime: int = TOKEN_LIFETIME
) -> bytes:
    """A reader or writer token signed by the archive key, or by a certified member key
    (KeyRoleError if a reader key asks for a writer token)."""
    if not key.member_key:
        claims = _claims(role, bytes(key.archive_id), audience, lifetime)
        return _token(claims, key.sign(SIGNING_CONTEXT, claims.SerializeToString()))
    if role == pb.ROLE_WRITER and not key.can_write:
        raise KeyRoleError("this is a reader key: it can restore and verify, not push")
    claims = _claims(role, key.member_key, audience, lifetime)
    claims.archive_id = bytes(key.archive_id)
    claims.certificate.CopyFrom(key.certificate_record())
    return _token(claims, key.sign_as_member(SIGNING_CONTEXT, claims.SerializeToString()))


def node_token(
    node_key: ec.EllipticCurvePrivateKey, audience: str, lifetime: int = TOKEN_LIFETIME
) -> bytes:
    """A peer token signed by a node's identity key."""
    spki = node_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    claims = _claims(pb.ROLE_PEER, spki, audience, lifetime)
    return _token(
        claims,
        node_key.sign(
            signed_message(SIGNING_CONTEXT, claims.SerializeToString()), ec.ECDSA(hashes.SHA256())
        ),
    )


@dataclass(frozen=True)
class Caller:
    """A verified caller: its role and who it is (archive id bytes, plus the member key when
    a writer or reader key signed the token; or node id)."""

    role: int
    archive_id: bytes = b""
    node_id: str = ""
    member_key: bytes = b""


def verify_token(raw: bytes, audience: str, now: float | None = None) -> Caller:
    """Check a token's signature, audience and lifetime; raise AccessDenied otherwise."""
    token, claims = pb.AuthToken(), pb.AuthClaims()
    try:
        token.ParseFromString(raw)
        claims.ParseFromString(token.claims)
    except DecodeError:
        raise MalformedToken("malformed authentication token") from None
    now = time.time() if now is None else now
    if claims.version != TOKEN_VERSION:
        raise AccessDenied("unsupported authentication token version")
    if claims.audience != audience:
        raise AccessDenied("authentication token was issued for another node")
    if not (now - CLOCK_SKEW <= claims.expires_unix <= now + TOKEN_LIFETIME + CLOCK_SKEW):
        raise AccessDenied("authentication token expired (check the clocks)")
    try:
        if claims.role in (pb.ROLE_READER, pb.ROLE_WRITER) and claims.HasField("certificate"):
            member_role = (
                pb.MEMBER_ROLE_WRITER if claims.role == pb.ROLE_WRITER else pb.MEMBER_ROLE_READER
            )
            try:
                verify_certificate(
                    claims.certificate, claims.archive_id, claims.subject_key, member_role
                )
            except SignatureError as e:
                raise AccessDenied(f"authentication token: {e}") from None
            Ed25519PublicKey.from_public_bytes(claims.subject_key).verify(
                token.signature, signed_message(SIGNING_CONTEXT, token.claims)
            )
            return Caller(claims.role, archive_id=claims.archive_id, member_key=claims.subject_key)
        if claims.role in (pb.ROLE_READER, pb.ROLE_WRITER):
            Ed25519PublicKey.from_public_bytes(claims.subject_key).verify(
                token.signature, signed_message(SIGNING_CONTEXT, token.claims)
            )
            return Caller(claims.role, archive_id=claims.subject_key)
        if claims.role == pb.ROLE_PEER:
            try:
                public = load_der_public_key(claims.subject_key)
            except UnsupportedAlgorithm:  # e.g. a curve nobody supports
                raise MalformedToken("authentication token names no valid node key") from None
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise AccessDenied("peer token must use an EC node key")
            public.verify(
                token.signature,
                signed_message(SIGNING_CONTEXT, token.claims),
                ec.ECDSA(hashes.SHA256()),
            )
            return Caller(claims.role, node_id=node_id_of(claims.subject_key))
    except (InvalidSignature, ValueError):
        raise AccessDenied("authentication token signature does not verify") from None
    raise AccessDenied("authentication token has no valid role")
