"""Identifiers: chunk ids, snapshot ids and archive ids (32 raw bytes each)."""

from __future__ import annotations

import base64
from typing import Self

import blake3

from samizdat.core.errors import UsageError

ID_SIZE = 32
SHORT_HEX = 12  # hex digits that name an id in messages and logs


def short_hex(raw: bytes) -> str:
    """The short hex form of an id (or key) for messages and logs: its first 12 hex digits."""
    return raw[: SHORT_HEX // 2].hex()


class Digest(bytes):
    """32 raw bytes naming an object; `hex()` for display, `short()` for logs."""

    kind = "id"

    def __new__(cls, raw: bytes) -> Digest:  # noqa: D102
        if len(raw) != ID_SIZE:
            raise UsageError(f"{cls.kind} must be {ID_SIZE} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse a 64-digit hex string."""
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError:
            raise UsageError(f"not a valid {cls.kind}: {text!r} (expected 64 hex digits)") from None
        return cls(raw)

    def short(self) -> str:
        return short_hex(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.short()})"


class ChunkId(Digest):
    """BLAKE3-256 of a stored chunk blob."""

    kind = "chunk id"

    @classmethod
    def of(cls, blob: bytes | memoryview) -> ChunkId:
        return cls(blake3.blake3(blob).digest())


class SnapshotId(Digest):
    """BLAKE3-256 of a serialized, signed snapshot record."""

    kind = "snapshot id"

    @classmethod
    def of(cls, record_bytes: bytes) -> SnapshotId:
        return cls(blake3.blake3(record_bytes).digest())


class ArchiveId(Digest):
    """An archive's Ed25519 public key."""

    kind = "archive id"


def node_id_of(spki_der: bytes) -> str:
    """Node id: lowercase unpadded base32 of SHA-256 over the node key's SubjectPublicKeyInfo."""
    import hashlib

    return base64.b32encode(hashlib.sha256(spki_der).digest()).decode().rstrip("=").lower()


def check_node_id(text: str) -> str:
    """Return `text` if it has the shape of a node id, else raise UsageError."""
    ok = len(text) == 52 and all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in text)
    if not ok:
        raise UsageError(f"not a valid node id: {text!r} (expected 52 base32 characters)")
    return text
