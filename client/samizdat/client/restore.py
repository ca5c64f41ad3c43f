"""Restore and verify: a snapshot's tree and chunks from untrusted sources into files.

Every chunk is checked against its id, AEAD tag and recorded length as it arrives
(samizdat.client.fetch) and every file against its recorded size before it gets its final
name; verify also checks each file against its recorded plaintext BLAKE3 (docs/restore.md,
"What restore checks", says why restore does not need to).

Passes over the decrypted tree (kept in a temporary file, never in memory):

1. plan: checks every entry before anything is written (paths that escape DEST, entries that
   would be written through a symlink of the tree, paths given on the command line that the
   snapshot lacks, entries in DEST that are in the way), and marks which files to fetch:
   files already in DEST with their recorded hash are skipped (resume);
2. fetch (a feeder thread) and write (this thread) run together over the same order: chunks
   of the marked files stream in through a bounded window and are appended to a partial
   file beside NAME (samizdat.client.safefs), renamed to NAME only once it is complete. An
   interrupted restore therefore never leaves a file that looks complete, and rerunning the
   same command continues where it stopped. A file with a chunk no source can serve is not
   written under its name (or, with `salvage`, kept as NAME.samizdat-salvaged: see
   samizdat.client.salvage); it goes into the damage report (samizdat.client.damage) and
   the restore goes on with the next file;
   Two lanes run this at once, each with its own fetch, window and SafeDest: a *bulk* lane
   (a thread) writes the large files (BULK_MIN bytes or more, not in a hard-link group)
   and the main lane (this thread) everything else in tree order: directories, symlinks,
   hard links and the small files. One lane alone leaves a core idle: while large files
   stream in, the writer waits for bytes; through a tree of small files and directories,
   the fetch and the node wait for the writer (file creation). A directory either lane
   needs first is created by it (mode 0700, as the main lane creates every directory); an
   error or interrupt in either lane stops both, and each removes its own partial file;
3. directory modes and times are applied last, deepest first.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import blake3

from samizdat.client.damage import (
    DamagedFile,
    DamageReport,
    LostChunk,
    lost_chunk,
    sidecar_bytes,
)
from samizdat.client.fetch import FETCH_BYTES, OrderedFetch, SourcePool, SourceReport
from samizdat.client.hardlinks import LinkGroups
from samizdat.client.safefs import (
    LinkRefused,
    SafeDest,
    SparseWriter,
    os_errors,
    partial_name,
    set_xattrs,
)
from samizdat.client.salvage import keep_salvage, remove_salvage
from samizdat.core.codec import ChunkCodec
from samizdat.core.errors import (
    ChunkNotFound,
    DestinationNotEmpty,
    IntegrityError,
    UnsafePath,
    UsageError,
)
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot
from samizdat.core.tree import iter_tree
from samizdat.v1 import records_pb2 as pb

HASH_BLOCK = 8 << 20
BULK_MIN = 1 << 20  # files this large (and not hard-linked) go to the bulk lane
MAIN_WINDOW = 4 * FETCH_BYTES  # the main lane's fetch window (small files: few bytes)


class Progress(Protocol):
    def total(self, nbytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


class _NoProgress:
    def total(self, nbytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass


@dataclass
class RestoreStats:
    files: int = 0
    skipped_files: int = 0
    skipped_bytes: int = 0
    directories: int = 0
    symlinks: int = 0
    bytes: int = 0
    planned_bytes: int = 0
    chunks_fetched: int = 0
    bytes_fetched: int = 0
    seconds: float = 0.0
    sources: list[SourceReport] = field(default_factory=list)
    damage: DamageReport = field(default_factory=DamageReport)
    xattrs_refused: int = 0  # extended attributes the destination file system refused
    links_copied: int = 0  # hard links the destination refused, restored as copies


def load_tree(
    pool: SourcePool, codec: ChunkCodec, snap: Snapshot, out: BinaryIO | None = None
) -> BinaryIO:
    """Fetch and decrypt the tree of `snap` into `out` (default: a temporary file); return it
    flushed and positioned at 0."""
    out = out if out is not None else tempfile.TemporaryFile()  # noqa: SIM115 (returned)
    ids = list(snap.record.tree_chunk_ids)
    with pool.fetch(codec, ((i, None) for i in ids)) as fetch:
        for _ in ids:
            out.write(fetch.next())
    out.flush()
    out.seek(0)
    return out


def normalize_paths(paths: list[str] | tuple[str, ...]) -> list[bytes]:
    """Command-line PATHs as tree paths ('a/b', no leading '/' or './'); refuses '..'."""
    out = []
    for text in paths:
        parts = [p for p in os.fsencode(text).split(b"/") if p not in (b"", b".")]
        if b".." in parts:
            raise UsageError(f"path {text!r}: '..' is not allowed; name a path inside the snapshot")
        if parts:
            out.append(b"/".join(parts))
        else:
            return []  # '/' or '.': the whole snapshot
    return out


def selected(entry_path: bytes, paths: list[bytes]) -> bool:
    """Is the entry one of `paths`, below one, or a directory above one (created on the way)?"""
    if not paths:
        return True
    return any(
        entry_path == p or entry_path.startswith(p + b"/") or p.startswith(entry_path + b"/")
        for p in paths
    )


def _shown(path: bytes) -> str:
    return path.decode("utf-8", "replace")


class _PositionalReader(io.RawIOBase):
    """Reads a shared file with its own position (pread), so several passes over one
    unlinked file can run at once."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pos = fd, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = os.preadv(self.fd, [buffer], self.pos)
        self.pos += n
        return n


