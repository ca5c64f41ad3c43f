"""Padding: bucket sizes (Padmé above 64 KiB, powers of two below) and the 0x80 marker."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core.padding import (
    SMALL_FLOOR,
    SMALL_LIMIT,
    pad,
    padded_length,
    padme,
    unpadded_length,
)


@given(st.integers(0, 1 << 40))
@settings(max_examples=500, deadline=None)
def test_padded_length_is_a_monotone_bucket_function(n: int) -> None:
    p = padded_length(n)
    assert p >= n and padded_length(p) == p  # never shorter; a bucket maps to itself
    assert padded_length(n + 1) >= p
    if SMALL_LIMIT < n < 1 << 32:
        assert p - n < n >> 5  # Padmé: under 1/32 of the length for 2^16 < n < 2^32
    elif n <= SMALL_LIMIT:
        assert p == max(SMALL_FLOOR, p) and p & (p - 1) == 0  # a power of two


@given(st.integers(2, 1 << 40))
@settings(max_examples=500, deadline=None)
def test_padme_keeps_floor_log2_e_plus_one_bits(n: int) -> None:
    """Nikitin et al.: below its leading one, a Padmé length keeps at most floor(log2 E) + 1
    bits; the rest are zero."""
    p = padme(n)
    e = n.bit_length() - 1
    significant = p.bit_length() - (p & -p).bit_length() + 1
    assert significant <= e.bit_length() + 1
    assert padme(p) == p


def test_padme_reference_values() -> None:
    # Values from the paper's definition worked by hand: E=16 keeps 5 bits (2 KiB steps).
    assert padme(65537) == 65536 + 2048
    assert padme(256 * 1024 + 1) == 256 * 1024 + 8192
    assert (padme(1000), padme(1025), padme(1 << 20)) == (1024, 1024 + 64, 1 << 20)
    assert [padded_length(n) for n in (0, 1, 511, 512, 513, 40_000, 65536)] == [
        512,
        512,
        512,
        512,
        1024,
        65536,
        65536,
    ]


@given(st.binary(max_size=70_000))
@settings(max_examples=200, deadline=None)
def test_pad_round_trip(payload: bytes) -> None:
    padded = pad(payload)
    assert len(padded) == padded_length(len(payload) + 1)
    assert unpadded_length(padded) == len(payload)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 10, b"abc\x80\x00\x01", b"abc\x80\x00\x80\x01"])
def test_malformed_padding_is_rejected(bad: bytes) -> None:
    assert unpadded_length(bad) is None
