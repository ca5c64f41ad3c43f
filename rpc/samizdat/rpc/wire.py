"""Conversions between the node API's wire messages (node.proto) and the transport-free
dataclasses of samizdat.core.peer. The only place where a listing or a chunk answer changes
form; used by the gRPC peer (client side) and by the servicers (server side).

The two messages that carry megabytes of blobs, PutChunksRequest and GetChunksResponse, are
written straight into their wire bytes: through protobuf objects every blob is copied into a
Chunk, again into the message and once more by serialization (over 1 CPU-s per GiB on this
machine); here each blob is copied once, into the bytes gRPC sends (it takes them
pre-serialized: NodeClient.put_chunks and the node's GetChunks handler). The bytes are
exactly protobuf's serialization of the same message (tests/rpc/test_wire.py).

GetChunksResponses are read back the same way (`part_from_bytes`): protobuf's parse copies
every blob twice, into its arena and again into the `bytes` a field access returns; here the
blobs are views into the received message, copied by nothing until the store writes its pack
(ChunkStore.put_chunks keeps such views). The node reads PutChunksRequests so too
(`parse_put_chunks_request`). Both parsers accept exactly what protobuf accepts, with the same
values, and refuse what it refuses (tests/rpc/test_wire_parse.py compares them on mutated
messages), except that they also refuse more entries than a real message holds
(MAX_PUT_CHUNKS, MAX_BATCH_IDS). A message padded with unknown fields gets copies, not views
(`_kept`), so that kept blobs never hold more than 4/3 of their size in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from samizdat.core.errors import PeerMisbehaved
from samizdat.core.ids import ArchiveId
from samizdat.core.peer import Blob, ChunkPart, CustodyPage, ListedSnapshot, SnapshotPage
from samizdat.rpc.limits import MAX_BATCH_IDS, MAX_PUT_CHUNKS
from samizdat.v1 import node_pb2 as npb


def listed_from_wire(item: npb.StoredSnapshot) -> ListedSnapshot:
    return ListedSnapshot(
        signed=item.snapshot,
        chunks_held=item.chunks_held,
        chunks_total=item.chunks_total,
        position=item.position,
        snapshot_id=item.snapshot_id,
        bytes_total=item.bytes_total,
    )


def listed_to_wire(item: ListedSnapshot) -> npb.StoredSnapshot:
    return npb.StoredSnapshot(
        snapshot_id=item.snapshot_id,
        snapshot=item.signed,
        position=item.position,
        chunks_held=item.chunks_held,
        chunks_total=item.chunks_total,
        bytes_total=item.bytes_total,
    )


def page_from_wire(page: npb.ListSnapshotsResponse, nbytes: int | None = None) -> SnapshotPage:
    """The page, with its size as received (unknown fields too: the records keep the whole
    message alive), which samizdat.core.peer.Listing counts: `nbytes` when the caller has the
    bytes received, else the message's size computed (a serialization of it)."""
    return SnapshotPage(
        [listed_from_wire(item) for item in page.snapshots],
        page.last_position,
        page.more,
        page.ByteSize() if nbytes is None else nbytes,
    )


def page_to_wire(page: SnapshotPage) -> npb.ListSnapshotsResponse:
    return npb.ListSnapshotsResponse(
        snapshots=[listed_to_wire(item) for item in page.snapshots],
        last_position=page.last_position,
        more=page.more,
    )


def custody_from_wire(page: npb.ListCustodyRecordsResponse) -> CustodyPage:
    return CustodyPage(list(page.records), page.last_position, page.more, page.ByteSize())


def custody_to_wire(page: CustodyPage) -> npb.ListCustodyRecordsResponse:
    return npb.ListCustodyRecordsResponse(
        records=page.records, last_position=page.last_position, more=page.more
    )


