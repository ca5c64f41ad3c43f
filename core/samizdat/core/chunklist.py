"""Chunk lists: plaintext lists of the chunk ids a snapshot references.

Blob layout: magic `SZCL` followed by a serialized `ChunkList`. A chunk list is stored as a
chunk (id = BLAKE3 of the blob) and lets a node work out what it must hold without the key.

Version 2 (written) lists every id of a snapshot once, all lists together strictly ascending
by id, so a list keeps no trace of the tree's order, and pads the blob with a `padding` field
to `padded_length` of its unpadded size. Version 1 (read only) kept first-seen (tree) order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from google.protobuf.message import DecodeError

from samizdat.core.errors import ChunkCheck, ChunkCorrupt
from samizdat.core.ids import ChunkId
from samizdat.core.padding import padded_length
from samizdat.v1 import records_pb2 as pb

MAGIC = b"SZCL"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_IDS = 32 * 1024
_PADDING_TAG = 1  # field 4, length-delimited: one tag byte


def _varint_size(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def encode_chunk_list(entries: Iterable[tuple[bytes, int]]) -> tuple[ChunkId, bytes]:
    """Serialize (id, stored size) pairs (at most MAX_IDS, strictly ascending ids) into a
    padded version 2 chunk-list blob."""
    msg = pb.ChunkList(version=VERSION)
    for chunk_id, size in entries:
        msg.ids.append(chunk_id)
        msg.sizes.append(size)
    if len(msg.ids) > MAX_IDS:
        raise ValueError("chunk list too long")
    if not _ascending(msg.ids):
        raise ValueError("chunk list ids must be strictly ascending")
    msg.padding = bytes(_fill_for(len(MAGIC) + msg.ByteSize()))
    blob = MAGIC + msg.SerializeToString()
    return ChunkId.of(blob), blob


def _ascending(ids: Sequence[bytes]) -> bool:
    return all(a < b for a, b in itertools.pairwise(ids))


def _fill_for(bare: int) -> int:
    """The number of padding bytes that brings a `bare`-byte blob to a padded length (the
    smallest reachable one: the field costs a tag and a varint length besides the fill)."""
    target = padded_length(bare + 3)
    while True:
        for prefix in range(_PADDING_TAG + 1, _PADDING_TAG + 5):
            fill = target - bare - prefix
            if fill > 0 and _PADDING_TAG + _varint_size(fill) == prefix:
                return fill
        target = padded_length(target + 1)


def decode_chunk_list(chunk_id: bytes, blob: bytes) -> list[tuple[ChunkId, int]]:
    """Parse a chunk-list blob (its id already verified) into (id, stored size) pairs.
    Version 2 lists must be strictly ascending by id."""
    msg = pb.ChunkList()
    if not blob.startswith(MAGIC):
        raise ChunkCorrupt(chunk_id.hex(), ChunkCheck.CONTENT, "not a chunk list")
    try:
        msg.ParseFromString(blob[len(MAGIC) :])
    except DecodeError:
        raise ChunkCorrupt(chunk_id.hex(), ChunkCheck.CONTENT, "malformed chunk list") from None
    if (
        msg.version not in READABLE_VERSIONS
        or len(msg.ids) > MAX_IDS
        or len(msg.ids) != len(msg.sizes)
        or any(len(i) != 32 for i in msg.ids)
        or (msg.version >= 2 and not _ascending(msg.ids))
    ):
        raise ChunkCorrupt(chunk_id.hex(), ChunkCheck.CONTENT, "malformed chunk list")
    return [(ChunkId(i), size) for i, size in zip(msg.ids, msg.sizes, strict=True)]


class ChunkListBuilder:
    """Collects the distinct ids of a snapshot with their stored sizes and, at the end, cuts
    them in id order into chunk lists."""

    def __init__(self) -> None:
        self._sizes: dict[ChunkId, int] = {}

    def add(self, chunk_id: ChunkId, stored_size: int) -> bool:
        """Record a referenced chunk; return False if it was already recorded."""
        if chunk_id in self._sizes:
            return False
        self._sizes[chunk_id] = stored_size
        return True

    def __len__(self) -> int:
        return len(self._sizes)

    def finish(self) -> list[tuple[ChunkId, bytes]]:
        """Encode every id gathered, sorted, as chunk lists of MAX_IDS ids (the last one
        shorter)."""
        ids = sorted(self._sizes)
        return [
            encode_chunk_list((i, self._sizes[i]) for i in ids[start : start + MAX_IDS])
            for start in range(0, len(ids), MAX_IDS)
        ]
