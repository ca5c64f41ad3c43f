"""Chunk codec: decode(encode(x)) == x, deterministic, padded to a bucket size, and every
tampering is ChunkCorrupt."""

from __future__ import annotations

import os

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.codec import HEADER_SIZE, OVERHEAD, ChunkCodec, verify_blob
from samizdat.core.errors import ChunkCorrupt
from samizdat.core.keys import ArchiveKey
from samizdat.core.padding import padded_length

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


def test_a_blob_inside_a_received_message_decodes_where_it_lies() -> None:
    """Restore decodes blobs as views into the GetChunks answer that carried them."""
    plain = [b"x" * 70_000, bytes(range(256)) * 1000]
    encoded = [CODEC.encode(p) for p in plain]
    message = memoryview(b"head" + b"".join(blob for _, blob in encoded) + b"tail")
    at = 4
    for (chunk_id, blob), expected in zip(encoded, plain, strict=True):
        view = message[at : at + len(blob)]
        assert CODEC.decode(chunk_id, view) == expected
        at += len(blob)
    chunk_id, blob = encoded[0]
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    with pytest.raises(ChunkCorrupt):
        CODEC.decode(chunk_id, memoryview(bytes(flipped)))


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
    _, blob = CODEC.encode(b"hello world " * 100)  # compressible: flags = zstd (encrypted)
    assert blob[:2] == b"\x02\x00"
    for pos, value in ((0, 1), (0, 3), (1, 1), (1, 2)):
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
    raw = os.urandom(100_000)
    _, blob = CODEC.encode(raw)
    assert len(blob) == OVERHEAD + padded_length(len(raw) + 2)  # flags, payload, marker
    _, blob = CODEC.encode(b"a" * 100_000)
    assert len(blob) == OVERHEAD + 512
    assert blob[1] == 0  # whether a chunk compressed is encrypted too


@given(st.integers(0, 300_000), st.integers(0, 2**32))
@settings(max_examples=100, deadline=None)
def test_stored_size_names_only_the_bucket(length: int, seed: int) -> None:
    """Every payload length of a bucket gives the same blob size; the blob size is the
    bucket's, whatever the contents."""
    data = blake3.blake3(seed.to_bytes(8, "little")).digest(length=length)  # incompressible
    _, blob = CODEC.encode(data)
    size = len(blob) - OVERHEAD
    assert padded_length(size) == size >= length + 2
    lowest = max(0, length - 1)
    while lowest and padded_length(lowest) == size:  # the smallest length of the bucket
        lowest = lowest - 1 if lowest < 4096 else max(0, lowest - 4096)
    other = blake3.blake3(b"other").digest(length=lowest + 1)
    if padded_length(len(other) + 2) == size:
        assert len(CODEC.encode(other)[1]) == len(blob)


def test_bad_padding_is_refused_even_under_the_right_key() -> None:
    """A v2 body must end in 0x80 and zeros and carry known flags; a writer bug or forgery
    that gets that wrong (re-encrypted under the key, so the tag is valid) is ChunkCorrupt."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    _, blob = CODEC.encode(os.urandom(1000))
    nonce = blob[2:HEADER_SIZE]
    for body in (bytes(1024), b"\x00abc" + bytes(1020), b"\x04abc\x80" + bytes(1019)):
        forged = blob[:HEADER_SIZE] + AESGCM(KEY.encryption_key).encrypt(
            nonce, body, blob[:2] + bytes(KEY.archive_id)
        )
        with pytest.raises(ChunkCorrupt, match="padding"):
            CODEC.decode(blake3.blake3(forged).digest(), forged)


def test_plaintext_never_appears_in_the_blob() -> None:
    marker = b"SAMIZDAT-PLAINTEXT-MARKER-" * 50
    _, blob = CODEC.encode(marker + os.urandom(1000))
    assert b"SAMIZDAT-PLAINTEXT-MARKER" not in blob
