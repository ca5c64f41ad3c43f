"""The push's read-ahead thread, in process: entries arrive in the walk's order with what the
pusher needs for each kind, and stopping it midway leaves no descriptor open."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from samizdat.client.readahead import (
    BATCH_ENTRIES,
    QUEUE,
    SMALL_FILE,
    Listed,
    Opened,
    Read,
    ReadAhead,
    Skipped,
)
from samizdat.client.treeentry import EntryMaker
from samizdat.client.walk import iter_source
from samizdat.core.chunker import Chunker, ChunkerParams
from samizdat.core.errors import UsageError

PARAMS = ChunkerParams(min_size=4096, avg_size=16384, max_size=65536)


def chunker() -> Chunker:
    return Chunker(7, bytes(range(32)), PARAMS)


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_entries_arrive_in_walk_order_with_their_content(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "d").mkdir(parents=True)
    small = os.urandom(200_000)  # several chunks under PARAMS
    (root / "d" / "small").write_bytes(small)
    (root / "empty").write_bytes(b"")
    (root / "large").write_bytes(b"x" * (SMALL_FILE + 1))
    (root / "link").symlink_to("d/small")
    expected = [e.path for e in iter_source(str(root))]
    with ReadAhead(str(root), EntryMaker(), chunker(), None) as walk:
        items = list(walk)
        kinds = {item.entry.path: type(item) for item in items if not isinstance(item, Skipped)}
        assert [item.entry.path for item in items if not isinstance(item, Skipped)] == expected
        assert kinds == {
            b"d": Listed,
            b"d/small": Read,
            b"empty": Read,
            b"large": Opened,
            b"link": Listed,
        }
        read = next(i for i in items if isinstance(i, Read) and i.entry.path == b"d/small")
        assert b"".join(read.chunks) == small and len(read.chunks) > 1
        assert read.chunks == list(chunker().iter_buffer(small))  # the same cut points
        assert read.content_hash == blake3.blake3(small).digest() and read.size == len(small)
        assert read.cache_stat is None  # no files cache
        for item in items:
            if isinstance(item, Opened):
                item.file.close()


def test_stopping_midway_closes_every_open_file(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    count = (QUEUE + 2) * 2 + BATCH_ENTRIES
    for i in range(count):  # sparse large files: opened and handed on, never read here
        with open(root / f"f{i:04}", "wb") as f:
            f.truncate(SMALL_FILE + 1)
    before = open_descriptors()
    with ReadAhead(str(root), EntryMaker(), chunker(), None) as walk:
        first = next(iter(walk))
        assert isinstance(first, Opened)
        # the thread runs ahead until its queue is full: several files open at once
    assert open_descriptors() == before


def test_a_missing_source_is_raised_to_the_pusher(tmp_path: Path) -> None:
    walk = ReadAhead(str(tmp_path / "missing"), EntryMaker(), chunker(), None)
    with walk, pytest.raises(UsageError, match="does not exist"):
        list(walk)
