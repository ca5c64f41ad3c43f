"""Pack files: the node's chunk bytes, appended once and never rewritten (docs/format.md,
"Node store", format 2).

A pack is one flush of the store's write buffer: the blobs of that flush concatenated in
chunk id order (never arrival order), with nothing else in the file; `packs/<number>.pack`,
the number 8 hex digits, counting up from 0. Where each blob lies (pack, offset, size) is kept
in the RocksDB chunk index, which is written only after the pack and its directory entry are
synced: an indexed chunk always has durable bytes, and a pack that no index entry can name
yet (numbers at or above the store's next pack number) is a crash's leftover, deleted at open.

Reads open the pack for each blob (or, through a PackReader, once per pack for a batch of
reads such as one GetChunks answer): one `open` + `pread` + `close` costs a few microseconds
against the hundreds a 256 KiB blob takes to hash, and no descriptor shared between readers
can then be closed under one of them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

SUFFIX = ".pack"


# No blob can be larger: every blob travels in one gRPC message (rpc/limits.py
# MAX_MESSAGE_BYTES, which a test keeps below this). An index entry naming a larger size is
# damage (a seized disk's lie), never a read of up to 4 GiB into memory.
MAX_BLOB_BYTES = 8 << 20


class NotAPack(FileNotFoundError):
    """A pack's name holds something other than a regular file: its bytes are lost here
    (a FileNotFoundError, so every reader treats it as a pack that is gone)."""

    def __init__(self, number: int) -> None:
        super().__init__(errno.ENOENT, "not a regular file", f"{number:08x}{SUFFIX}")


# A pack is written in system calls of up to WRITE_BYTES (or WRITE_VIEWS blobs), each
# gathering consecutive blobs (os.writev): on this ext4, one write per blob cost 1.1 CPU-s per
# GiB written for 0.5-16 KiB blobs and 0.53 for 64 KiB-1 MiB ones; gathered up to 1 MiB,
# 0.65 and 0.46; single writes of 4 MiB and more cost two to three times as much
# (bench/README.md, "2026-12-01, node write path").
WRITE_BYTES = 1 << 20
WRITE_VIEWS = 512  # under Linux's IOV_MAX (1024)


def _write_all(fd: int, views: list[memoryview], size: int) -> None:
    """Write `views` (`size` bytes in all) at the file position, whole: a short write
    (a signal, a quota) is finished view by view."""
    done = os.writev(fd, views)
    if done == size:
        return
    for view in views:
        if done >= len(view):
            done -= len(view)
            continue
        view, done = view[done:], 0
        while view:
            view = view[os.write(fd, view) :]


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PackDir:
    """The `packs` directory of one store: write whole packs, read byte ranges."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, number: int) -> Path:
        return self.root / f"{number:08x}{SUFFIX}"

    def numbers(self) -> list[int]:
        """Numbers of the packs present, ascending (names that are not packs are ignored)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            stem, dot, ext = name.partition(".")
            if dot and "." + ext == SUFFIX and len(stem) == 8:
                try:
                    out.append(int(stem, 16))
                except ValueError:
                    continue
        return sorted(out)

    def write(self, number: int, blobs: Iterable[bytes | memoryview]) -> list[int]:
        """Write a new pack holding `blobs` in the order given, fsync it and the directory
        entry; return each blob's offset. On any OSError the partial file is removed and the
        error raised (ENOSPC included)."""
        if not self.root.is_dir():
            self.root.mkdir(exist_ok=True)
            _sync_dir(self.root.parent)  # the new directory's own entry, durable
        path = self.path(number)
        offsets = []
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            offset = 0
            group: list[memoryview] = []
            grouped = 0
            for blob in blobs:
                offsets.append(offset)
                offset += len(blob)
                view = memoryview(blob).cast("B")
                if group and (grouped + len(view) > WRITE_BYTES or len(group) == WRITE_VIEWS):
                    _write_all(fd, group, grouped)
                    group, grouped = [], 0
                group.append(view)
                grouped += len(view)
            if group:
                _write_all(fd, group, grouped)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        self._sync_dir()
        return offsets

    def _sync_dir(self) -> None:
        _sync_dir(self.root)

    def read(self, number: int, offset: int, size: int) -> bytes:
        """The stored bytes at (pack, offset, size), unverified: shorter than `size` if the
        pack was cut short. Raises FileNotFoundError if the pack is gone, NotAPack if it is
        not a regular file (a FIFO, a device, a symlink in a carried copy): damage, never
        a read that blocks."""
        fd = self.open_pack(number)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def open_pack(self, number: int) -> int:
        """A read-only descriptor of a pack (the caller's to close). Raises as `read`."""
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path(number), flags)
        except OSError as e:
            if e.errno == errno.ELOOP:  # a symlink, refused by O_NOFOLLOW
                raise NotAPack(number) from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotAPack(number)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def remove_from(self, first: int) -> list[int]:
        """Delete the packs numbered `first` or higher (written by a flush that never reached
        the index: a crash's leftovers); return their numbers."""
        gone = [n for n in self.numbers() if n >= first]
        for number in gone:
            try:
                self.path(number).unlink()
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
        if gone:
            self._sync_dir()
        return gone


class PackReader:
    """Reads byte ranges of many packs for one batch of reads (a GetChunks answer), opening
    each pack once instead of once per blob while it is among the MAX_OPEN used last; `close`
    releases them. The descriptors belong to this batch alone, so nothing else can close one
    under it, and a reader that stops reading an answer holds at most MAX_OPEN of them.
    Raises as PackDir.read; a pack that failed to open is tried again on its next read."""

    MAX_OPEN = 16

    def __init__(self, packs: PackDir) -> None:
        self.packs = packs
        self._fds: OrderedDict[int, int] = OrderedDict()

    def read(self, number: int, offset: int, size: int) -> bytes:
        fd = self._fds.get(number)
        if fd is None:
            fd = self.packs.open_pack(number)
            if len(self._fds) >= self.MAX_OPEN:
                os.close(self._fds.popitem(last=False)[1])
            self._fds[number] = fd
        else:
            self._fds.move_to_end(number)
        return os.pread(fd, size, offset)

    def close(self) -> None:
        fds, self._fds = self._fds, OrderedDict()
        for fd in fds.values():
            os.close(fd)

    def __enter__(self) -> PackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
