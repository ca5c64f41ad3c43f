"""Push's read-ahead: walk the source, open its entries and read its small files on a
thread of its own, ahead of the pusher (samizdat.client.ingest).

The pusher's thread cuts large files, records chunks and writes the tree; the per-entry
work (stat, open, fstat, extended attributes, the files cache lookup, reading, hashing and
cutting a small file) happens here instead, while the pusher works on earlier entries. The
pusher gets every entry in tree order, as one of:

- `Skipped`: an entry that could not be saved, and why (in its place in the walk);
- `Listed`: a directory or symlink, its entry complete;
- `Cached`: a regular file taken from the files cache (not read);
- `Read`: a small file read whole, with its content hash and chunks (immutable bytes);
- `Opened`: a large file, open, for the pusher to stream.

Memory and descriptors are bounded: entries travel in batches of up to BATCH_ENTRIES or
BATCH_BYTES of content (a batch ends after a large file), at most QUEUE batches ahead, so
at most QUEUE + 2 large files are open here at once. `close` stops the walk and closes
every file not handed out.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

import blake3

from samizdat.client.filescache import CachedFile, FilesCache, cacheable
from samizdat.client.treeentry import EntryMaker
from samizdat.client.walk import OpenFile, SourceEntry, SourceGone, describe, iter_source
from samizdat.core.chunker import Chunker
from samizdat.v1 import records_pb2 as pb

SMALL_FILE = 1 << 20  # files up to this size are read whole here; larger ones are streamed
BATCH_ENTRIES = 64
BATCH_BYTES = 1 << 20
QUEUE = 4


class Skipped(NamedTuple):
    path: bytes
    reason: str


class Listed(NamedTuple):
    entry: pb.TreeEntry


class Cached(NamedTuple):
    path: bytes
    entry: pb.TreeEntry
    hit: CachedFile


class Read(NamedTuple):
    """A small file read whole: its chunks, content hash, and the fstat to record it with in
    the files cache (None: not to be recorded)."""

    entry: pb.TreeEntry
    chunks: list[bytes]
    size: int
    content_hash: bytes
    cache_stat: os.stat_result | None


class Opened(NamedTuple):
    path: bytes
    entry: pb.TreeEntry
    file: OpenFile


Walked = Skipped | Listed | Cached | Read | Opened


class _Failed(NamedTuple):
    error: BaseException


class ReadAhead:
    """Iterate the walked entries of `source` (once); use as a context manager."""

    def __init__(
        self, source: str, entries: EntryMaker, chunker: Chunker, files: FilesCache | None
    ) -> None:
        """`chunker` is this object's own (its thread cuts small files with it); `files`
        is only looked up here (FilesCache.lookup reads the previous push's entries)."""
        self._source, self._entries, self._chunker, self._files = source, entries, chunker, files
        self._queue: queue.Queue[list[Walked | _Failed] | None] = queue.Queue(QUEUE)
        self._batch: list[Walked | _Failed] = []
        self._batch_bytes = 0
        self._current: list[Walked | _Failed] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[Walked]:
        while (batch := self._queue.get()) is not None:
            self._current = batch
            for item in batch:
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        self._current = []

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the walk and close every file not handed out (the pusher closes the ones it
        took; closing twice is harmless)."""
        self._stop.set()
        while self._thread.is_alive():
            _close_files(self._drain())
            self._thread.join(timeout=0.05)
        _close_files(self._drain() + self._current)

    def _drain(self) -> list[Walked | _Failed]:
        items: list[Walked | _Failed] = []
        while True:
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                return items
            items.extend(batch or ())

    # The read-ahead thread.

    def _run(self) -> None:
        walk = iter_source(self._source, self._skipped)
        try:
            for src in walk:
                self._add(self._walked(src))
                if self._stop.is_set():
                    break
        except BaseException as e:  # raised in the pusher's thread
            self._batch.append(_Failed(e))
        finally:
            walk.close()  # its directory descriptors
        if self._flush():
            self._put(None)

    def _skipped(self, path: bytes, reason: str) -> None:
        self._add(Skipped(path, reason))

    def _walked(self, src: SourceEntry) -> Walked:
        try:
            entry, f = self._entries.make(src)
        except SourceGone as e:
            return Skipped(src.path, str(e))
        if f is None:
            return Listed(entry)
        hit = self._files.lookup(src.path, f.st) if self._files is not None else None
        if hit is not None:
            f.close()
            return Cached(src.path, entry, hit)
        if f.st.st_size > SMALL_FILE:
            return Opened(src.path, entry, f)
        try:
            read_start = time.time_ns()
            data = f.read(SMALL_FILE + 1)
            if len(data) > SMALL_FILE:  # it grew since it was listed: the pusher streams it
                return Opened(src.path, entry, f)
            after = os.fstat(f.fd) if self._files is not None else None
        except OSError as e:
            f.close()
            return Skipped(src.path, describe(e))
        f.close()
        chunks = list(self._chunker.iter_buffer(data))
        cache_stat = f.st if after is not None and cacheable(f.st, after, read_start) else None
        return Read(entry, chunks, len(data), blake3.blake3(data).digest(), cache_stat)

    def _add(self, item: Walked | _Failed) -> None:
        self._batch.append(item)
        if isinstance(item, Read):
            self._batch_bytes += item.size
        if (
            isinstance(item, Opened)
            or len(self._batch) >= BATCH_ENTRIES
            or self._batch_bytes >= BATCH_BYTES
        ):
            self._flush()

    def _flush(self) -> bool:
        """Hand the batch on; False (its files closed) once the pusher stopped the walk."""
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if not batch:
            return True
        if self._put(batch):
            return True
        _close_files(batch)
        return False

    def _put(self, batch: list[Walked | _Failed] | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(batch, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False


def _close_files(items: list[Walked | _Failed]) -> None:
    for item in items:
        if isinstance(item, Opened):
            item.file.close()
