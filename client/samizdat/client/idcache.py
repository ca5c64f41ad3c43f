"""The client's local id cache: which chunk id a plaintext chunk encoded to last time.

A chunk id is the hash of the *encrypted* blob, so learning it means compressing, encrypting
and hashing the chunk. The cache maps `ChunkCodec.cache_key(plaintext)` (a keyed hash) to
(chunk id, blob length), so that a push of data pushed before (the next version of the
archive) only hashes it. The cache is advisory: a hit gives the id to record in the tree, and
the chunk is still offered to the node, which says whether it holds it; a chunk the node
lacks is encoded again and must produce the cached id (else the push stops and the cache is
cleared). Losing or deleting the cache costs only time.

One RocksDB per archive under `$SAMIZDAT_CACHE_DIR` (default `$XDG_CACHE_HOME/samizdat`, or
`~/.cache/samizdat`): `<archive id hex>/ids`. Format: docs/format.md, "Client id cache".
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
from pathlib import Path

import rocksdict as rdb

from samizdat.core.errors import StoreError
from samizdat.store import rocks

log = logging.getLogger(__name__)

FORMAT_KEY = b"\x00format"
# 2: ids of version 2 (padded) blobs. A cache of an older format names blobs of an older
# format, which a push must not reference any more: it is emptied.
FORMAT = b"2"
OLDER_FORMATS = (b"1",)
_VALUE = struct.Struct(">32sI")  # chunk id, blob length


def cache_root() -> Path:
    explicit = os.environ.get("SAMIZDAT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "samizdat"


class IdCache:
    """Thread-safe (RocksDB is); writes skip the WAL, since a lost entry costs only time."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        opts = rdb.Options(raw_mode=True)
        opts.create_if_missing(True)
        self.path = path
        self._closed = False
        self._db = rdb.Rdict(str(path), options=opts)
        self._nowal = rocks.write_options(wal=False)
        stamp = self._db.get(FORMAT_KEY)
        if stamp in OLDER_FORMATS:
            log.info("id cache %s has the older format %r: emptied", path, stamp)
            self._db.close()
            shutil.rmtree(path)
            path.mkdir(mode=0o700)
            self._db = rdb.Rdict(str(path), options=opts)
            stamp = None
        if stamp is None:
            self._db.put(FORMAT_KEY, FORMAT)
        elif stamp != FORMAT:
            self._db.close()
            raise StoreError(f"id cache {path} has format {stamp!r}, expected {FORMAT!r}")

    @classmethod
    def open_for(cls, archive_id: bytes) -> IdCache | None:
        """The cache of this archive, or None (logged) if it cannot be opened: another push
        holds it, the directory is not writable, or its format is unknown."""
        path = cache_root() / archive_id.hex() / "ids"
        try:
            return cls(path)
        except Exception as e:  # rocksdict raises plain Exception
            log.warning("id cache %s not used: %s", path, e)
            return None

    def get(self, key: bytes) -> tuple[bytes, int] | None:
        raw = self._db.get(key)
        if raw is None or len(raw) != _VALUE.size:
            return None
        chunk_id, length = _VALUE.unpack(raw)
        return chunk_id, length

    def put(self, key: bytes, chunk_id: bytes, blob_length: int) -> None:
        self._db.put(key, _VALUE.pack(chunk_id, blob_length), self._nowal)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()

    def destroy(self) -> None:
        """Close and delete the cache (it holds a wrong entry)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