def chunks_to_wire(
    archive_id: ArchiveId, batches: Iterable[Sequence[tuple[bytes, bytes]]]
) -> Iterable[bytes]:
    """Serialized PutChunksRequests, one per batch of (id, blob)."""
    for batch in batches:
        yield put_chunks_request(archive_id, batch)


# Field keys (field number << 3 | wire type 2, length-delimited) of node.proto.
_PUT_ARCHIVE_ID = b"\x0a"  # PutChunksRequest.archive_id = 1
_PUT_CHUNKS = b"\x12"  # PutChunksRequest.chunks = 2
_GOT_CHUNKS = b"\x0a"  # GetChunksResponse.chunks = 1
_GOT_MISSING_IDS = b"\x12"  # GetChunksResponse.missing_ids = 2
_CHUNK_ID = b"\x0a"  # Chunk.id = 1
_CHUNK_DATA = b"\x12"  # Chunk.data = 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _head(key: bytes, value: bytes) -> bytes:
    """Key and length of a bytes field (nothing for an empty value: proto3 omits it)."""
    return key + _varint(len(value)) if value else b""


def _chunks(key: bytes, chunks: Sequence[tuple[bytes, bytes]], parts: list[bytes]) -> None:
    """Append repeated Chunk messages {id, data} under field `key`."""
    for chunk_id, blob in chunks:
        head = _head(_CHUNK_ID, chunk_id) + chunk_id + _head(_CHUNK_DATA, blob)
        parts += [key, _varint(len(head) + len(blob)), head, blob]


