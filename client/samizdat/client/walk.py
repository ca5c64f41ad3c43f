"""Walking a source directory in tree order, relative to directory descriptors.

Depth-first, siblings sorted by raw name bytes. Every lookup is relative to the open
descriptor of its parent directory (fstatat/openat with O_NOFOLLOW), so trees deeper than
PATH_MAX work and no path is resolved twice. A live tree may change under the walk: an entry
that vanishes, changes type or cannot be read is reported to `on_skip(path, reason)` and the
walk goes on with the rest (`SourceGone` is raised by the helpers that open entries later).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from samizdat.core.errors import UsageError

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in for a file must not block the push (it is refused by type).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
XATTR_NAMESPACE = "user."

SkipHandler = Callable[[bytes, str], None]


class SourceGone(Exception):
    """An entry vanished, changed type or could not be read after it was listed."""


@dataclass(frozen=True)
class SourceEntry:
    """A directory, regular file or symlink found by the walk. `parent_fd` (and `fd`, a
    directory's own descriptor) are borrowed: valid until the walk advances."""

    path: bytes  # relative, "/"-separated
    name: bytes
    parent_fd: int
    st: os.stat_result
    fd: int = -1


def shown(path: bytes) -> str:
    return path.decode("utf-8", "replace")


def describe(e: OSError) -> str:
    """Why an entry could not be saved, in words."""
    if e.errno == errno.ENOENT:
        return "it vanished while the tree was being read"
    if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EISDIR):
        return "it changed type while the tree was being read"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return e.strerror or str(e)


def _log_skip(path: bytes, reason: str) -> None:
    log.warning("not saved: %s: %s", shown(path), reason)


def _names(fd: int) -> list[bytes]:
    with os.scandir(fd) as it:
        return sorted(os.fsencode(e.name) for e in it)


def iter_source(root: str, on_skip: SkipHandler = _log_skip) -> Iterator[SourceEntry]:
    """Yield directories, regular files and symlinks under `root` (not `root` itself).

    Other file types (sockets, devices, fifos) are skipped with a logged warning; entries
    that cannot be listed or opened go to `on_skip`. Holds one descriptor per level of the
    directory being walked; all are closed when the generator ends or is closed.
    """
    try:
        # The user named ROOT: follow it if it is a symlink; never anything below it.
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"{root} does not exist") from None
    except NotADirectoryError:
        raise UsageError(f"{root} is not a directory") from None
    except OSError as e:
        raise UsageError(f"cannot read directory {root}: {e.strerror}") from None
    stack: list[tuple[int, bytes, Iterator[bytes]]] = []
    try:
        try:
            stack.append((root_fd, b"", iter(_names(root_fd))))
        except OSError as e:
            os.close(root_fd)
            raise UsageError(f"cannot read directory {root}: {e.strerror}") from None
        while stack:
            fd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            path = rel + b"/" + name if rel else name
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as e:
                on_skip(path, describe(e))
                continue
            if stat.S_ISDIR(st.st_mode):
                opened = _open_dir(fd, name, path, on_skip)
                if opened is not None:
                    child_fd, child_st, child_names = opened
                    stack.append((child_fd, path, iter(child_names)))
                    yield SourceEntry(path, name, fd, child_st, child_fd)
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                yield SourceEntry(path, name, fd, st)
            else:
                log.warning("skipping special file %s", shown(path))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _open_dir(
    parent_fd: int, name: bytes, path: bytes, on_skip: SkipHandler
) -> tuple[int, os.stat_result, list[bytes]] | None:
    """Open and list a directory; None (reported) if it cannot be."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        on_skip(path, describe(e))
        return None
    try:
        return fd, os.fstat(fd), _names(fd)
    except OSError as e:
        os.close(fd)
        on_skip(path, describe(e))
        return None


class OpenFile:
    """A listed regular file opened for reading: its descriptor and the fstat of what was
    opened. Unbuffered (reads go straight to the descriptor: no buffer object and no further
    fstat per file); `stream()` gives a file object for streaming a large one."""

    def __init__(self, fd: int, st: os.stat_result) -> None:
        self.fd, self.st = fd, st

    def read(self, limit: int = -1) -> bytes:
        """Up to `limit` bytes (all if negative) from the current position."""
        parts, total = [], 0
        while limit < 0 or total < limit:
            part = os.read(self.fd, (1 << 20) if limit < 0 else limit - total)
            if not part:
                break
            parts.append(part)
            total += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def stream(self) -> BinaryIO:
        """The file from its start as an unbuffered file object (the descriptor stays
        this object's to close)."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        return io.FileIO(self.fd, "rb", closefd=False)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_file(entry: SourceEntry) -> tuple[int, os.stat_result]:
    """Open a listed regular file for reading; return (fd, fstat of what was opened).
    Raises SourceGone if it vanished, is no longer a regular file, or cannot be read."""
    try:
        try:
            fd = os.open(entry.name, _FILE_FLAGS, dir_fd=entry.parent_fd)
        except BlockingIOError:  # a regular file under a lease (Samba, NFS): wait for it
            fd = os.open(entry.name, _FILE_FLAGS & ~os.O_NONBLOCK, dir_fd=entry.parent_fd)
    except OSError as e:
        raise SourceGone(describe(e)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SourceGone("it changed type while the tree was being read")
    return fd, st


def guard_reads(chunks: Iterator[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """Pass on the chunks read from a source file; a read error becomes SourceGone."""
    try:
        yield from chunks
    except OSError as e:
        raise SourceGone(describe(e)) from None


def read_link(entry: SourceEntry) -> bytes:
    """The target of a listed symlink; SourceGone if it is no longer one."""
    try:
        return os.readlink(entry.name, dir_fd=entry.parent_fd)
    except OSError as e:
        raise SourceGone(describe(e)) from None


def read_xattrs(fd: int) -> list[tuple[bytes, bytes]]:
    """The `user.*` extended attributes of an open file or directory, sorted by name; empty
    where the file system has none. Other namespaces are not saved (docs/format.md)."""
    try:
        names = sorted(n for n in os.listxattr(fd) if n.startswith(XATTR_NAMESPACE))
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA):
            return []
        raise SourceGone(describe(e)) from None
    out = []
    for n in names:
        try:
            out.append((os.fsencode(n), os.getxattr(fd, n)))
        except OSError as e:
            if e.errno != errno.ENODATA:  # removed since it was listed: not saved
                raise SourceGone(describe(e)) from None
    return out
