"""Chunk lists: plaintext lists of the chunk ids a snapshot references.

Blob layout: magic `SZCL` followed by a serialized `ChunkList`. A chunk list is stored as a
chunk (id = BLAKE3 of the blob) and lets a node work out what it must hold without the key.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import DecodeError

from samizdat.core.errors import ChunkCorrupt
from samizdat.core.ids import ChunkId
from samizdat.v1 import records_pb2 as pb

MAGIC = b"SZCL"
VERSION = 1
MAX_IDS = 32 * 1024


def encode_chunk_list(entries: Iterable[tuple[bytes, int]]) -> tuple[ChunkId, bytes]:
    """Serialize (id, stored size) pairs (at most MAX_IDS) into a chunk-list blob."""
    msg = pb.ChunkList(version=VERSION)
    for chunk_id, size in entries:
        msg.ids.append(chunk_id)
        msg.sizes.append(size)
    if len(msg.ids) > MAX_IDS:
        raise ValueError("chunk list too long")
    blob = MAGIC + msg.SerializeToString()
    return ChunkId.of(blob), blob


def decode_chunk_list(chunk_id: bytes, blob: bytes) -> list[tuple[bytes, int]]:
    """Parse a chunk-list blob (its id already verified) into (id, stored size) pairs."""
    msg = pb.ChunkList()
    if not blob.startswith(MAGIC):
        raise ChunkCorrupt(chunk_id.hex(), "not a chunk list")
    try:
        msg.ParseFromString(blob[len(MAGIC) :])
    except DecodeError:
        raise ChunkCorrupt(chunk_id.hex(), "malformed chunk list") from None
    if (
        msg.version != VERSION
        or len(msg.ids) > MAX_IDS
        or len(msg.ids) != len(msg.sizes)
        or any(len(i) != 32 for i in msg.ids)
    ):
        raise ChunkCorrupt(chunk_id.hex(), "malformed chunk list")
    return list(zip(msg.ids, msg.sizes, strict=True))


class ChunkListBuilder:
    """Collects the ids of a snapshot in first-seen order and cuts them into chunk lists."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()
        self._pending: list[tuple[bytes, int]] = []

    def add(self, chunk_id: bytes, stored_size: int) -> bool:
        """Record a referenced chunk; return False if it was already recorded."""
        if chunk_id in self._seen:
            return False
        self._seen.add(chunk_id)
        self._pending.append((chunk_id, stored_size))
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def take_full(self, final: bool = False) -> list[tuple[ChunkId, bytes]]:
        """Return encoded chunk lists for the ids gathered so far (all of them if `final`)."""
        out = []
        while len(self._pending) >= MAX_IDS or (final and self._pending):
            part, self._pending = self._pending[:MAX_IDS], self._pending[MAX_IDS:]
            out.append(encode_chunk_list(part))
        return out
