"""Chunker: chunks concatenate to the input, stream and buffer cut alike, boundaries depend
on the keys, edits resynchronize, and the keyed decision is what places the cuts."""

from __future__ import annotations

import io
import random

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.chunker import KEPT_BUFFERS, Chunker, ChunkerParams
from samizdat.core.keys import ArchiveKey

SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
seeds = st.integers(min_value=0, max_value=2**64 - 1)


def chunker(seed: int, params: ChunkerParams = SMALL) -> Chunker:
    """A chunker whose cut key also comes from `seed` (tests only)."""
    return Chunker(seed, blake3.blake3(seed.to_bytes(8, "little")).digest(), params)


def cuts(chunks: list[bytes]) -> list[int]:
    out, pos = [], 0
    for c in chunks:
        pos += len(c)
        out.append(pos)
    return out


@given(data=st.binary(max_size=100_000), seed=seeds)
@settings(max_examples=60, deadline=None)
def test_chunks_concatenate_to_the_input(data: bytes, seed: int) -> None:
    chunks = list(chunker(seed).iter_buffer(data))
    assert b"".join(chunks) == data
    assert all(chunks), "no empty chunks"
    assert all(len(c) <= SMALL.max_size for c in chunks)
    assert all(len(c) >= SMALL.min_size for c in chunks[:-1])


@given(data_seed=st.integers(0, 2**32), size=st.integers(0, 200_000), seed=seeds)
@settings(max_examples=30, deadline=None)
def test_stream_and_buffer_cut_identically_and_deterministically(
    data_seed: int, size: int, seed: int
) -> None:
    data = random.Random(data_seed).randbytes(size)
    by_buffer = list(chunker(seed).iter_buffer(data))
    by_stream = list(chunker(seed).iter_chunks(io.BytesIO(data)))
    by_small_reads = list(chunker(seed).iter_chunks(io.BytesIO(data), read_size=5000))
    assert by_small_reads == by_stream
    again = list(chunker(seed).iter_buffer(data))
    assert by_buffer == by_stream == again
    assert b"".join(by_stream) == data


@given(data_seed=st.integers(0, 2**32), a=seeds, b=seeds)
@settings(max_examples=30, deadline=None)
def test_boundaries_differ_across_keys(data_seed: int, a: int, b: int) -> None:
    if a == b:
        return
    # ~50 cut points: a collision of all of them is impossible
    data = random.Random(data_seed).randbytes(200_000)
    assert cuts(list(chunker(a).iter_buffer(data))) != cuts(list(chunker(b).iter_buffer(data)))


def test_the_cut_key_alone_moves_the_cuts() -> None:
    """Same gear seed (same candidates), different cut keys: different cut points. Knowing
    or recovering the seed does not give the cuts."""
    data = random.Random(5).randbytes(400_000)
    by_key = {
        tuple(cuts(list(Chunker(7, bytes([k]) * 32, SMALL).iter_buffer(data)))) for k in range(8)
    }
    assert len(by_key) == 8


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1, 2**63, 2**63 + 5, 2**64 - 1])
def test_every_64_bit_seed_is_accepted(seed: int) -> None:
    # Regression: seeds with the top bit set (half of all archive keys) raised OverflowError
    # inside pyfastcdc, so `samizdat push` failed for those keys.
    data = random.Random(seed).randbytes(50_000)
    assert b"".join(chunker(seed).iter_buffer(data)) == data


def test_archive_keys_derive_usable_distinct_seeds() -> None:
    keys = [ArchiveKey.generate() for _ in range(16)]
    data = random.Random(3).randbytes(300_000)
    boundaries = {tuple(cuts(list(Chunker.for_archive(k, SMALL).iter_buffer(data)))) for k in keys}
    assert len(boundaries) == len(keys)


def test_edit_in_the_middle_changes_only_nearby_chunks() -> None:
    rng = random.Random(4)
    data = rng.randbytes(2_000_000)
    edited = data[:1_000_000] + b"INSERTED" + data[1_000_000:]
    default = chunker(12345, ChunkerParams())  # default sizes
    before, after = set(default.iter_buffer(data)), list(default.iter_buffer(edited))
    new = [c for c in after if c not in before]
    assert 1 <= len(new) <= 3, f"{len(new)} of {len(after)} chunks changed"


def test_sizes_stay_near_the_configured_average() -> None:
    data = random.Random(6).randbytes(8 << 20)
    sizes = [len(c) for c in chunker(99, ChunkerParams()).iter_buffer(data)]
    mean = sum(sizes[:-1]) / len(sizes[:-1])
    assert 200 << 10 < mean < 350 << 10, mean  # ~271 KiB expected; 30 chunks, wide margin


def test_one_chunker_cuts_streams_one_after_another() -> None:
    """iter_chunks reuses one read buffer: a stream left half-read must not disturb the next."""
    rng = random.Random(7)
    first, second = rng.randbytes(120_000), rng.randbytes(300_000)
    c = chunker(3)
    abandoned = c.iter_chunks(io.BytesIO(first), read_size=20_000)
    next(abandoned)
    assert list(c.iter_chunks(io.BytesIO(second), read_size=20_000)) == list(
        chunker(3).iter_buffer(second)
    )
    assert list(c.iter_chunks(io.BytesIO(first))) == list(chunker(3).iter_buffer(first))


