"""`restore --salvage-partial`: what verified of a damaged file, under a name that says so.

A file with lost chunks is never written under its own name. With --salvage-partial its
partial file (every verified chunk at its offset, each lost range a hole that reads as zeros)
is renamed to `NAME.samizdat-salvaged` (mode 0600, beside where NAME belongs), and
`NAME.samizdat-salvaged.json` lists the zero-filled ranges (docs/damage.schema.json,
`$defs/sidecar`). A later run that restores NAME completely removes both.

Names are resolved from the parent directory's descriptor (samizdat.client.safefs), so
nothing here follows a symlink either.
"""

from __future__ import annotations

import errno
import os
from contextlib import suppress

from samizdat.client.safefs import os_errors, write_all

SALVAGED_SUFFIX = b".samizdat-salvaged"
SIDECAR_SUFFIX = SALVAGED_SUFFIX + b".json"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def keep_salvage(
    parent_fd: int, name: bytes, partial: bytes, sidecar: bytes, path: bytes
) -> tuple[bytes, bytes] | None:
    """Rename `partial` (in parent_fd) to NAME.samizdat-salvaged and write the sidecar beside
    it; return both names, or None (partial removed) where NAME is too long to take the
    suffix. `path` is the tree path, for error messages."""
    salvaged, side = name + SALVAGED_SUFFIX, name + SIDECAR_SUFFIX
    tmp = b"." + side + b".tmp"
    try:
        fd = os.open(tmp, _CREATE, 0o600, dir_fd=parent_fd)
        try:
            write_all(fd, sidecar, path)
        finally:
            os.close(fd)
        os.rename(tmp, side, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        os.rename(partial, salvaged, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except BaseException as e:
        for leftover in (tmp, side, partial):
            with suppress(OSError):
                os.unlink(leftover, dir_fd=parent_fd)
        if isinstance(e, OSError):
            if e.errno == errno.ENAMETOOLONG:
                return None
            with os_errors(path):
                raise
        raise
    return salvaged, side


def remove_salvage(parent_fd: int, name: bytes) -> None:
    """Remove NAME.samizdat-salvaged and its sidecar, left by an earlier run, if any."""
    for leftover in (name + SALVAGED_SUFFIX, name + SIDECAR_SUFFIX):
        with suppress(OSError):
            os.unlink(leftover, dir_fd=parent_fd)
