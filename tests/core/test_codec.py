"""Chunk codec: decode(encode(x)) == x, deterministic, and every tampering is ChunkCorrupt."""

from __future__ import annotations

import os

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.codec import HEADER_SIZE, ChunkCodec, verify_blob
from samizdat.core.errors import ChunkCorrupt
from samizdat.core.keys import ArchiveKey

KEY = ArchiveKey(signing_seed=b"\x01" * 32, master_secret=b"\x02" * 32)
OTHER = ArchiveKey(signing_seed=b"\x03" * 32, master_secret=b"\x04" * 32)
# Same signing key (same archive id), different master secret: AAD equal, keys differ.
SAME_ID_OTHER_SECRET = ArchiveKey(signing_seed=b"\x01" * 32, master_secret=b"\x05" * 32)
CODEC = ChunkCodec(KEY)

chunks = st.one_of(
    st.binary(max_size=20_000),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=16), st.integers(1, 5000)),
)


@given(chunks)
@settings(max_examples=200, deadline=None)
def test_round_trip(plaintext: bytes) -> None:
    chunk_id, blob = CODEC.encode(plaintext)
    assert chunk_id == blake3.blake3(blob).digest()
    assert CODEC.decode(chunk_id, blob) == plaintext


@given(chunks)
@settings(max_examples=100, deadline=None)
def test_deterministic_per_key_and_distinct_across_keys(plaintext: bytes) -> None:
    a = CODEC.encode(plaintext)
    assert ChunkCodec(KEY).encode(plaintext) == a
    assert ChunkCodec(OTHER).encode(plaintext)[0] != a[0]


@given(st.binary(min_size=1, max_size=5000), st.data())
@settings(max_examples=150, deadline=None)
def test_any_flipped_bit_is_detected(plaintext: bytes, data: st.DataObject) -> None:
    chunk_id, blob = CODEC.encode(plaintext)
    pos = data.draw(st.integers(0, len(blob) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(blob)
    bad[pos] ^= 1 << bit
    with pytest.raises(ChunkCorrupt, match="do not match the id"):
        CODEC.decode(chunk_id, bytes(bad))
    with pytest.raises(ChunkCorrupt):
        verify_blob(chunk_id, bytes(bad))


@given(st.binary(min_size=1, max_size=5000), st.data())
@settings(max_examples=100, deadline=None)
def test_tampered_blob_with_recomputed_id_fails_authentication(
    plaintext: bytes, data: st.DataObject
) -> None:
    # A malicious node can always make bytes match *some* id; the AEAD tag must catch it.
    _, blob = CODEC.encode(plaintext)
    pos = data.draw(st.integers(2, len(blob) - 1))  # nonce, ciphertext or tag
    bad = bytearray(blob)
    bad[pos] ^= 0x40
    forged_id = blake3.blake3(bytes(bad)).digest()
    with pytest.raises(ChunkCorrupt, match="does not decrypt"):
        CODEC.decode(forged_id, bytes(bad))


def test_header_tampering_is_refused() -> None:
    _, blob = CODEC.encode(b"hello world " * 100)  # compressible: flags = zstd
    assert blob[1] == 1
    for pos, value in ((0, 2), (1, 0), (1, 3)):
        bad = bytearray(blob)
        bad[pos] = value
        forged_id = blake3.blake3(bytes(bad)).digest()
        with pytest.raises(ChunkCorrupt):
            CODEC.decode(forged_id, bytes(bad))


def test_truncated_blob_is_refused() -> None:
    _, blob = CODEC.encode(b"x")
    for cut in (0, 1, HEADER_SIZE, len(blob) - 1):
        short = blob[:cut]
        with pytest.raises(ChunkCorrupt):
            CODEC.decode(blake3.blake3(short).digest(), short)


@pytest.mark.parametrize("other", [OTHER, SAME_ID_OTHER_SECRET], ids=["other-key", "same-id"])
def test_wrong_key_is_chunk_corrupt_naming_the_key(other: ArchiveKey) -> None:
    chunk_id, blob = CODEC.encode(os.urandom(3000))
    with pytest.raises(ChunkCorrupt, match="wrong key") as info:
        ChunkCodec(other).decode(chunk_id, blob)
    assert info.value.chunk_id_hex == chunk_id.hex()


def test_incompressible_chunks_are_stored_raw_and_compressible_ones_shrink() -> None:
    raw = os.urandom(10_000)
    _, blob = CODEC.encode(raw)
    assert blob[1] == 0 and len(blob) == HEADER_SIZE + len(raw) + 16
    _, blob = CODEC.encode(b"a" * 100_000)
    assert blob[1] == 1 and len(blob) < 1000


def test_plaintext_never_appears_in_the_blob() -> None:
    marker = b"SAMIZDAT-PLAINTEXT-MARKER-" * 50
    _, blob = CODEC.encode(marker + os.urandom(1000))
    assert b"SAMIZDAT-PLAINTEXT-MARKER" not in blob
