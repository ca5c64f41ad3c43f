"""Writing inside a restore destination without ever leaving it.

Every path is resolved component by component from a directory file descriptor with
O_NOFOLLOW, so neither `..`, absolute paths nor symlinks planted by earlier entries (or
already in DEST) can make a write land outside DEST.
"""

from __future__ import annotations

import errno
import os
import stat

from samizdat.core.errors import OutOfSpace, UnsafePath
from samizdat.core.tree import check_relative_path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PARTIAL_SUFFIX = b".samizdat-partial"


def _show(path: bytes) -> str:
    return path.decode("utf-8", "replace")


class SafeDest:
    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.root = root

    def close(self) -> None:
        os.close(self.root_fd)

    def open_parent(self, path: bytes, create: bool) -> tuple[int, bytes]:
        """Return (fd of the parent directory, final name) for a tree path (caller closes)."""
        parts = check_relative_path(path)
        fd = os.dup(self.root_fd)
        try:
            for part in parts[:-1]:
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o700, dir_fd=fd)
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafePath(
                            f"refusing to write {_show(path)!r}: a parent is a symlink or file"
                        ) from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def lstat(self, path: bytes) -> os.stat_result | None:
        try:
            fd, name = self.open_parent(path, create=False)
        except (FileNotFoundError, UnsafePath):
            return None
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        finally:
            os.close(fd)

    def make_dir(self, path: bytes) -> None:
        fd, name = self.open_parent(path, create=True)
        try:
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise UnsafePath(f"refusing to restore directory {_show(path)!r}: "
                                     "something else exists there") from None
        finally:
            os.close(fd)

    def make_symlink(self, path: bytes, target: bytes, overwrite: bool) -> None:
        fd, name = self.open_parent(path, create=True)
        try:
            try:
                os.symlink(target, name, dir_fd=fd)
            except FileExistsError:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=fd) == target:
                    return
                if not overwrite or stat.S_ISDIR(st.st_mode):
                    raise
                os.unlink(name, dir_fd=fd)
                os.symlink(target, name, dir_fd=fd)
        finally:
            os.close(fd)

    def open_partial(self, path: bytes) -> tuple[int, bytes, int]:
        """Create `<name>.samizdat-partial` for writing; return (parent fd, name, file fd)."""
        fd, name = self.open_parent(path, create=True)
        try:
            tmp = b"." + name + PARTIAL_SUFFIX
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            file_fd = os.open(tmp, flags, 0o600, dir_fd=fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, name, file_fd

    def commit(self, parent_fd: int, name: bytes, mode: int, mtime_ns: int) -> None:
        """Apply metadata to the partial file and rename it into place."""
        tmp = b"." + name + PARTIAL_SUFFIX
        os.chmod(tmp, mode & 0o7777, dir_fd=parent_fd)
        os.utime(tmp, ns=(mtime_ns, mtime_ns), dir_fd=parent_fd)
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePath(f"refusing to replace directory {_show(name)!r} with a file")
        except FileNotFoundError:
            pass
        os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)

    def discard(self, parent_fd: int, name: bytes) -> None:
        try:
            os.unlink(b"." + name + PARTIAL_SUFFIX, dir_fd=parent_fd)
        except FileNotFoundError:
            pass

    def set_meta(self, path: bytes, mode: int | None, mtime_ns: int) -> None:
        fd, name = self.open_parent(path, create=False)
        try:
            if mode is not None:  # directories only: never chmod through a symlink
                if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise UnsafePath(f"{_show(path)!r} is no longer a directory")
                os.chmod(name, mode & 0o7777, dir_fd=fd)
            os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OutOfSpace("the restore destination is full") from None
            raise
        view = view[n:]
