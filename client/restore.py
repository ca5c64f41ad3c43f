"""Restore and verify: stream a snapshot's tree and chunks from nodes into files, checking
every chunk id, AEAD tag and whole-file BLAKE3 before a file is given its final name.

A file is written as `.NAME.samizdat-partial` and renamed only once its plaintext hash
matches the tree, so an interrupted restore never leaves a file that looks complete; a rerun
skips files that already match their recorded hash (resume).
"""

from __future__ import annotations

import os
import queue
import stat
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import blake3

from samizdat.client.safefs import SafeDest, write_all
from samizdat.client.sources import NodeSources
from samizdat.core.codec import ChunkCodec
from samizdat.core.errors import ChunkNotFound, DestinationNotEmpty, IntegrityError
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot
from samizdat.core.tree import iter_tree
from samizdat.v1 import records_pb2 as pb

FETCH_IDS = 64
FETCH_BYTES = 16 << 20
DECODE_WINDOW = 48

Progress = Callable[[int], None]


@dataclass
class RestoreStats:
    files: int = 0
    skipped_files: int = 0
    directories: int = 0
    symlinks: int = 0
    bytes: int = 0
    chunks_fetched: int = 0


def load_tree(sources: NodeSources, codec: ChunkCodec, snap: Snapshot,
              out: BinaryIO | None = None) -> BinaryIO:
    """Fetch and decrypt the tree of `snap` into `out` (default: a temporary file); return it
    flushed and positioned at 0."""
    out = out if out is not None else tempfile.TemporaryFile()
    ids = list(snap.record.tree_chunk_ids)
    for chunk_id, blob in sources.iter_blobs(ids):
        out.write(codec.decode(chunk_id, blob))
    out.flush()
    out.seek(0)
    return out


def _selected(entry: pb.TreeEntry, paths: list[bytes]) -> bool:
    if not paths:
        return True
    return any(entry.path == p or entry.path.startswith(p + b"/") or p.startswith(entry.path + b"/")
               for p in paths)


class _Fetcher:
    """Background thread: fetches the chunks of the given files in order and decodes them in
    a pool; the consumer takes decoded plaintexts in the same order."""

    def __init__(self, sources: NodeSources, codec: ChunkCodec,
                 refs: Iterator[pb.ChunkRef]) -> None:
        self.sources, self.codec, self.refs = sources, codec, refs
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="decode")
        self.out: queue.Queue[Future[bytes] | BaseException | None] = queue.Queue(DECODE_WINDOW)
        self.thread = threading.Thread(target=self._run, name="fetch", daemon=True)
        self.stop = threading.Event()
        self.thread.start()

    def _fetch(self, ids: list[bytes]) -> None:
        for chunk_id, blob in self.sources.iter_blobs(ids):
            if self.stop.is_set():
                return
            self.out.put(self.pool.submit(self.codec.decode, chunk_id, blob))

    def _run(self) -> None:
        try:
            batch: list[bytes] = []
            size = 0
            for ref in self.refs:
                batch.append(ref.id)
                size += ref.length
                if len(batch) >= FETCH_IDS or size >= FETCH_BYTES:
                    self._fetch(batch)
                    batch, size = [], 0
                if self.stop.is_set():
                    return
            self._fetch(batch)
            self.out.put(None)
        except BaseException as e:
            self.out.put(e)

    def next(self) -> bytes:
        item = self.out.get()
        if isinstance(item, BaseException):
            raise item
        if item is None:
            raise IntegrityError("chunk stream ended early")
        return item.result()

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.out.get(timeout=0.1)
            except queue.Empty:
                pass
        self.pool.shutdown(wait=True, cancel_futures=True)


