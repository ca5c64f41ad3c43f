"""Writing inside a restore destination without ever leaving it.

Every path is resolved component by component from a directory file descriptor with
O_NOFOLLOW, so neither `..`, absolute paths nor symlinks planted by earlier entries (or
already in DEST) can make a write land outside DEST. Files are written under a short partial
name beside their final one (`partial_name`, created with O_EXCL|O_NOFOLLOW) and renamed into
place only by `commit`, so a file under its final name is always complete.

Every OS failure becomes one clear error: OutOfSpace (disk full), UnsafePath (a symlink or
file where a directory is needed), DestinationError (anything else, with the path).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress

import blake3

from samizdat.core.errors import DestinationError, OutOfSpace, UnsafePath, UsageError
from samizdat.core.tree import check_relative_path
from samizdat.v1.records_pb2 import Xattr

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PARTIAL_PREFIX = b".samizdat-partial-"


def _show(path: bytes) -> str:
    return path.decode("utf-8", "replace")


def partial_name(name: bytes) -> bytes:
    """The name a file is written under until it is complete: `.samizdat-partial-` and 32
    hex digits of BLAKE3(name), 50 bytes whatever the length of `name` (a 255-byte name
    stays restorable), and the same on every run (a rerun finds and replaces it)."""
    return PARTIAL_PREFIX + blake3.blake3(name).hexdigest(16).encode()


def os_errors(path: bytes) -> _OsErrors:
    """A context that turns OSError into the samizdat error a restorer can act on."""
    return _OsErrors(path)


class _OsErrors:
    """`os_errors`: a plain class, not a @contextmanager generator (it wraps several system
    calls of every restored file; a generator context costs twice as much)."""

    __slots__ = ("path",)

    def __init__(self, path: bytes) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        if not isinstance(error, OSError):
            return
        path = self.path
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutOfSpace(
                f"the restore destination is full (writing {_show(path)!r}); "
                "free some space and run the same command again to continue"
            ) from None
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(
                f"refusing to write {_show(path)!r}: a symlink or file is in the way"
            ) from None
        raise DestinationError(
            f"cannot write {_show(path)!r} in the destination: {error.strerror or error}"
        ) from None


class LinkRefused(Exception):
    """The destination cannot hard-link there (no hard links on its file system, the
    target's link limit reached, or an immutable target)."""


_LINK_REFUSALS = (errno.EMLINK, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV)


class SafeDest:
    """A restore destination. Not thread-safe: one writer thread uses it (another thread
    writing into the same DEST uses its own `twin`)."""

    CACHED_DIRS = 128

    def __init__(self, root: str) -> None:
        shown = os.fsencode(root)
        if os.path.exists(root) and not os.path.isdir(root):
            raise UsageError(f"destination {root} exists and is not a directory")
        with os_errors(shown):
            os.makedirs(root, exist_ok=True)
            # The user named DEST: follow it if it is a symlink; never anything below it.
            self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.root = root
        with os_errors(shown), os.scandir(self.root_fd) as listing:
            self.started_empty = next(listing, None) is None
        # Directory fds by tree path, most recently used last: consecutive entries of a
        # sorted tree share parents, so most lookups cost no system call at all. An fd keeps
        # pointing at the directory it was opened as, even if the name is later swapped.
        self._dirs: OrderedDict[bytes, int] = OrderedDict()
        # The tree path whose partial file may exist and is neither renamed into place nor
        # removed yet: set before the file is created, so that close() removes it wherever an
        # interrupt (Ctrl-C raises where it lands) stopped the code that would have.
        self._unfinished: bytes | None = None

    def twin(self) -> SafeDest:
        """Another SafeDest on the same DEST (the same root directory, however DEST's name is
        changed meanwhile) with its own descriptors, for another writer thread. Both create
        the parents they need; a directory the other one created meanwhile is used."""
        other = object.__new__(SafeDest)
        other.root = self.root
        other.root_fd = os.dup(self.root_fd)
        other.started_empty = self.started_empty
        other._dirs = OrderedDict()
        other._unfinished = None
        return other

    def close(self) -> None:
        """Remove the partial file an interrupted write left, and close every descriptor."""
        if self._unfinished is not None:
            with suppress(OSError):
                self.discard_partial(self._unfinished)
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.root_fd)

    def _parent(self, path: bytes, create: bool) -> tuple[int, bytes]:
        """Return (borrowed fd of the parent directory, final name) for a tree path; the fd
        stays valid until the next call. Raises FileNotFoundError when a parent is missing
        and `create` is false, UnsafePath when a parent is a symlink or not a directory."""
        parts = check_relative_path(path)
        depth = len(parts) - 1
        if depth == 0:
            return self.root_fd, parts[0]
        key = b"/".join(parts[:-1])
        fd = self._dirs.get(key)
        if fd is not None:
            self._dirs.move_to_end(key)
            return fd, parts[-1]
        fd, start = self.root_fd, 0
        for n in range(depth - 1, 0, -1):
            cached = self._dirs.get(b"/".join(parts[:n]))
            if cached is not None:
                fd, start = cached, n
                break
        for i in range(start, depth):
            part = parts[i]
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with os_errors(path):
                    with suppress(FileExistsError):  # made by a twin meanwhile
                        os.mkdir(part, 0o700, dir_fd=fd)
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(
                        f"refusing to write {_show(path)!r}: a parent is a symlink or file"
                    ) from None
                with os_errors(path):
                    raise
            self._dirs[b"/".join(parts[: i + 1])] = nfd
            if len(self._dirs) > self.CACHED_DIRS:
                os.close(self._dirs.popitem(last=False)[1])
            fd = nfd
        return fd, parts[-1]

    def open_parent(self, path: bytes, create: bool) -> tuple[int, bytes]:
        """Like _parent, but the returned fd is the caller's to close."""
        fd, name = self._parent(path, create)
        return os.dup(fd), name

    def lstat(self, path: bytes) -> os.stat_result | None:
        """lstat of a tree path inside DEST, None if it (or a parent) does not exist. Raises
        UnsafePath if a parent is a symlink or file."""
        try:
            fd, name = self._parent(path, create=False)
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def open_read(self, path: bytes) -> int:
        """Open an existing regular file for reading (no symlink followed)."""
        fd, name = self._parent(path, create=False)
        with os_errors(path):
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)

    def make_dir(self, path: bytes) -> None:
        fd, name = self._parent(path, create=True)
        try:
            os.mkdir(name, 0o700, dir_fd=fd)
        except FileExistsError:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePath(
                    f"refusing to restore directory {_show(path)!r}: something else exists there"
                ) from None
        except OSError:
            with os_errors(path):
                raise

    def make_symlink(self, path: bytes, target: bytes, overwrite: bool) -> None:
        fd, name = self._parent(path, create=True)
        with os_errors(path):
            try:
                os.symlink(target, name, dir_fd=fd)
            except FileExistsError:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=fd) == target:
                    return
                if not overwrite or stat.S_ISDIR(st.st_mode):
                    raise UnsafePath(
                        f"refusing to replace {_show(path)!r} in the destination with a symlink"
                    ) from None
                os.unlink(name, dir_fd=fd)
                os.symlink(target, name, dir_fd=fd)

    def read_symlink(self, path: bytes) -> bytes:
        fd, name = self._parent(path, create=False)
        with os_errors(path):
            return os.readlink(name, dir_fd=fd)

    def open_partial(self, path: bytes) -> tuple[int, bytes, int]:
        """Create the partial file of `path` for writing (replacing a stale one from an
        interrupted run); return (parent fd, name, file fd)."""
        fd, name = self.open_parent(path, create=True)
        self._unfinished = path
        try:
            tmp = partial_name(name)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with os_errors(path):
                try:
                    file_fd = os.open(tmp, flags, 0o600, dir_fd=fd)
                except FileExistsError:
                    os.unlink(tmp, dir_fd=fd)
                    file_fd = os.open(tmp, flags, 0o600, dir_fd=fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, name, file_fd

    @staticmethod
    def seal(fd: int, mode: int, mtime_ns: int, path: bytes) -> None:
        """Give a written partial file its mode and times through its own descriptor (no path
        lookup, nothing to follow), after its last write."""
        with os_errors(path):
            os.fchmod(fd, mode & 0o7777)
            os.utime(fd, ns=(mtime_ns, mtime_ns))

    def commit(self, parent_fd: int, name: bytes) -> None:
        """Rename a sealed partial file into place. A directory under the final name is never
        replaced: rename(2) refuses to put a file over one (EISDIR)."""
        try:
            os.rename(partial_name(name), name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            self._unfinished = None
        except IsADirectoryError:
            raise UnsafePath(f"refusing to replace directory {_show(name)!r} with a file") from None
        except OSError:
            with os_errors(name):
                raise

    def link(self, target: bytes, path: bytes) -> bool:
        """Make `path` a hard link to the already restored file `target` (both tree paths),
        replacing what is at `path` atomically. False if it was that file already; raises
        LinkRefused where the destination cannot link (copy it then)."""
        target_fd, target_name = self.open_parent(target, create=False)
        try:
            fd, name = self._parent(path, create=True)
            with os_errors(path):
                there = os.stat(target_name, dir_fd=target_fd, follow_symlinks=False)
                if not stat.S_ISREG(there.st_mode):
                    raise UnsafePath(f"{_show(target)!r} is no longer a regular file")
                with suppress(FileNotFoundError):
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        raise UnsafePath(f"refusing to replace directory {_show(path)!r}")
                    if (st.st_dev, st.st_ino) == (there.st_dev, there.st_ino):
                        return False
                tmp = partial_name(name)
                self._unfinished = path
                with suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=fd)
                try:
                    os.link(
                        target_name, tmp, src_dir_fd=target_fd, dst_dir_fd=fd, follow_symlinks=False
                    )
                except OSError as e:
                    if e.errno in _LINK_REFUSALS:
                        raise LinkRefused(e.strerror) from None
                    raise
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
                self._unfinished = None
        finally:
            os.close(target_fd)
        return True

    def copy_file(
        self, target: bytes, path: bytes, mode: int, mtime_ns: int, xattrs: Sequence[Xattr]
    ) -> int:
        """Restore `path` as a copy of the restored file `target` (holes kept), through a
        partial file like any restored file; return the xattrs refused (see set_xattrs)."""
        src_fd = self.open_read(target)
        try:
            parent_fd, name, fd = self.open_partial(path)
            try:
                writer = SparseWriter(fd, path)
                with os_errors(path):
                    while block := os.read(src_fd, 1 << 20):
                        writer.write(block)
                writer.finish()
                refused = set_xattrs(fd, xattrs, path)
                self.seal(fd, mode, mtime_ns, path)
                with os_errors(path):
                    fd, closing = -1, fd
                    os.close(closing)
                self.commit(parent_fd, name)
            except BaseException:
                if fd >= 0:
                    os.close(fd)
                self.discard(parent_fd, name)
                raise
            finally:
                os.close(parent_fd)
        finally:
            os.close(src_fd)
        return refused

    def _open_dir(self, path: bytes) -> int:
        """A descriptor of the restored directory `path` (the caller's to close), opened
        without following a symlink: UnsafePath if the name is a symlink or no directory."""
        fd, name = self._parent(path, create=False)
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePath(f"{_show(path)!r} is no longer a directory") from None
            with os_errors(path):
                raise

    def set_dir_xattrs(self, path: bytes, xattrs: Sequence[Xattr]) -> int:
        """Set extended attributes on a restored directory; see `set_xattrs`."""
        if not xattrs:
            return 0
        dir_fd = self._open_dir(path)
        try:
            return set_xattrs(dir_fd, xattrs, path)
        finally:
            os.close(dir_fd)

    def discard(self, parent_fd: int, name: bytes) -> None:
        with suppress(OSError):
            os.unlink(partial_name(name), dir_fd=parent_fd)
        self._unfinished = None

    def discard_partial(self, path: bytes) -> None:
        """Remove a stale partial file of a tree path, if any."""
        try:
            fd, name = self._parent(path, create=False)
        except (FileNotFoundError, UnsafePath):
            return
        self.discard(fd, name)

    def set_dir_meta(self, path: bytes, mode: int, mtime_ns: int) -> None:
        """Set a restored directory's mode and mtime through a descriptor opened with
        O_NOFOLLOW: a name swapped for a symlink by someone else writing in DEST is refused
        (UnsafePath), never followed to a file outside DEST."""
        dir_fd = self._open_dir(path)
        try:
            with os_errors(path):
                os.chmod(dir_fd, mode & 0o7777)
                os.utime(dir_fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(dir_fd)

    def set_link_mtime(self, path: bytes, mtime_ns: int) -> None:
        """Set a restored symlink's own mtime (never its target's)."""
        fd, name = self._parent(path, create=False)
        with os_errors(path):
            os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)


def set_xattrs(fd: int, xattrs: Sequence[Xattr], path: bytes) -> int:
    """Set extended attributes on an open file or directory. Returns how many the destination
    refused (a file system without xattr support, or a namespace the process may not write);
    any other failure raises as `os_errors` does."""
    refused = 0
    for x in xattrs:
        try:
            os.setxattr(fd, os.fsdecode(x.name), x.value)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                with os_errors(path):
                    raise
            refused += 1
    return refused


class SparseWriter:
    """Writes a file front to back, leaving a hole wherever a whole block-aligned block is
    zero (restic's `--sparse` does the same). Sparse source files are read as zeros on push,
    so their holes come back; other zero blocks become holes too, which reads the same."""

    BLOCK = 4096
    ZERO_BLOCK = bytes(BLOCK)

    def __init__(self, fd: int, path: bytes) -> None:
        self.fd, self.path, self.pos, self.end = fd, path, 0, 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        block, zero = self.BLOCK, self.ZERO_BLOCK
        first = -self.pos % block  # first block-aligned offset in data
        count = (len(view) - first) // block  # whole aligned blocks in data
        if count <= 0:
            self._write(view)
            return
        # A zero block starts and ends with a zero byte: only blocks whose first and last
        # bytes are both zero are compared in full (on incompressible data almost none), so
        # the common case costs two strided copies of `count` bytes, not a scan of `data`.
        stop = first + count * block
        heads = view[first:stop:block].tobytes()
        tails = view[first + block - 1 : stop : block].tobytes()
        start = 0  # data[:start] is written or skipped
        i = heads.find(0)
        while i >= 0:
            at = first + i * block
            if tails[i] or view[at : at + block] != zero:
                i = heads.find(0, i + 1)
                continue
            end, i = at + block, i + 1
            while i < count and not heads[i] and view[end : end + block] == zero:
                end, i = end + block, i + 1
            self._write(view[start:at])
            self.pos += end - at
            start = end
            i = heads.find(0, i)
        self._write(view[start:])

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if not view:
            return
        with os_errors(self.path):
            while view:
                n = os.pwrite(self.fd, view, self.pos)
                self.pos += n
                view = view[n:]
        self.end = self.pos

    def skip(self, n: int) -> None:
        """Leave `n` bytes as a hole (they read as zeros)."""
        self.pos += n

    def finish(self) -> None:
        """Give the file its full length if it ends in a hole."""
        if self.pos > self.end:
            with os_errors(self.path):
                os.ftruncate(self.fd, self.pos)
            self.end = self.pos


def write_all(fd: int, data: bytes | memoryview, path: bytes = b"") -> None:
    view = memoryview(data)
    with os_errors(path):
        while view:
            n = os.write(fd, view)
            view = view[n:]
