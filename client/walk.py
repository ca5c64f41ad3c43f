"""Walking a source directory in tree order: depth-first, siblings sorted by raw name bytes."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from samizdat.core.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceEntry:
    path: bytes  # relative, "/"-separated
    full: bytes  # absolute path on this machine
    st: os.stat_result


def iter_source(root: str) -> Iterator[SourceEntry]:
    """Yield directories, regular files and symlinks under `root` (not `root` itself).

    Other file types (sockets, devices, fifos) are skipped with a warning.
    """
    root_b = os.fsencode(os.path.abspath(root))
    try:
        if not stat.S_ISDIR(os.stat(root_b).st_mode):
            raise UsageError(f"{root} is not a directory")
    except FileNotFoundError:
        raise UsageError(f"{root} does not exist") from None

    def walk(full: bytes, rel: bytes) -> Iterator[SourceEntry]:
        try:
            with os.scandir(full) as it:
                names = sorted(e.name for e in it)
        except PermissionError:
            raise UsageError(f"cannot read directory {os.fsdecode(full)}") from None
        for name in names:
            child, child_rel = full + b"/" + name, (rel + b"/" + name) if rel else name
            st = os.lstat(child)
            if stat.S_ISDIR(st.st_mode):
                yield SourceEntry(child_rel, child, st)
                yield from walk(child, child_rel)
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                yield SourceEntry(child_rel, child, st)
            else:
                log.warning("skipping special file %s", os.fsdecode(child))

    yield from walk(root_b, b"")
