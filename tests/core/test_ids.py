"""Ids: 32 bytes each, parsed from 64 hex digits, named in messages by one short form."""

from __future__ import annotations

import pytest

from samizdat.core.errors import UsageError
from samizdat.core.ids import ChunkId, SnapshotId, short_hex


def test_short_form_is_the_first_twelve_hex_digits_for_raw_bytes_and_ids() -> None:
    raw = bytes(range(32))
    assert short_hex(raw) == "000102030405"
    assert ChunkId(raw).short() == short_hex(raw) == repr(ChunkId(raw))[8:-1]
    assert short_hex(b"\xab") == "ab"  # shorter than the short form: all of it


def test_ids_are_32_bytes_and_parse_from_hex() -> None:
    assert SnapshotId.parse("ab" * 32) == bytes.fromhex("ab" * 32)
    for bad in ("ab" * 31, "zz" * 32, ""):
        with pytest.raises(UsageError):
            SnapshotId.parse(bad)
    with pytest.raises(UsageError):
        ChunkId(b"\x00" * 31)
