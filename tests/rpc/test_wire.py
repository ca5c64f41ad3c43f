"""Chunk messages written straight into wire bytes are the ones protobuf writes, and read
back as protobuf reads them."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError

from samizdat.core.errors import PeerMisbehaved
from samizdat.rpc.wire import get_chunks_response, part_from_bytes, put_chunks_request
from samizdat.v1 import node_pb2 as npb


def proto_bytes(archive_id: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    request = npb.PutChunksRequest(archive_id=archive_id)
    for chunk_id, blob in chunks:
        request.chunks.add(id=chunk_id, data=blob)
    return request.SerializeToString()


@pytest.mark.parametrize(
    "sizes",
    [[], [0], [1], [127], [128], [16383], [16384], [300, 5, 70_000], [1 << 20, 2 << 20]],
)
def test_put_chunks_request_is_protobufs_serialization(sizes: list[int]) -> None:
    rng = random.Random(len(sizes) * 7 + sum(sizes))
    archive_id = rng.randbytes(32)
    chunks = [(rng.randbytes(32), rng.randbytes(n)) for n in sizes]
    wire = put_chunks_request(archive_id, chunks)
    assert wire == proto_bytes(archive_id, chunks)
    parsed = npb.PutChunksRequest.FromString(wire)
    assert parsed.archive_id == archive_id
    assert [(c.id, c.data) for c in parsed.chunks] == chunks


def test_empty_archive_id_and_chunk_id_are_omitted_like_protobuf_does() -> None:
    chunks = [(b"", b"data"), (b"id", b"")]
    assert put_chunks_request(b"", chunks) == proto_bytes(b"", chunks)


@pytest.mark.parametrize("sizes", [[], [0], [200], [1 << 20, 5]])
@pytest.mark.parametrize("missing", [0, 1, 3])
def test_get_chunks_response_is_protobufs_serialization(sizes: list[int], missing: int) -> None:
    rng = random.Random(sum(sizes) + missing)
    chunks = [(rng.randbytes(32), rng.randbytes(n)) for n in sizes]
    missing_ids = [rng.randbytes(32) for _ in range(missing)]
    expected = npb.GetChunksResponse(missing_ids=missing_ids)
    for chunk_id, blob in chunks:
        expected.chunks.add(id=chunk_id, data=blob)
    assert get_chunks_response(chunks, missing_ids) == expected.SerializeToString()


def parsed_by_protobuf(data: bytes) -> tuple[list[tuple[bytes, bytes]], list[bytes]] | None:
    try:
        response = npb.GetChunksResponse.FromString(data)
    except DecodeError:
        return None
    return [(c.id, c.data) for c in response.chunks], list(response.missing_ids)


def parsed_here(data: bytes) -> tuple[list[tuple[bytes, bytes]], list[bytes]] | None:
    try:
        part = part_from_bytes(data, "n")
    except PeerMisbehaved:
        return None
    return list(part.chunks), list(part.missing)


@pytest.mark.parametrize("sizes", [[], [0], [200], [1 << 20, 5], [127, 128, 16384]])
@pytest.mark.parametrize("missing", [0, 1, 3])
def test_get_chunks_response_parses_back(sizes: list[int], missing: int) -> None:
    rng = random.Random(sum(sizes) * 3 + missing)
    chunks = [(rng.randbytes(32), rng.randbytes(n)) for n in sizes]
    missing_ids = [rng.randbytes(32) for _ in range(missing)]
    data = get_chunks_response(chunks, missing_ids)
    part = part_from_bytes(data, "n")
    assert list(part.chunks) == chunks
    assert list(part.missing) == missing_ids
    assert all(type(c) is bytes for c, _ in part.chunks)
    if 4 * sum(sizes) >= 3 * len(data):  # the blobs fill the message: views into it
        assert all(isinstance(b, memoryview) and b.obj is data for _, b in part.chunks)


def test_blobs_of_a_padded_answer_are_copies_not_views_pinning_it() -> None:
    blob = b"tiny"
    chunk = b"\x0a\x01A\x12\x04" + blob
    padding = b"\x1a\x80\x80\x01" + bytes(1 << 14)  # an unknown field 3 of 16 KiB
    part = part_from_bytes(b"\x0a" + bytes([len(chunk)]) + chunk + padding, "n")
    assert list(part.chunks) == [(b"A", blob)]
    assert type(part.chunks[0][1]) is bytes


def test_unknown_fields_are_skipped_and_the_last_value_wins_as_in_protobuf() -> None:
    chunk = (
        b"\x0a\x01A" + b"\x10\x05" + b"\x0a\x01B" + b"\x12\x02xy" + b"\x1d1234" + b"\x19" + bytes(8)
    )
    data = b"\x0a" + bytes([len(chunk)]) + chunk + b"\x18\x96\x01" + b"\x12\x01M" + b"\x22\x00"
    data += b"\x1b\x0a\x01Z\x1c"  # a group (field 3) holding what would be a chunk: skipped
    assert parsed_here(data) == parsed_by_protobuf(data) == ([(b"B", b"xy")], [b"M"])


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x05abc",  # a length past the end
        b"\x0a\x03\x0a\x05a",  # the same inside a Chunk
        b"\x0b\x0a\x00",  # a group never ended
        b"\x0c",  # the end of a group never started
        b"\x02\x00",  # field number 0
        b"\x08" + b"\xff" * 11,  # a varint longer than 10 bytes
        b"\x08\x80",  # a varint cut short
        b"\x1d12",  # a fixed32 cut short
    ],
)
def test_malformed_answers_are_a_misbehaving_peer(data: bytes) -> None:
    assert parsed_by_protobuf(data) is None
    with pytest.raises(PeerMisbehaved, match="node n sent a malformed GetChunks answer"):
        part_from_bytes(data, "n")


def test_mutated_answers_parse_as_protobuf_parses_them() -> None:
    rng = random.Random(15)
    chunks = [(rng.randbytes(32), rng.randbytes(n)) for n in (0, 3, 130, 20)]
    good = get_chunks_response(chunks, [rng.randbytes(32)])
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice(
                (0, 1, 2, 0x0A, 0x12, 0x80, rng.randrange(256))
            )
        data = data[: rng.randint(len(data) // 2, len(data))] if rng.random() < 0.2 else data
        assert parsed_here(bytes(data)) == parsed_by_protobuf(bytes(data)), bytes(data).hex()