class _ReadOnly:
    """A stream with read() only (no readinto), returning short reads."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, n: int) -> bytes:
        return self._data.read(min(n, 3000))


def test_streams_without_readinto_cut_the_same() -> None:
    data = random.Random(8).randbytes(150_000)
    got = list(chunker(4).iter_chunks(_ReadOnly(data), read_size=20_000))  # type: ignore[arg-type]
    assert got == list(chunker(4).iter_buffer(data))


def reference_cuts(seed: int, cut_key: bytes, params: ChunkerParams, data: bytes) -> list[int]:
    """The cut points of docs/format.md, "Chunking", written out plainly (one keyed BLAKE3
    per candidate, built from the key each time): what the optimized Chunker must match."""
    from pyfastcdc.cy import FastCDC

    gap = max(256, (params.avg_size - params.min_size) // 24)
    candidates = FastCDC(
        gap, min_size=64, max_size=max(1024, 4 * gap), normalized_chunking=0, seed=seed or 1
    )
    before_avg = max(1, (params.avg_size - params.min_size) // gap)
    below = (1 << 64) // (2 * before_avg)
    above = min((1 << 64) - 1, below * 4)
    out, start = [], 0
    while start < len(data):
        limit = min(len(data), start + params.max_size)
        end = limit
        first = start + params.min_size
        if first < limit:
            for piece in candidates.cut_buf(data[first:limit]):
                at = first + piece.offset + piece.length
                if at >= limit:
                    break
                value = blake3.blake3(data[max(start, at - 64) : at], key=cut_key).digest(8)
                threshold = below if at < start + params.avg_size else above
                if int.from_bytes(value, "little") < threshold:
                    end = at
                    break
        out.append(end)
        start = end
    return out


@given(data_seed=st.integers(0, 2**32), size=st.integers(0, 3_000_000), seed=seeds)
@settings(max_examples=12, deadline=None)
def test_cut_points_match_the_reference_at_default_sizes(
    data_seed: int, size: int, seed: int
) -> None:
    """Random and repetitive data (runs of a few byte values) at the default sizes, cut from
    a buffer and from a stream with odd read sizes: the reference's cut points exactly."""
    rng = random.Random(data_seed)
    noisy = rng.randbytes(size)
    repetitive = bytes(rng.choice(b"ab\x00") for _ in range(size // 64)) * 64
    key = blake3.blake3(seed.to_bytes(8, "little")).digest()
    params = ChunkerParams()
    for data in (noisy, repetitive):
        expected = reference_cuts(seed & (2**63 - 1), key, params, data)
        assert cuts(list(Chunker(seed, key, params).iter_buffer(data))) == expected
        stream = Chunker(seed, key, params).iter_chunks(io.BytesIO(data), read_size=300_001)
        assert cuts(list(stream)) == expected


def test_stream_chunks_kept_stay_intact_while_buffers_are_reused() -> None:
    """iter_chunks hands out views into read buffers it reuses: a buffer is read into again
    only once no chunk of it is referenced. Chunks dropped as they come let buffers be
    reused; every third chunk, kept, must still hold its bytes at the end."""
    data = random.Random(9).randbytes(3_000_000)
    expected = list(chunker(5).iter_buffer(data))
    c = chunker(5)
    kept = []
    for i, chunk in enumerate(c.iter_chunks(io.BytesIO(data), read_size=50_000)):
        assert chunk == expected[i]
        if i % 3 == 0:
            kept.append((i, chunk))
    assert len(kept) > 20
    assert all(chunk == expected[i] for i, chunk in kept)
    assert list(c.iter_chunks(io.BytesIO(data), read_size=50_000)) == expected  # reused again


def test_chunks_held_by_the_pipeline_cost_no_new_buffer_per_stream() -> None:
    """A push pipeline holds the chunks of several medium files at once: once every kept
    buffer is referenced, the chunker copies chunks out of one scratch buffer instead of
    allocating a new read buffer per stream; every chunk still holds its bytes."""
    rng = random.Random(11)
    files = [rng.randbytes(rng.randrange(200_000, 400_000)) for _ in range(12)]
    c = chunker(6)
    held = [(data, list(c.iter_chunks(io.BytesIO(data), read_size=100_000))) for data in files]
    views = [chunk for _, chunks in held for chunk in chunks if isinstance(chunk, memoryview)]
    assert len({id(view.obj) for view in views}) <= KEPT_BUFFERS  # no buffer per stream
    assert len(views) < sum(len(chunks) for _, chunks in held)  # the rest were copied
    for data, chunks in held:
        assert b"".join(chunks) == data
        assert [bytes(x) for x in chunks] == list(chunker(6).iter_buffer(data))


def test_the_hasher_given_sees_every_byte_yielded_in_order() -> None:
    """iter_chunks' `hasher` is updated once per read buffer, also while chunks are copies
    (every kept buffer held), and ends up with the hash of the whole stream."""
    data = random.Random(9).randbytes(900_000)
    c = chunker(9)
    for read_size in (20_000, 100_000, 2_000_000):
        hasher = blake3.blake3()
        held = list(c.iter_chunks(io.BytesIO(data), read_size=read_size, hasher=hasher))
        assert hasher.digest() == blake3.blake3(data).digest()
        assert b"".join(held) == data
