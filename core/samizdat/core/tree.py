"""Snapshot trees: the serialized stream of TreeEntry messages and path safety rules.

Stream layout: varint length + TreeHeader, then varint length + TreeEntry for every entry,
sorted by path with parents before children (docs/format.md, "Trees"). The stream is chunked,
compressed and encrypted like file data, so nodes cannot read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]
from google.protobuf.message import DecodeError

from samizdat.core.errors import IntegrityError, UnsafePath
from samizdat.v1 import records_pb2 as pb

TREE_VERSION = 2  # written by push; 2 added hard-link groups and xattrs (docs/format.md)
READABLE_TREE_VERSIONS = (1, 2)
MAX_MESSAGE = 64 << 20


def write_message(out: BinaryIO, msg: pb.TreeHeader | pb.TreeEntry) -> None:
    raw = msg.SerializeToString(deterministic=True)
    out.write(_VarintBytes(len(raw)))
    out.write(raw)


def _read_varint(stream: BinaryIO) -> int | None:
    """The next varint of `stream`, None at its end. Decoded here, byte by byte as read (it
    runs for every tree entry on every pass over the tree: no buffer, no protobuf call)."""
    b = stream.read(1)
    if not b:
        return None
    value = b[0]
    if value < 0x80:  # sizes below 128: most tree entries of small files
        return value
    value &= 0x7F
    shift = 7
    while True:
        b = stream.read(1)
        if not b:
            raise IntegrityError("tree stream is truncated")
        value |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return value
        shift += 7
        if shift >= 70:  # more than 10 bytes: no varint protobuf writes
            raise IntegrityError("tree stream is malformed")


def iter_tree(stream: BinaryIO) -> Iterator[pb.TreeEntry]:
    """Yield entries of a serialized tree, checking the header, count and path safety."""
    header = pb.TreeHeader()
    size = _read_varint(stream)
    if size is None or size > MAX_MESSAGE:
        raise IntegrityError("tree stream has no header")
    raw = stream.read(size)
    if len(raw) != size:
        raise IntegrityError("tree stream is truncated")
    try:
        header.ParseFromString(raw)
    except DecodeError:
        raise IntegrityError("tree header is malformed") from None
    if header.version not in READABLE_TREE_VERSIONS:
        raise IntegrityError(f"tree has unsupported version {header.version}")
    count = 0
    while (size := _read_varint(stream)) is not None:
        if size > MAX_MESSAGE:
            raise IntegrityError("tree entry is too large")
        raw = stream.read(size)
        if len(raw) != size:
            raise IntegrityError("tree stream is truncated")
        entry = pb.TreeEntry()
        try:
            entry.ParseFromString(raw)
        except DecodeError:
            raise IntegrityError("tree entry is malformed") from None
        check_relative_path(entry.path)
        count += 1
        yield entry
    if count != header.entry_count:
        raise IntegrityError(f"tree holds {count} entries, header says {header.entry_count}")


def check_relative_path(path: bytes) -> tuple[bytes, ...]:
    """Return the components of a tree path, or raise UnsafePath.

    Safe paths are relative, non-empty, "/"-separated, with no empty, "." or ".." component
    and no NUL byte.
    """
    parts = tuple(path.split(b"/"))
    # Runs for every entry on every pass over a tree: no work beyond the checks (an empty
    # path or a leading "/" gives an empty component).
    if b"\0" in path or b"\\" in path or b"" in parts or b"." in parts or b".." in parts:
        shown = path.decode("utf-8", "replace")
        raise UnsafePath(f"refusing unsafe path in tree: {shown!r}")
    return parts
