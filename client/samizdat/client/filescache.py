"""The client's files cache: which chunks an unchanged file was cut into at the last push.

A push looks each regular file up by its path (keyed hash of source root and relative path)
and, when its size, mtime, ctime and inode are those recorded, takes its content hash and
chunk references from the cache instead of reading it (restic's parent-snapshot check and
borg's files cache). Nothing here is trusted blindly (docs/push.md, "Files cache"):

- the file is authenticated as a whole with a key derived from the archive key and names its
  archive id and chunker parameters: a tampered file, or one of another archive, key or
  chunking, is ignored as a whole (the push reads every file);
- an entry is recorded only for a file whose fstat did not change while it was read and
  whose ctime is at least RACY_NS older than the start of the read, so a later change, even
  within the file system's timestamp granularity, moves its ctime (which no user can set);
- every chunk of a cache hit is still offered to the node; one the node lacks is read again
  from the file at its recorded offset and must encode to the recorded id, or the push stops
  with StaleFilesCache and the cache is deleted.

One file per archive: `$SAMIZDAT_CACHE_DIR/<archive id hex>/files`, rewritten (temporary file,
then rename) after each push that stored its snapshot; it holds the files of that push only.
Format: docs/format.md, "Client files cache".
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import blake3

from samizdat.client.idcache import cache_root
from samizdat.core.chunker import ChunkerParams
from samizdat.core.ids import ChunkId
from samizdat.core.keys import ArchiveKey

log = logging.getLogger(__name__)

MAGIC = b"SZFC"
VERSION = 1
PATH_KEY_CONTEXT = b"samizdat client files cache path v1"
MAC_KEY_CONTEXT = b"samizdat client files cache mac v1"
# A file whose ctime is this close to the start of its read is not recorded: a change made
# right after the read could leave every timestamp as it was (coarse clocks, 2 s on FAT).
RACY_NS = 2_000_000_000
_HEADER = struct.Struct(">4sB32sIII")  # magic, version, archive id, min/avg/max chunk size
_ENTRY = struct.Struct(">32sQqqQ32sI")  # path key, size, mtime, ctime, inode, hash, chunks
_REF = struct.Struct(">32sII")  # chunk id, plaintext length, blob length
_MAC_SIZE = 32


class CachedRef(NamedTuple):
    chunk_id: ChunkId
    length: int  # plaintext bytes
    blob_length: int


class CachedFile(NamedTuple):
    content_hash: bytes
    refs: list[CachedRef]
    record: bytes  # the entry as stored (kept as it is by `keep`)


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What must be unchanged for a file to be taken from the cache."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def cacheable(before: os.stat_result, after: os.stat_result, read_start_ns: int) -> bool:
    """May a file read between these two fstat calls be recorded? Only if nothing changed
    while it was read and its ctime is clearly older than the read (see RACY_NS)."""
    return stat_key(before) == stat_key(after) and before.st_ctime_ns < read_start_ns - RACY_NS


class FilesCache:
    """The previous push's entries (read-only) and this push's (written to a temporary file,
    published by `commit`). Used by one thread."""

    def __init__(self, path: Path, key: ArchiveKey, params: ChunkerParams, root: bytes) -> None:
        self.path = path
        self._path_key = blake3.blake3(PATH_KEY_CONTEXT, key=key.nonce_key).digest()
        self._mac_key = blake3.blake3(MAC_KEY_CONTEXT, key=key.nonce_key).digest()
        self._root = root + b"\0"
        self._header = _HEADER.pack(
            MAGIC, VERSION, bytes(key.archive_id), params.min_size, params.avg_size, params.max_size
        )
        self._old = b""
        self._index: dict[bytes, int] = {}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._new = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept until commit/close)
            dir=path.parent, prefix=".files-", delete=False
        )
        self._mac = blake3.blake3(key=self._mac_key)
        self._write(self._header)

    @classmethod
    def open_for(
        cls, key: ArchiveKey, params: ChunkerParams, source: str, read_old: bool = True
    ) -> FilesCache | None:
        """The files cache of this archive for pushing `source`, or None (logged) if its
        directory cannot be written. With `read_old` false (`push --force-rehash`) nothing
        is looked up, but this push's entries are still recorded."""
        path = cache_root() / bytes(key.archive_id).hex() / "files"
        root = os.fsencode(os.path.realpath(source))
        try:
            cache = cls(path, key, params, root)
        except OSError as e:
            log.warning("files cache %s not used: %s", path, e)
            return None
        if read_old:
            cache._load()
        return cache

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            log.warning("files cache %s not read: %s", self.path, e)
            return
        body, mac = data[:-_MAC_SIZE], data[-_MAC_SIZE:]
        if (
            len(data) < _HEADER.size + _MAC_SIZE
            or blake3.blake3(body, key=self._mac_key).digest() != mac
            or not body.startswith(self._header)
        ):
            log.warning("files cache %s is not this archive's or was altered: ignored", self.path)
            return
        index: dict[bytes, int] = {}
        pos = _HEADER.size
        try:
            while pos < len(body):
                index[body[pos : pos + 32]] = pos
                count = _ENTRY.unpack_from(body, pos)[6]
                pos += _ENTRY.size + count * _REF.size
        except struct.error:
            pos = -1
        if pos != len(body):  # authenticated, so written by a faulty version: ignore
            log.warning("files cache %s is malformed: ignored", self.path)
            return
        self._old, self._index = body, index

    def _key(self, path: bytes) -> bytes:
        return blake3.blake3(self._root + path, key=self._path_key).digest()

    def lookup(self, path: bytes, st: os.stat_result) -> CachedFile | None:
        """The recorded content of the file at `path` (relative to the source) if it is
        recorded with the fstat `st` of the file now open."""
        pos = self._index.get(self._key(path))
        if pos is None:
            return None
        _, size, mtime, ctime, ino, content_hash, count = _ENTRY.unpack_from(self._old, pos)
        if (size, mtime, ctime, ino) != stat_key(st):
            return None
        start, pos = pos, pos + _ENTRY.size
        refs = []
        for i in range(count):  # "32s": every id read is 32 bytes
            chunk_id, length, blob_length = _REF.unpack_from(self._old, pos + i * _REF.size)
            refs.append(CachedRef(ChunkId(chunk_id), length, blob_length))
        return CachedFile(content_hash, refs, self._old[start : pos + count * _REF.size])

    def keep(self, hit: CachedFile) -> None:
        """Record a file of this push taken from the cache, as it was recorded."""
        self._write(hit.record)

    def record(
        self, path: bytes, st: os.stat_result, content_hash: bytes, refs: Sequence[CachedRef]
    ) -> None:
        """Record a file this push read, with the fstat it was read with (the caller has
        checked `cacheable`)."""
        size, mtime, ctime, ino = stat_key(st)
        parts = [_ENTRY.pack(self._key(path), size, mtime, ctime, ino, content_hash, len(refs))]
        parts.extend(_REF.pack(*r) for r in refs)
        self._write(b"".join(parts))

    def _write(self, data: bytes) -> None:
        self._new.write(data)
        self._mac.update(data)

    def commit(self) -> None:
        """Publish this push's entries as the cache of the next push (after its snapshot is
        stored)."""
        self._new.write(self._mac.digest())
        self._new.flush()
        self._new.close()
        os.replace(self._new.name, self.path)

    def close(self) -> None:
        """Drop this push's entries unless committed."""
        if not self._new.closed:
            self._new.close()
            os.unlink(self._new.name)

    def destroy(self) -> None:
        """Delete the cache (a recorded chunk is no longer in its file)."""
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