class Restorer:
    def __init__(self, key: ArchiveKey, sources: NodeSources, snap: Snapshot,
                 progress: Progress | None = None) -> None:
        self.codec = ChunkCodec(key)
        self.sources, self.snap = sources, snap
        self.progress = progress or (lambda n: None)
        self.stats = RestoreStats()

    def _file_is_complete(self, dest: SafeDest, entry: pb.TreeEntry) -> bool:
        st = dest.lstat(entry.path)
        if st is None:
            return False
        if not stat.S_ISREG(st.st_mode):
            raise DestinationNotEmpty(f"{entry.path.decode(errors='replace')!r} exists in the "
                                      "destination and is not a regular file")
        if st.st_size != entry.size:
            return False
        fd, name = dest.open_parent(entry.path, create=False)
        try:
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)
        hasher = blake3.blake3()
        with os.fdopen(file_fd, "rb") as f:
            while block := f.read(8 << 20):
                hasher.update(block)
        return hasher.digest() == entry.content_hash

    def run(self, dest_dir: str | None, paths: list[bytes], overwrite: bool = False
            ) -> RestoreStats:
        """Restore (dest_dir given) or verify (dest_dir None) the selected paths."""
        dest = SafeDest(dest_dir) if dest_dir is not None else None
        try:
            with tempfile.NamedTemporaryFile(prefix="samizdat-tree-") as tree:
                load_tree(self.sources, self.codec, self.snap, tree)
                with open(tree.name, "rb") as plan_pass:
                    needed = self._plan(plan_pass, dest, paths, overwrite)
                # Two independent readers of the tree: the fetch thread and the writer.
                with open(tree.name, "rb") as fetch_pass, open(tree.name, "rb") as write_pass:
                    refs = (ref for i, e in enumerate(self._files(fetch_pass, paths))
                            if i in needed for ref in e.chunks)
                    fetcher = _Fetcher(self.sources, self.codec, refs)
                    try:
                        self._write(write_pass, dest, paths, needed, fetcher, overwrite)
                    finally:
                        fetcher.close()
        finally:
            if dest is not None:
                dest.close()
        self.stats.chunks_fetched = self.sources.fetched
        return self.stats

    @staticmethod
    def _files(tree: BinaryIO, paths: list[bytes]) -> Iterator[pb.TreeEntry]:
        for entry in iter_tree(tree):
            if entry.kind == pb.ENTRY_KIND_FILE and _selected(entry, paths):
                yield entry

    def _plan(self, tree: BinaryIO, dest: SafeDest | None, paths: list[bytes],
              overwrite: bool) -> set[int]:
        """Indices of selected files to fetch (resume: skip files already complete)."""
        needed: set[int] = set()
        for i, entry in enumerate(self._files(tree, paths)):
            if dest is not None and self._file_is_complete(dest, entry):
                self.stats.skipped_files += 1
                continue
            if dest is not None and not overwrite:
                st = dest.lstat(entry.path)
                if st is not None:
                    raise DestinationNotEmpty(
                        f"{entry.path.decode(errors='replace')!r} already exists in the "
                        "destination with other content (use --overwrite to replace it)")
            needed.add(i)
        return needed

    def _write(self, tree: BinaryIO, dest: SafeDest | None, paths: list[bytes],
               needed: set[int], fetcher: _Fetcher, overwrite: bool) -> None:
        dirs: list[pb.TreeEntry] = []
        file_index = -1
        for entry in iter_tree(tree):
            if not _selected(entry, paths):
                continue
            if entry.kind == pb.ENTRY_KIND_DIRECTORY:
                self.stats.directories += 1
                if dest is not None:
                    dest.make_dir(entry.path)
                    dirs.append(entry)
            elif entry.kind == pb.ENTRY_KIND_SYMLINK:
                self.stats.symlinks += 1
                if dest is not None:
                    dest.make_symlink(entry.path, entry.symlink_target, overwrite)
                    dest.set_meta(entry.path, None, entry.mtime_ns)
            elif entry.kind == pb.ENTRY_KIND_FILE:
                file_index += 1
                if file_index not in needed:
                    continue
                self._restore_file(entry, dest, fetcher)
            else:
                raise IntegrityError(f"unknown entry kind {entry.kind} in tree")
        if dest is not None:
            for entry in reversed(dirs):
                dest.set_meta(entry.path, entry.mode, entry.mtime_ns)

    def _restore_file(self, entry: pb.TreeEntry, dest: SafeDest | None,
                      fetcher: _Fetcher) -> None:
        shown = entry.path.decode("utf-8", "replace")
        hasher = blake3.blake3()
        size = 0
        handle = dest.open_partial(entry.path) if dest is not None else None
        try:
            for ref in entry.chunks:
                try:
                    data = fetcher.next()
                except (IntegrityError, ChunkNotFound) as e:
                    raise IntegrityError(f"{shown}: {e}") from e
                if len(data) != ref.length:
                    raise IntegrityError(f"{shown}: chunk {ref.id.hex()[:12]} has wrong length")
                hasher.update(data)
                size += len(data)
                if handle is not None:
                    write_all(handle[2], data)
                self.progress(len(data))
            if size != entry.size or hasher.digest() != entry.content_hash:
                raise IntegrityError(f"{shown}: restored content does not match its recorded "
                                     "hash")
            if handle is not None:
                os.close(handle[2])
                handle = (handle[0], handle[1], -1)
                dest.commit(handle[0], handle[1], entry.mode, entry.mtime_ns)  # type: ignore[union-attr]
        except BaseException:
            if handle is not None:
                if handle[2] >= 0:
                    os.close(handle[2])
                dest.discard(handle[0], handle[1])  # type: ignore[union-attr]
            raise
        finally:
            if handle is not None:
                os.close(handle[0])
        self.stats.files += 1
        self.stats.bytes += size
