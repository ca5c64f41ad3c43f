"""The node's PutChunksRequest parser accepts exactly what protobuf accepts, with the same
values, and refuses with ValueError whatever protobuf refuses; beyond protobuf, it refuses
more than MAX_PUT_CHUNKS chunks in one message (and the client's GetChunks answer parser more
than MAX_BATCH_IDS entries)."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError

from samizdat.core.errors import PeerMisbehaved
from samizdat.rpc.limits import MAX_BATCH_IDS, MAX_PUT_CHUNKS
from samizdat.rpc.wire import _varint, parse_put_chunks_request, part_from_bytes, put_chunks_request
from samizdat.v1 import node_pb2 as npb

Parsed = tuple[bytes, list[tuple[bytes, bytes]]] | None


def by_protobuf(raw: bytes) -> Parsed:
    try:
        request = npb.PutChunksRequest.FromString(raw)
    except DecodeError:
        return None
    return request.archive_id, [(c.id, c.data) for c in request.chunks]


def by_parser(raw: bytes) -> Parsed:
    try:
        request = parse_put_chunks_request(raw)
    except ValueError:
        return None
    return request.archive_id, [(i, bytes(d)) for i, d in request.chunks]


def sample(rng: random.Random, count: int, max_size: int) -> bytes:
    chunks = [(rng.randbytes(32), rng.randbytes(rng.randint(0, max_size))) for _ in range(count)]
    return put_chunks_request(rng.randbytes(32), chunks)


def mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        pos = rng.randint(0, len(data))
        if kind == 0 and data:  # flip bits of one byte (tags, lengths, wire types)
            pos = min(pos, len(data) - 1)
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:  # cut short
            del data[pos:]
        elif kind == 2:  # insert random bytes
            data[pos:pos] = rng.randbytes(rng.randint(1, 6))
        elif kind == 3:  # insert a random field (any number, any wire type)
            tag = _varint(rng.randint(0, 40) << 3 | rng.randrange(8))
            data[pos:pos] = tag + rng.randbytes(rng.randint(0, 12))
        else:  # replace a byte with a continuation byte (long or endless varints)
            if data:
                data[min(pos, len(data) - 1)] = rng.choice([0x80, 0xFF])
    return bytes(data)


@pytest.mark.parametrize("seed", range(8))
def test_mutated_requests_parse_exactly_as_protobuf_parses_them(seed: int) -> None:
    rng = random.Random(seed)
    accepted = refused = 0
    for _ in range(1500):
        raw = mutate(rng, sample(rng, rng.randint(0, 3), 40))
        expected = by_protobuf(raw)
        assert by_parser(raw) == expected, raw.hex()
        accepted += expected is not None
        refused += expected is None
    assert accepted > 100 and refused > 100  # both sides of the comparison were exercised


@pytest.mark.parametrize("sizes", [[], [0], [1], [200], [70_000, 3], [1 << 20]])
def test_valid_requests_give_views_of_the_received_bytes(sizes: list[int]) -> None:
    rng = random.Random(sum(sizes))
    chunks = [(rng.randbytes(32), rng.randbytes(n)) for n in sizes]
    raw = put_chunks_request(rng.randbytes(32), chunks)
    parsed = parse_put_chunks_request(raw)
    assert by_parser(raw) == by_protobuf(raw)
    assert [(i, bytes(d)) for i, d in parsed.chunks] == chunks
    if 4 * sum(sizes) >= 3 * len(raw):  # the blobs fill the message: views into it
        assert all(isinstance(d, memoryview) and d.obj is raw for _, d in parsed.chunks)
    else:  # mostly not blobs: copies, so that a kept blob pins no more than 4/3 of its size
        assert all(type(d) is bytes for _, d in parsed.chunks)


CHUNK = b"\x0a\x02id\x12\x04data"  # Chunk{id: b"id", data: b"data"}
MALFORMED = {
    "truncated varint tag": b"\x12\x0a" + CHUNK + b"\x80",
    "truncated length": b"\x12\x86",
    "length past the end": b"\x12\x7f" + CHUNK,
    "huge length": b"\x12" + b"\xff" * 9 + b"\x01" + CHUNK,
    "overlong varint": b"\x08" + b"\xff" * 10 + b"\x01",
    "field number zero": b"\x02\x00",
    "truncated fixed64": b"\x19\x01\x02\x03",
    "end group at top level": b"\x0c",
    "unterminated group": b"\x1b\x08\x01",
    "mismatched end group": b"\x1b\x24",
    "wire type 6": b"\x1e\x00",
    "chunk length past its message": b"\x12\x06\x0a\x05abcd\x0a\x01e",
    "group too deep": b"\x1b" * 200 + b"\x1c" * 200,
    "groups too deep inside a chunk": b"\x12\xc8\x01" + b"\x2b" * 100 + b"\x2c" * 100,
    "length in 6 bytes": b"\x12\x8a\x80\x80\x80\x80\x00" + CHUNK,
    "length of 2**31": b"\x12\x80\x80\x80\x80\x08" + CHUNK,
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_refused_like_protobuf_refuses_them(raw: bytes) -> None:
    assert by_protobuf(raw) is None
    with pytest.raises(ValueError):
        parse_put_chunks_request(raw)


WELL_FORMED = {
    "unknown varint field": b"\x18\x05\x12\x0a" + CHUNK,
    "unknown field inside a chunk": b"\x12\x0f" + CHUNK + b"\x1d\x01\x02\x03\x04",
    "known field, wrong wire type": b"\x10\x07\x12\x0a" + CHUNK,
    "chunk id as a varint is skipped": b"\x12\x08\x08\x01\x12\x04data",
    "archive id twice: the last wins": b"\x0a\x01a\x12\x0a" + CHUNK + b"\x0a\x01b",
    "a group of unknown fields": b"\x1b\x08\x01\x22\x00\x1c\x12\x0a" + CHUNK,
    "an empty chunk": b"\x12\x00",
    "groups 99 deep inside a chunk": b"\x12\xc6\x01" + b"\x2b" * 99 + b"\x2c" * 99,
    "length in 5 bytes": b"\x12\x8a\x80\x80\x80\x00" + CHUNK,
}


@pytest.mark.parametrize("raw", WELL_FORMED.values(), ids=WELL_FORMED.keys())
def test_well_formed_oddities_give_protobufs_values(raw: bytes) -> None:
    expected = by_protobuf(raw)
    assert expected is not None
    assert by_parser(raw) == expected


def test_more_chunks_than_a_real_message_holds_are_refused() -> None:
    """A writer's message of tiny entries would cost the node seconds and hundreds of MiB
    to parse and hold: past MAX_PUT_CHUNKS it is refused, which protobuf would not do."""
    at_cap = b"\x12\x00" * MAX_PUT_CHUNKS
    assert len(parse_put_chunks_request(at_cap).chunks) == MAX_PUT_CHUNKS
    assert by_protobuf(at_cap + b"\x12\x00") is not None
    with pytest.raises(ValueError, match="chunks in one message"):
        parse_put_chunks_request(at_cap + b"\x12\x00")
    # Unknown fields past the cap are skipped as before: only chunks count.
    assert len(parse_put_chunks_request(at_cap + b"\x18\x01").chunks) == MAX_PUT_CHUNKS


def test_a_get_chunks_answer_of_more_entries_than_asked_for_is_misbehaviour() -> None:
    entries = b"\x12\x00" * (MAX_BATCH_IDS // 2) + b"\x0a\x00" * (MAX_BATCH_IDS // 2)
    part = part_from_bytes(entries, "n1")
    assert len(part.chunks) + len(part.missing) == MAX_BATCH_IDS
    with pytest.raises(PeerMisbehaved, match="more than 4096"):
        part_from_bytes(entries + b"\x12\x00", "n1")
