"""SparseWriter: the bytes read back are exactly the bytes written, whatever the chunking and
zero runs, and whole aligned zero blocks take no disk space."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from samizdat.client.safefs import SparseWriter

BLOCK = SparseWriter.BLOCK

segments = st.lists(
    st.tuples(st.booleans(), st.integers(1, 3 * BLOCK)), min_size=0, max_size=12
).map(lambda segs: b"".join(bytes(n) if zero else b"\x5a" * n for zero, n in segs))


@given(data=segments, cuts=st.lists(st.integers(0, 40_000), max_size=6))
def test_content_round_trips_whatever_the_chunking(data: bytes, cuts: list[int]) -> None:
    with tempfile.TemporaryFile() as f:
        writer = SparseWriter(f.fileno(), b"f")
        start = 0
        for cut in [*sorted(c for c in cuts if c < len(data)), len(data)]:
            writer.write(data[start:cut])
            start = max(start, cut)
        writer.finish()
        assert os.fstat(f.fileno()).st_size == len(data)
        assert os.pread(f.fileno(), len(data) + 1, 0) == data


def test_aligned_zero_blocks_become_holes(tmp_path: Path) -> None:
    data = b"head" + bytes(4 << 20) + b"tail" + bytes(4 << 20)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        writer = SparseWriter(fd, b"f")
        for i in range(0, len(data), 1 << 20):
            writer.write(data[i : i + (1 << 20)])
        writer.finish()
        st_ = os.fstat(fd)
        assert st_.st_size == len(data)
        assert st_.st_blocks * 512 <= 64 << 10, f"{st_.st_blocks * 512} bytes allocated"
        assert os.pread(fd, len(data), 0) == data
    finally:
        os.close(fd)


def test_a_block_with_zero_ends_but_data_inside_is_written(tmp_path: Path) -> None:
    edged = b"\0" + b"\x5a" * (BLOCK - 2) + b"\0"  # first and last byte zero, not a zero block
    data = edged * 3 + bytes(BLOCK) + edged + bytes(BLOCK)
    with open(tmp_path / "f", "w+b") as f:
        writer = SparseWriter(f.fileno(), b"f")
        writer.write(data)
        writer.finish()
        assert os.pread(f.fileno(), len(data) + 1, 0) == data
        assert os.fstat(f.fileno()).st_blocks * 512 <= 4 * BLOCK + (64 << 10)
