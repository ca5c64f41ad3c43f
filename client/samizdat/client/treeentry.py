"""Turning walked source entries into tree entries: kind, metadata, symlink target, `user.*`
extended attributes and hard-link groups (docs/format.md, "Trees"). File contents are the
pusher's (samizdat.client.ingest); this module only opens the file it will read."""

from __future__ import annotations

import os
import stat

from samizdat.client.walk import (
    OpenFile,
    SourceEntry,
    SourceGone,
    open_file,
    read_link,
    read_xattrs,
)
from samizdat.v1 import records_pb2 as pb


class EntryMaker:
    """Makes the TreeEntry of each walked entry of one push. Keeps one small record per file
    with more than one link (to group hard links); nothing per ordinary file."""

    def __init__(self) -> None:
        self._groups: dict[tuple[int, int], int] = {}

    def make(self, src: SourceEntry) -> tuple[pb.TreeEntry, OpenFile | None]:
        """Return the entry (without size, hash and chunks for a file) and, for a regular
        file, the file opened for reading (the caller's to close). Raises SourceGone when the
        entry can no longer be read as it was listed."""
        st = src.st
        if stat.S_ISDIR(st.st_mode):
            entry = self._entry(src, st, pb.ENTRY_KIND_DIRECTORY)
            self._add_xattrs(entry, src.fd)
            return entry, None
        if stat.S_ISLNK(st.st_mode):
            entry = self._entry(src, st, pb.ENTRY_KIND_SYMLINK)
            entry.symlink_target = read_link(src)
            return entry, None
        fd, st = open_file(src)  # the metadata of what is read, not of what was listed
        try:
            entry = self._entry(src, st, pb.ENTRY_KIND_FILE)
            self._add_xattrs(entry, fd)
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                entry.link_group = self._groups.setdefault(key, len(self._groups) + 1)
            return entry, OpenFile(fd, st)
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _entry(src: SourceEntry, st: os.stat_result, kind: pb.EntryKind) -> pb.TreeEntry:
        return pb.TreeEntry(
            path=src.path, kind=kind, mode=stat.S_IMODE(st.st_mode), mtime_ns=st.st_mtime_ns
        )

    @staticmethod
    def _add_xattrs(entry: pb.TreeEntry, fd: int) -> None:
        for name, value in read_xattrs(fd):
            entry.xattrs.append(pb.Xattr(name=name, value=value))


__all__ = ["EntryMaker", "SourceGone"]
