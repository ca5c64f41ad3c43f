"""Ed25519 signatures with per-purpose domain separation, shared by every signed format.

Every signature covers `"samizdat v1 " || context || 0x00 || message`, so a signature made for
one purpose (a snapshot record) can never pass as another (a token, a custody record).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.message import DecodeError

from samizdat.core.errors import SignatureError


def signed_message(context: str, message: bytes) -> bytes:
    """The bytes an archive, member or node key actually signs for one purpose."""
    return b"samizdat v1 " + context.encode() + b"\0" + message


def ed25519_public(seed: bytes) -> bytes:
    """The raw 32-byte public key of an Ed25519 private seed."""
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def ed25519_sign(seed: bytes, context: str, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(signed_message(context, message))


def verify_ed25519(
    public: bytes, context: str, message: bytes, signature: bytes, signer: str = "the archive key"
) -> None:
    """Raise SignatureError unless `signature` is `public`'s signature of `message` for
    `context`."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            signature, signed_message(context, message)
        )
    except (InvalidSignature, ValueError):
        raise SignatureError(f"signature does not verify under {signer}") from None


class SignedBody(Protocol):
    """What every record the archive key vouches for begins with (snapshot and custody
    records, docs/format.md)."""

    version: int
    archive_id: bytes

    def ParseFromString(self, serialized: bytes, /) -> int: ...


B = TypeVar("B", bound=SignedBody)


def parse_signed_body(
    body: B, raw: bytes, what: str, version: int, archive_id: bytes | None = None
) -> B:
    """Parse `raw` into `body` and check what every signed record shares: `version`, a
    32-byte archive id, and that it is `archive_id` when given. Raise SignatureError naming
    `what` otherwise. The signature is the caller's to check."""
    try:
        body.ParseFromString(raw)
    except DecodeError:
        raise SignatureError(f"{what} is malformed") from None
    if body.version != version:
        raise SignatureError(f"{what} has unsupported version {body.version}")
    if len(body.archive_id) != 32:
        raise SignatureError(f"{what} names no valid archive")
    if archive_id is not None and body.archive_id != bytes(archive_id):
        raise SignatureError(f"{what} belongs to another archive")
    return body
