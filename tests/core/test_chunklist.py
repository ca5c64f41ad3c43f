"""Chunk lists: round trip, size limit, malformed blobs are ChunkCorrupt."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.chunklist import MAX_IDS, ChunkListBuilder, decode_chunk_list, encode_chunk_list
from samizdat.core.errors import ChunkCorrupt
from samizdat.core.ids import ChunkId

pairs = st.lists(
    st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1)), max_size=50
)


@given(pairs)
@settings(max_examples=100, deadline=None)
def test_round_trip(entries: list[tuple[bytes, int]]) -> None:
    list_id, blob = encode_chunk_list(entries)
    assert list_id == ChunkId.of(blob)
    assert decode_chunk_list(list_id, blob) == entries


def test_builder_dedups_and_cuts_at_max_ids() -> None:
    b = ChunkListBuilder()
    ids = [i.to_bytes(32, "big") for i in range(MAX_IDS + 10)]
    assert all(b.add(i, 1) for i in ids)
    assert not b.add(ids[0], 1)
    full = b.take_full()
    assert len(full) == 1 and len(decode_chunk_list(*full[0])) == MAX_IDS
    rest = b.take_full(final=True)
    assert [e[0] for e in decode_chunk_list(*rest[0])] == ids[MAX_IDS:]
    with pytest.raises(ValueError):
        encode_chunk_list((i.to_bytes(32, "big"), 1) for i in range(MAX_IDS + 1))


@pytest.mark.parametrize(
    "blob", [b"", b"XXXX", b"SZCL\xff\xff", b"SZCL\x08\x02", b"SZCL\x08\x01\x12\x03abc\x1a\x01\x05"]
)
def test_malformed_lists_are_chunk_corrupt(blob: bytes) -> None:
    with pytest.raises(ChunkCorrupt):
        decode_chunk_list(ChunkId.of(blob), blob)
