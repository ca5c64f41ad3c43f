"""The client's local id cache: which chunk id a plaintext chunk encoded to last time.

A chunk id is the hash of the *encrypted* blob, so learning it means compressing, encrypting
and hashing the chunk. The cache maps `ChunkCodec.cache_key(plaintext)` (a keyed hash) to
(chunk id, blob length), so that a push of data pushed before (the next version of the
archive) only hashes it. Each value carries a MAC under a key derived from the archive key,
bound to its cache key: an entry written, altered or moved by anyone without the archive key
(a tampered `~/.cache`) is a miss, never a hit. The cache is advisory: a hit gives the id to
record in the tree, and the chunk is still offered to the node, which says whether it holds
it; a chunk the node lacks is encoded again and must produce the cached id (else the push
stops and the cache is cleared). Losing or deleting the cache costs only time.

One RocksDB per archive under `$SAMIZDAT_CACHE_DIR` (default `$XDG_CACHE_HOME/samizdat`, or
`~/.cache/samizdat`): `<archive id hex>/ids`. Format: docs/format.md, "Client id cache".
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
from pathlib import Path

import blake3
import rocksdict as rdb

from samizdat.core.errors import StoreError
from samizdat.core.ids import ChunkId
from samizdat.core.keys import ArchiveKey
from samizdat.store import rocks

log = logging.getLogger(__name__)

FORMAT_KEY = b"\x00format"
# 3: values carry a MAC. 2: ids of version 2 (padded) blobs without a MAC. Older caches are
# emptied (format 1 names blobs a push must not reference any more; format 2 is unauthenticated).
FORMAT = b"3"
OLDER_FORMATS = (b"1", b"2")
_VALUE = struct.Struct(">32sI16s")  # chunk id, blob length, MAC
MAC_KEY_CONTEXT = b"samizdat client id cache mac v1"


def cache_root() -> Path:
    explicit = os.environ.get("SAMIZDAT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "samizdat"


class IdCache:
    """Thread-safe (RocksDB is); writes skip the WAL, since a lost entry costs only time."""

    def __init__(self, path: Path, mac_key: bytes) -> None:
        self._mac_key = mac_key
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
    def open_for(cls, key: ArchiveKey) -> IdCache | None:
        """The cache of this key's archive, or None (logged) if it cannot be opened: another
        push holds it, the directory is not writable, or its format is unknown."""
        path = cache_root() / bytes(key.archive_id).hex() / "ids"
        mac_key = blake3.blake3(MAC_KEY_CONTEXT, key=key.nonce_key).digest()
        try:
            return cls(path, mac_key)
        except Exception as e:  # rocksdict raises plain Exception
            log.warning("id cache %s not used: %s", path, e)
            return None

    def _mac(self, key: bytes, chunk_id: bytes, blob_length: int) -> bytes:
        message = key + chunk_id + blob_length.to_bytes(4, "big")
        return blake3.blake3(message, key=self._mac_key).digest(length=16)

    def get(self, key: bytes) -> tuple[ChunkId, int] | None:
        """The cached (chunk id, blob length), or None: absent, malformed or failing its MAC."""
        raw = self._db.get(key)
        if raw is None or len(raw) != _VALUE.size:
            return None
        chunk_id, length, mac = _VALUE.unpack(raw)
        if mac != self._mac(key, chunk_id, length):
            return None
        return ChunkId(chunk_id), length  # "32s": always 32 bytes

    def put(self, key: bytes, chunk_id: ChunkId, blob_length: int) -> None:
        value = _VALUE.pack(chunk_id, blob_length, self._mac(key, chunk_id, blob_length))
        self._db.put(key, value, self._nowal)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()

    def destroy(self) -> None:
        """Close and delete the cache (it holds a wrong entry)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
