"""Chunk messages written straight into wire bytes are the ones protobuf writes."""

from __future__ import annotations

import random

import pytest

from samizdat.rpc.wire import get_chunks_response, put_chunks_request
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