def _reader(tree: BinaryIO) -> io.BufferedReader:
    return io.BufferedReader(_PositionalReader(tree.fileno()), 1 << 20)


class _Bitmap:
    """One bit per selected file: fetch it or not (bounded memory for millions of files)."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def set(self, i: int) -> None:
        while len(self.bits) <= i >> 3:
            self.bits.extend(bytes(max(64, len(self.bits))))
        self.bits[i >> 3] |= 1 << (i & 7)

    def __contains__(self, i: int) -> bool:
        return (i >> 3) < len(self.bits) and bool(self.bits[i >> 3] & (1 << (i & 7)))


class Restorer:
    def __init__(
        self,
        key: ArchiveKey,
        pool: SourcePool,
        snap: Snapshot,
        progress: Progress | None = None,
        *,
        salvage: bool = False,
    ) -> None:
        self.codec = ChunkCodec(key)
        self.pool, self.snap, self.salvage = pool, snap, salvage
        self.progress: Progress = progress or _NoProgress()
        self.stats = RestoreStats()

    def run(
        self, dest_dir: str | None, paths: list[bytes], overwrite: bool = False
    ) -> RestoreStats:
        """Restore (dest_dir given) or verify (dest_dir None) the selected paths."""
        started = time.monotonic()
        dest = SafeDest(dest_dir) if dest_dir is not None else None
        try:
            # The decrypted tree names every file: keep it in an unlinked temporary file, so
            # that nothing of it is left on disk even if the process is killed.
            with tempfile.TemporaryFile() as tree:
                load_tree(self.pool, self.codec, self.snap, tree)
                with _reader(tree) as plan_pass:
                    needed = self._plan(plan_pass, dest, paths, overwrite)
                self.progress.total(self.stats.planned_bytes)
                # Independent readers of the tree: each lane's feeder thread and writer.
                with _reader(tree) as fetch_pass, _reader(tree) as write_pass:
                    refs = (
                        (ref.id, ref.length)
                        for i, e in enumerate(self._files(fetch_pass, paths))
                        if i in needed and not _bulk(e)
                        for ref in e.chunks
                    )
                    bulk = _BulkLane(self, tree, dest, paths, needed)
                    ok = False
                    try:
                        bulk.start()
                        with self.pool.fetch(self.codec, refs, MAIN_WINDOW) as fetch:
                            dirs = self._write(write_pass, dest, paths, needed, fetch, bulk)
                        ok = True
                    finally:
                        bulk.finish(ok)
                    bulk.merge_into(self.stats)
                # Directory modes and times last (both lanes are done), deepest first.
                for path, mode, mtime_ns in reversed(dirs):
                    dest.set_dir_meta(path, mode, mtime_ns)  # type: ignore[union-attr]
        finally:
            if dest is not None:
                dest.close()
            self.stats.chunks_fetched = self.pool.chunks_fetched
            self.stats.bytes_fetched = self.pool.bytes_fetched
            self.stats.sources = self.pool.reports()
            self.stats.seconds = time.monotonic() - started
        return self.stats

    @staticmethod
    def _files(tree: BinaryIO, paths: list[bytes]) -> Iterator[pb.TreeEntry]:
        for entry in iter_tree(tree):
            if entry.kind == pb.ENTRY_KIND_FILE and selected(entry.path, paths):
                yield entry

    # ------------------------------------------------------------------ plan

    def _plan(
        self, tree: BinaryIO, dest: SafeDest | None, paths: list[bytes], overwrite: bool
    ) -> _Bitmap:
        """Check every entry and return the indices (among selected files) to fetch.

        A DEST that was empty when the restore began has nothing in the way and nothing to
        resume: its entries are not looked up one by one. (Something another process puts
        there meanwhile is no more a danger than after a lookup: writes never follow a
        symlink and never leave DEST, see samizdat.client.safefs.)"""
        needed = _Bitmap()
        if dest is not None and dest.started_empty:
            dest = None
        links = LinkGroups()
        symlinks: set[bytes] = set()
        found: set[bytes] = set()
        previous: list[bytes] = []
        file_index = -1
        for entry in iter_tree(tree):  # checks every path is relative and has no '..'
            path = entry.path
            parts = path.split(b"/")
            if parts <= previous:  # the order push writes, so each path comes once
                raise UnsafePath(
                    f"the tree lists {_shown(path)!r} out of order or twice (after "
                    f"{_shown(b'/'.join(previous))!r}); refusing it"
                )
            previous = parts
            for n in range(1, len(parts) if symlinks else 0):
                if b"/".join(parts[:n]) in symlinks:
                    raise UnsafePath(
                        f"refusing {_shown(path)!r}: it would be written through "
                        f"the symlink {_shown(b'/'.join(parts[:n]))!r} of the "
                        "snapshot"
                    )
            if entry.kind == pb.ENTRY_KIND_SYMLINK:
                symlinks.add(path)
            elif entry.kind not in (pb.ENTRY_KIND_FILE, pb.ENTRY_KIND_DIRECTORY):
                raise IntegrityError(f"unknown entry kind {entry.kind} in tree")
            if not selected(path, paths):
                continue
            for p in paths:
                if path == p or path.startswith(p + b"/"):
                    found.add(p)
            if entry.kind == pb.ENTRY_KIND_FILE:
                file_index += 1
                target = links.target(entry)
                if target is not None:
                    if dest is not None:
                        self._plan_link(dest, entry, target, overwrite)
                elif dest is None or self._plan_file(dest, entry, overwrite):
                    needed.set(file_index)
                    self.stats.planned_bytes += entry.size
            elif dest is not None:
                self._plan_other(dest, entry, overwrite)
        missing = [p for p in paths if p not in found]
        if missing:
            raise UsageError("not in the snapshot: " + ", ".join(_shown(p) for p in missing))
        return needed

    def _plan_file(self, dest: SafeDest, entry: pb.TreeEntry, overwrite: bool) -> bool:
        """Return whether the file must be fetched; raise if DEST has something in the way."""
        st = dest.lstat(entry.path)
        if st is None:
            return True
        if stat.S_ISDIR(st.st_mode):
            raise DestinationNotEmpty(
                f"{_shown(entry.path)!r} is a directory in the "
                "destination; the snapshot has a file there"
            )
        if (
            stat.S_ISREG(st.st_mode)
            and st.st_size == entry.size
            and self._hash_matches(dest, entry)
        ):
            self.stats.skipped_files += 1
            self.stats.skipped_bytes += entry.size
            dest.discard_partial(entry.path)
            return False
        # A file we renamed into place carries the recorded mtime; if its bytes do not
        # match (a crash before the data reached the disk), it is ours to replace.
        ours = stat.S_ISREG(st.st_mode) and st.st_mtime_ns == entry.mtime_ns
        if not overwrite and not ours:
            raise DestinationNotEmpty(
                f"{_shown(entry.path)!r} already exists in the destination with other "
                "content (use --overwrite to replace it)"
            )
        return True

    def _plan_link(
        self, dest: SafeDest, entry: pb.TreeEntry, target: bytes, overwrite: bool
    ) -> None:
        """A hard link to `target`: fine if absent or already that file, else as a file."""
        st, there = dest.lstat(entry.path), dest.lstat(target)
        if st is None:
            return
        if there is not None and (st.st_dev, st.st_ino) == (there.st_dev, there.st_ino):
            self.stats.skipped_files += 1
            self.stats.skipped_bytes += entry.size
            return
        self._plan_file(dest, entry, overwrite)

    def _plan_other(self, dest: SafeDest, entry: pb.TreeEntry, overwrite: bool) -> None:
        st = dest.lstat(entry.path)
        if st is None:
            return
        if entry.kind == pb.ENTRY_KIND_DIRECTORY:
            if not stat.S_ISDIR(st.st_mode):
                raise DestinationNotEmpty(
                    f"{_shown(entry.path)!r} exists in the destination and is not a directory"
                )
            return
        if stat.S_ISLNK(st.st_mode) and dest.read_symlink(entry.path) == entry.symlink_target:
            return
        if stat.S_ISDIR(st.st_mode) or not overwrite:
            raise DestinationNotEmpty(
                f"{_shown(entry.path)!r} already exists in the "
                "destination (use --overwrite to replace it)"
            )

    def _hash_matches(self, dest: SafeDest, entry: pb.TreeEntry) -> bool:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        with os.fdopen(dest.open_read(entry.path), "rb", buffering=0) as f, os_errors(entry.path):
            while block := f.read(HASH_BLOCK):
                hasher.update(block)
        return hasher.digest() == entry.content_hash

    # ----------------------------------------------------------------- write

    def _write(
        self,
        tree: BinaryIO,
        dest: SafeDest | None,
        paths: list[bytes],
        needed: _Bitmap,
        fetch: OrderedFetch,
        bulk: _BulkLane,
    ) -> list[tuple[bytes, int, int]]:
        """The main lane: every selected entry but the bulk lane's files, in tree order;
        returns the directories (path, mode, mtime) whose metadata is still to be set."""
        dirs: list[tuple[bytes, int, int]] = []
        links = LinkGroups()
        file_index = -1
        for entry in iter_tree(tree):
            if bulk.error is not None:
                raise bulk.error
            if not selected(entry.path, paths):
                continue
            if entry.kind == pb.ENTRY_KIND_DIRECTORY:
                self.stats.directories += 1
                if dest is not None:
                    dest.make_dir(entry.path)
                    self.stats.xattrs_refused += dest.set_dir_xattrs(entry.path, entry.xattrs)
                    dirs.append((entry.path, entry.mode, entry.mtime_ns))
            elif entry.kind == pb.ENTRY_KIND_SYMLINK:
                self.stats.symlinks += 1
                if dest is not None:
                    dest.make_symlink(entry.path, entry.symlink_target, overwrite=True)
                    dest.set_link_mtime(entry.path, entry.mtime_ns)
            else:
                file_index += 1
                target = links.target(entry)
                if target is not None:
                    if dest is None or self._link(dest, target, entry):
                        self.stats.files += 1
                elif file_index in needed and not _bulk(entry):
                    self._restore_file(entry, dest, fetch, self.stats)
        return dirs

    def _link(self, dest: SafeDest, target: bytes, entry: pb.TreeEntry) -> bool:
        """Restore a later name of a hard-link group: a link, or a copy of the first name
        where the destination cannot link. False if it was linked already."""
        try:
            return dest.link(target, entry.path)
        except LinkRefused:
            self.stats.links_copied += 1
            self.stats.xattrs_refused += dest.copy_file(
                target, entry.path, entry.mode, entry.mtime_ns, entry.xattrs
            )
            return True

    def _restore_file(
        self,
        entry: pb.TreeEntry,
        dest: SafeDest | None,
        fetch: OrderedFetch,
        stats: RestoreStats,
    ) -> None:
        """Fetch one file into its partial file and give it its name once it verifies; a
        file with lost chunks goes into the damage report instead (salvaged if asked).

        Restore checks every chunk (id, AEAD tag, recorded length) and the file's size; only
        verify (`dest` None) also hashes the whole file against its recorded content hash:
        for a restore that pass adds no check an adversary could fail (docs/restore.md,
        "What restore checks"), and it cost a BLAKE3 over every restored byte."""
        hasher = blake3.blake3() if dest is None else None
        lost: list[LostChunk] = []
        offset = 0
        handle = dest.open_partial(entry.path) if dest is not None else None
        writer = SparseWriter(handle[2], entry.path) if handle is not None else None
        try:
            for index, ref in enumerate(entry.chunks):
                try:
                    data = fetch.next()
                except (IntegrityError, ChunkNotFound) as e:
                    if isinstance(e, ChunkNotFound) and not self.pool.alive_mask:
                        # Every source was dropped: nothing more can come; stop here.
                        e.args = (f"{_shown(entry.path)}: {e}",)
                        raise
                    lost.append(lost_chunk(index, ref.id, offset, ref.length, e))
                    if writer is not None and self.salvage:  # a hole: reads as zeros
                        writer.skip(ref.length)
                    offset += ref.length
                    self.progress.advance(ref.length)
                    continue
                offset += len(data)
                if hasher is not None and not lost:
                    hasher.update(data)
                if writer is not None and (self.salvage or not lost):
                    writer.write(data)
                self.progress.advance(len(data))
            if (
                lost
                or offset != entry.size
                or (hasher is not None and hasher.digest() != entry.content_hash)
            ):
                owned, handle = handle, None
                self._damaged(entry, dest, lost, owned, offset, stats)
                return
            if handle is not None and dest is not None and writer is not None:
                writer.finish()
                stats.xattrs_refused += set_xattrs(handle[2], entry.xattrs, entry.path)
                dest.seal(handle[2], entry.mode, entry.mtime_ns, entry.path)
                # Forget the descriptor before closing it: an interrupt between the two must
                # not make the cleanup below close it again (EBADF would hide the interrupt).
                fd, handle = handle[2], (handle[0], handle[1], -1)
                with os_errors(entry.path):
                    os.close(fd)
                dest.commit(handle[0], handle[1])
                if not dest.started_empty:  # else no earlier run can have left a copy
                    remove_salvage(handle[0], handle[1], entry.path)
        except BaseException:
            if handle is not None and dest is not None:
                if handle[2] >= 0:
                    try:
                        os.close(handle[2])
                    except OSError:
                        pass  # the error on the way out is the one to report
                dest.discard(handle[0], handle[1])
            raise
        finally:
            if handle is not None:
                os.close(handle[0])
        stats.files += 1
        stats.bytes += offset

    def _damaged(
        self,
        entry: pb.TreeEntry,
        dest: SafeDest | None,
        lost: list[LostChunk],
        handle: tuple[int, bytes, int] | None,
        end: int,
        stats: RestoreStats,
    ) -> None:
        """Report a file that did not verify; keep its salvage copy if asked, else remove
        its partial file. Closes `handle`."""
        damaged = DamagedFile(entry.path, entry.size, len(entry.chunks), lost)
        if not lost:
            damaged.problem = "restored content does not match its recorded hash"
        # Salvage what verified, if anything did: a copy of nothing but zeros is no use.
        salvage = self.salvage and 0 < len(lost) < len(entry.chunks)
        if handle is not None and dest is not None:
            parent_fd, name, fd = handle
            try:
                kept = None
                with os_errors(entry.path):
                    if salvage:
                        os.ftruncate(fd, end)  # a lost last chunk: zeros up to the size
                    fd, closing = -1, fd
                    os.close(closing)
                if salvage:
                    sidecar = sidecar_bytes(self.snap.id.hex(), damaged, entry.content_hash)
                    kept = keep_salvage(parent_fd, name, partial_name(name), sidecar, entry.path)
                if kept is None:
                    dest.discard(parent_fd, name)
                else:
                    folder = entry.path.rpartition(b"/")[0]
                    damaged.salvaged_as, damaged.sidecar = (
                        (folder + b"/" if folder else b"") + n for n in kept
                    )
            finally:
                if fd >= 0:
                    os.close(fd)
                os.close(parent_fd)
        stats.damage.add(damaged)


def _bulk(entry: pb.TreeEntry) -> bool:
    """Is this selected file the bulk lane's (large, and no hard-link group's member)?"""
    return entry.size >= BULK_MIN and not entry.link_group


class _BulkLane:
    """The bulk lane (see the module docstring): a thread restoring the selected files
    `needed` marks and `_bulk` picks, in tree order, through its own fetch and SafeDest."""

    def __init__(
        self,
        restorer: Restorer,
        tree: BinaryIO,
        dest: SafeDest | None,
        paths: list[bytes],
        needed: _Bitmap,
    ) -> None:
        self.restorer, self.paths, self.needed = restorer, paths, needed
        self.stats = RestoreStats()
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.fetch_pass, self.write_pass = _reader(tree), _reader(tree)
        refs = (
            (ref.id, ref.length)
            for i, e in enumerate(Restorer._files(self.fetch_pass, paths))
            if i in needed and _bulk(e)
            for ref in e.chunks
        )
        self.refs = refs
        self.dest = dest.twin() if dest is not None else None
        self.fetch: OrderedFetch | None = None
        self.thread = threading.Thread(target=self._run, name="restore-bulk", daemon=True)

    def start(self) -> None:
        self.fetch = self.restorer.pool.fetch(self.restorer.codec, self.refs)
        self.thread.start()

    def _run(self) -> None:
        assert self.fetch is not None
        try:
            for i, entry in enumerate(Restorer._files(self.write_pass, self.paths)):
                if self.stopped.is_set():
                    return
                if i in self.needed and _bulk(entry):
                    self.restorer._restore_file(entry, self.dest, self.fetch, self.stats)
        except BaseException as e:  # handed to the main lane
            self.error = e

    def _halt(self) -> None:
        self.stopped.set()
        if self.fetch is not None:
            self.fetch.close()  # a wait in next() raises FetchClosed

    def _join(self) -> None:
        if self.thread.ident is not None:  # started
            self.thread.join()

    def finish(self, ok: bool) -> None:
        """Wait for the lane to end (stopping it first unless the main lane ended `ok`),
        then release its fetch, destination and tree readers. Raises the lane's error if
        the main lane ended ok."""
        if not ok:
            self._halt()
        try:
            self._join()
        except BaseException:  # an interrupt while waiting: stop it, then wait it out
            self._halt()
            self._join()
            raise
        finally:
            self._halt()
            # A second interrupt during the second join leaves the thread running: its
            # descriptors stay open rather than being closed under it (it is a daemon).
            if self.dest is not None and not self.thread.is_alive():
                self.dest.close()
            self.fetch_pass.close()
            self.write_pass.close()
        if ok and self.error is not None:
            raise self.error

    def merge_into(self, stats: RestoreStats) -> None:
        """Add the lane's counts and damaged files to the main lane's (damage in tree
        order)."""
        stats.files += self.stats.files
        stats.bytes += self.stats.bytes
        stats.xattrs_refused += self.stats.xattrs_refused
        if self.stats.damage.files:
            stats.damage.files.extend(self.stats.damage.files)
            stats.damage.files.sort(key=lambda d: d.path.split(b"/"))
