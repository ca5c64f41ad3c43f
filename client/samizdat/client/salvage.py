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
import json
import os
from contextlib import suppress

from samizdat.client.damage import SIDECAR_FORMAT, shown_path
from samizdat.client.safefs import os_errors, write_all

SALVAGED_SUFFIX = b".samizdat-salvaged"
SIDECAR_SUFFIX = SALVAGED_SUFFIX + b".json"
MAX_SIDECAR = 128 << 20  # one small entry per lost chunk; a larger file is not ours
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def keep_salvage(
    parent_fd: int, name: bytes, partial: bytes, sidecar: bytes, path: bytes
) -> tuple[bytes, bytes] | None:
    """Rename `partial` (in parent_fd) to NAME.samizdat-salvaged and write the sidecar beside
    it; return both names. Return None (partial removed) where NAME is too long to take the
    suffix, or where something that is not an earlier salvage copy of this same file already
    has one of the two names (the snapshot itself may hold such a file: it is never
    replaced). `path` is the tree path."""
    salvaged, side = name + SALVAGED_SUFFIX, name + SIDECAR_SUFFIX
    tmp = b"." + side + b".tmp"
    taken = _exists(parent_fd, salvaged, path) or _exists(parent_fd, side, path)
    if taken and not _ours(parent_fd, name, path):
        with suppress(OSError):
            os.unlink(partial, dir_fd=parent_fd)
        return None
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


def remove_salvage(parent_fd: int, name: bytes, path: bytes) -> None:
    """Remove NAME.samizdat-salvaged and its sidecar if an earlier run left them for this
    file (`path`); files of those names that are not such copies are left alone."""
    if _ours(parent_fd, name, path):
        for leftover in (name + SALVAGED_SUFFIX, name + SIDECAR_SUFFIX):
            with suppress(OSError):
                os.unlink(leftover, dir_fd=parent_fd)


def _exists(parent_fd: int, name: bytes, path: bytes) -> bool:
    try:
        os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return False
        with os_errors(path):
            raise
    return True


def _ours(parent_fd: int, name: bytes, path: bytes) -> bool:
    """Is NAME.samizdat-salvaged.json (no symlink followed) the sidecar of a salvage copy of
    the file at tree path `path`?"""
    try:
        fd = os.open(
            name + SIDECAR_SUFFIX, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd
        )
    except OSError:
        return False
    try:
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_SIDECAR + 1)
        body = json.loads(raw) if len(raw) <= MAX_SIDECAR else None
    except (OSError, ValueError):
        return False
    return (
        isinstance(body, dict)
        and body.get("format") == SIDECAR_FORMAT
        and body.get("path") == shown_path(path)
    )
