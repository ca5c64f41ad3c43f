"""Which restored files become hard links to an earlier one (tree version 2 `link_group`).

The first selected file of a link group is restored from its chunks; every later selected
member with the same content hash is linked to it instead of being fetched again. A member
whose content differs (the file changed between reading two of its names) is restored on its
own. Memory: one entry per link group, nothing per ordinary file.
"""

from __future__ import annotations

from samizdat.v1 import records_pb2 as pb


class LinkGroups:
    """Fed the selected file entries in tree order (once per pass over the tree)."""

    def __init__(self) -> None:
        self._first: dict[int, tuple[bytes, bytes]] = {}  # group -> (path, content hash)

    def target(self, entry: pb.TreeEntry) -> bytes | None:
        """The tree path `entry` should be a hard link to, or None if it is restored from its
        own chunks (and then becomes the target of its group's later members)."""
        if not entry.link_group:
            return None
        first = self._first.get(entry.link_group)
        if first is None:
            self._first[entry.link_group] = (entry.path, entry.content_hash)
            return None
        path, content_hash = first
        return path if content_hash == entry.content_hash else None