def put_chunks_request(archive_id: ArchiveId, chunks: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The serialized PutChunksRequest of (id, blob) pairs for `archive_id`."""
    parts = [_head(_PUT_ARCHIVE_ID, archive_id), archive_id]
    _chunks(_PUT_CHUNKS, chunks, parts)
    return b"".join(parts)


def get_chunks_response(chunks: Sequence[tuple[bytes, bytes]], missing: Sequence[bytes]) -> bytes:
    """The serialized GetChunksResponse of (id, blob) pairs and missing ids."""
    parts: list[bytes] = []
    _chunks(_GOT_CHUNKS, chunks, parts)
    for chunk_id in missing:
        parts += [_GOT_MISSING_IDS, _varint(len(chunk_id)), chunk_id]
    return b"".join(parts)


_MAX_GROUP_DEPTH = 100  # protobuf's own recursion limit


def _varint_at(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; ValueError past `end` or 10 bytes."""
    value = shift = 0
    while pos < end and shift < 70:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("a varint runs past its message")


def _bytes_fields(
    data: memoryview, pos: int, end: int, depth: int = 0
) -> Iterator[tuple[int, memoryview]]:
    """(field number, value) of the length-delimited fields in data[pos:end], a message nested
    `depth` deep, in order. Other fields are skipped, as protobuf keeps them unknown (a known
    field sent with another wire type included, and groups); a malformed encoding (field 0, an
    unmatched end of group, a length past the end or longer than protobuf's 5-byte, 31-bit
    lengths, groups nested past protobuf's depth limit) raises ValueError."""
    groups: list[int] = []  # the numbers of the groups being skipped, innermost last
    while pos < end:
        start = pos
        key, pos = _varint_at(data, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0 or key >> 32 or pos - start > 5:  # a key is a 32-bit varint
            raise ValueError(f"field number {number} out of range")
        if wire_type == 2:
            length_at = pos
            size, pos = _varint_at(data, pos, end)
            if pos - length_at > 5 or size >> 31:
                raise ValueError("a length out of range")
            if size > end - pos:
                raise ValueError("a field runs past its message")
            if not groups:
                yield number, data[pos : pos + size]
            pos += size
        elif wire_type == 0:
            pos = _varint_at(data, pos, end)[1]
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
        elif wire_type == 3:
            if depth + len(groups) >= _MAX_GROUP_DEPTH:
                raise ValueError("groups nested too deep")
            groups.append(number)
        elif wire_type == 4 and groups and groups[-1] == number:
            groups.pop()
        else:
            raise ValueError(f"wire type {wire_type} of field {number} out of place")
    if pos > end or groups:
        raise ValueError("a field runs past its message")


def _chunk(message: memoryview) -> tuple[memoryview, memoryview]:
    """(id, data) of a serialized Chunk, as views (the last of each wins, as in protobuf)."""
    chunk_id = blob = message[:0]
    for number, value in _bytes_fields(message, 0, len(message), depth=1):
        if number == 1:
            chunk_id = value
        elif number == 2:
            blob = value
    return chunk_id, blob


def _kept(chunks: list[tuple[bytes, memoryview]], size: int) -> list[tuple[bytes, Blob]]:
    """The blobs of a message of `size` bytes as views into it when they fill at least 3/4 of
    it, else as copies: a view keeps its whole message alive, and a message padded with
    unknown fields around tiny blobs must not pin its padding in the store's buffer."""
    if 4 * sum(len(blob) for _, blob in chunks) >= 3 * size:
        return list(chunks)
    return [(chunk_id, bytes(blob)) for chunk_id, blob in chunks]


def part_from_bytes(data: bytes, label: str) -> ChunkPart:
    """The ChunkPart of a serialized GetChunksResponse, as protobuf would parse it (the last
    `id` or `data` of a Chunk wins, unknown fields are skipped), blobs as `_kept` gives them.
    Raises PeerMisbehaved, naming node `label`, for bytes protobuf would refuse and for more
    than MAX_BATCH_IDS entries (no request asks for more)."""
    view = memoryview(data)
    chunks: list[tuple[bytes, memoryview]] = []
    missing: list[bytes] = []
    try:
        for number, value in _bytes_fields(view, 0, len(view)):
            if number in (1, 2) and len(chunks) + len(missing) >= MAX_BATCH_IDS:
                raise ValueError(f"more than {MAX_BATCH_IDS} chunks in one answer")
            if number == 1:  # GetChunksResponse.chunks
                chunk_id, blob = _chunk(value)
                chunks.append((bytes(chunk_id), blob))
            elif number == 2:  # GetChunksResponse.missing_ids
                missing.append(bytes(value))
    except ValueError as e:
        raise PeerMisbehaved(f"node {label} sent a malformed GetChunks answer: {e}") from None
    return ChunkPart(_kept(chunks, len(view)), missing)


@dataclass(frozen=True, slots=True)
class PutChunksWire:
    """A parsed PutChunksRequest: `archive_id` and (id, blob) pairs, each blob as `_kept`
    gives it (a view keeps the received bytes alive)."""

    archive_id: bytes
    chunks: list[tuple[bytes, Blob]]


def parse_put_chunks_request(data: bytes) -> PutChunksWire:
    """Parse a serialized PutChunksRequest as protobuf would (the last `archive_id`, and the
    last `id` or `data` of a Chunk, wins; unknown fields are skipped), blobs as `_kept`
    gives them. Raises ValueError for bytes protobuf would refuse, and for more than
    MAX_PUT_CHUNKS chunks (the node's admission layer answers both INVALID_ARGUMENT,
    "undecodable message"). Costly for a message of many tiny entries: the node runs it off
    its event loop (admission.OffLoop)."""
    view = memoryview(data).cast("B")
    archive_id = b""
    chunks: list[tuple[bytes, memoryview]] = []
    for number, value in _bytes_fields(view, 0, len(view)):
        if number == 2 and len(chunks) >= MAX_PUT_CHUNKS:
            raise ValueError(f"more than {MAX_PUT_CHUNKS} chunks in one message")
        if number == 1:  # PutChunksRequest.archive_id
            archive_id = bytes(value)
        elif number == 2:  # PutChunksRequest.chunks
            chunk_id, blob = _chunk(value)
            chunks.append((bytes(chunk_id), blob))
    return PutChunksWire(archive_id, _kept(chunks, len(view)))
