"""Chunk lists: round trip, sorted by id, padded, size limit, malformed blobs are
ChunkCorrupt, version 1 (tree order) still read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.chunklist import MAX_IDS, ChunkListBuilder, decode_chunk_list, encode_chunk_list
from samizdat.core.errors import ChunkCorrupt
from samizdat.core.ids import ChunkId
from samizdat.core.padding import padded_length
from samizdat.v1 import records_pb2 as pb

pairs = st.dictionaries(
    st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1), max_size=600
).map(lambda d: sorted(d.items()))


@given(pairs)
@settings(max_examples=100, deadline=None)
def test_round_trip_and_padded_size(entries: list[tuple[bytes, int]]) -> None:
    list_id, blob = encode_chunk_list(entries)
    assert list_id == ChunkId.of(blob)
    assert decode_chunk_list(list_id, blob) == entries
    assert padded_length(len(blob)) == len(blob)  # a bucket size, not an exact one


def test_unsorted_or_repeated_ids_are_refused_both_ways() -> None:
    a, b = bytes(32), b"\x01" * 32
    for entries in ([(b, 1), (a, 1)], [(a, 1), (a, 1)]):
        with pytest.raises(ValueError, match="ascending"):
            encode_chunk_list(entries)
        msg = pb.ChunkList(version=2, ids=[i for i, _ in entries], sizes=[1, 1])
        blob = b"SZCL" + msg.SerializeToString()
        with pytest.raises(ChunkCorrupt):
            decode_chunk_list(ChunkId.of(blob), blob)


def test_version_1_lists_in_tree_order_are_still_read() -> None:
    ids = [b"\x09" * 32, bytes(32)]  # not sorted: tree order
    blob = b"SZCL" + pb.ChunkList(version=1, ids=ids, sizes=[5, 6]).SerializeToString()
    assert decode_chunk_list(ChunkId.of(blob), blob) == [(ids[0], 5), (ids[1], 6)]


def test_builder_dedups_sorts_and_cuts_at_max_ids() -> None:
    b = ChunkListBuilder()
    ids = [(i * 7919 % (MAX_IDS + 10)).to_bytes(32, "little") for i in range(MAX_IDS + 10)]
    assert all(b.add(i, n) for n, i in enumerate(ids))
    assert not b.add(ids[0], 1) and len(b) == MAX_IDS + 10
    lists = [decode_chunk_list(*encoded) for encoded in b.finish()]
    assert [len(x) for x in lists] == [MAX_IDS, 10]
    assert [i for x in lists for i, _ in x] == sorted(ids)
    assert all(size == ids.index(i) for i, size in lists[1])
    with pytest.raises(ValueError):
        encode_chunk_list((i.to_bytes(32, "big"), 1) for i in range(MAX_IDS + 1))


@pytest.mark.parametrize(
    "blob", [b"", b"XXXX", b"SZCL\xff\xff", b"SZCL\x08\x03", b"SZCL\x08\x01\x12\x03abc\x1a\x01\x05"]
)
def test_malformed_lists_are_chunk_corrupt(blob: bytes) -> None:
    with pytest.raises(ChunkCorrupt):
        decode_chunk_list(ChunkId.of(blob), blob)
