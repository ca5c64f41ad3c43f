"""Chunk codec: plaintext chunk <-> stored blob. Invariant: compress, then pad, then encrypt,
then hash.

Blob layout (docs/format.md, "Chunk blobs"):

    version 2: version (1 byte) | 0 (1 byte) | nonce (12 bytes) | AES-256-GCM(body)
               body = flags (1 byte; bit 0 = zstd) | payload | 0x80 | zero bytes
    version 1: version (1 byte) | flags (1 byte) | nonce (12 bytes) | AES-256-GCM(payload)

Version 2 (written) pads the body to a bucket size (samizdat.core.padding), so the stored
size does not give the payload's length, and encrypts the flags, so a node does not learn
which chunks compressed. Its nonce is BLAKE3 keyed with the archive's nonce key over
(version, flags, payload), truncated to 12 bytes. Version 1 (read only) has neither; its
nonce input (flags, payload) never collides with version 2's (a v1 flags byte is 0 or 1,
never 2), so no nonce is shared between the versions.

Encryption is deterministic (same plaintext, same blob, same id: dedup works) and a nonce
repeats only for an identical payload, which yields the identical ciphertext. The header and
archive id are authenticated as associated data. The chunk id is BLAKE3-256 of the
whole blob, so any node can verify a blob without the key, and nobody without the key can
predict the id of a known plaintext.
"""

from __future__ import annotations

import blake3
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from samizdat.core.errors import ChunkCheck, ChunkCorrupt
from samizdat.core.ids import ChunkId
from samizdat.core.keys import ArchiveKey
from samizdat.core.padding import pad, unpadded_length

BLOB_VERSION = 2
READABLE_VERSIONS = (1, 2)
FLAG_ZSTD = 0x01
HEADER_SIZE = 2 + 12
OVERHEAD = HEADER_SIZE + 16  # header and GCM tag: len(blob) = OVERHEAD + len(body)
MAX_PLAINTEXT = 16 << 20
# Level 1: on incompressible video it runs ~3-6x faster than level 3 (2.8 vs 0.4-0.9 GB/s
# per core here) and text still shrinks to the same order; see bench/README.md.
DEFAULT_ZSTD_LEVEL = 1
CACHE_KEY_CONTEXT = b"samizdat client id cache v1"


def verify_blob(chunk_id: bytes, blob: bytes | memoryview) -> None:
    """Raise ChunkCorrupt unless BLAKE3(blob) == chunk_id. Needs no key."""
    if blake3.blake3(blob).digest() != chunk_id:
        raise ChunkCorrupt(chunk_id.hex(), ChunkCheck.ID_HASH, "bytes do not match the id")


class ChunkCodec:
    """Encodes and decodes chunks of one archive. Thread-safe; one instance per thread is not
    needed (zstd contexts are per-thread internally)."""

    def __init__(self, key: ArchiveKey, zstd_level: int = DEFAULT_ZSTD_LEVEL) -> None:
        self._aead = AESGCM(key.encryption_key)
        self._nonce_key = key.nonce_key
        self._cache_key = blake3.blake3(CACHE_KEY_CONTEXT, key=key.nonce_key).digest()
        self._aad = bytes(key.archive_id)
        self._level = zstd_level
        import threading

        self._local = threading.local()

    def _zstd(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(
            self._local, "zstd", None
        )
        if pair is None:
            pair = (zstandard.ZstdCompressor(level=self._level), zstandard.ZstdDecompressor())
            self._local.zstd = pair
        return pair

    def cache_key(self, plaintext: bytes | memoryview) -> bytes:
        """A keyed BLAKE3-256 of the plaintext that names it in the client's local id cache
        (docs/format.md, "Client id cache"). Unpredictable without the archive key and
        unrelated to the nonce (its key is derived from the nonce key under its own
        context)."""
        return blake3.blake3(plaintext, key=self._cache_key).digest()

    def encode(self, plaintext: bytes | memoryview) -> tuple[ChunkId, bytes]:
        """Return (id, blob) for a plaintext chunk (a version 2 blob, padded). Deterministic
        for a given key."""
        compressed = self._zstd()[0].compress(plaintext)
        payload: bytes | memoryview
        if len(compressed) < len(plaintext):
            flags, payload = FLAG_ZSTD, compressed
        else:
            flags, payload = 0, plaintext  # a view stays one: pad() copies it once
        nonce_hash = blake3.blake3(bytes([BLOB_VERSION, flags]), key=self._nonce_key)
        nonce_hash.update(payload)
        nonce = nonce_hash.digest(length=12)
        prefix = bytes([BLOB_VERSION, 0])
        body = pad(bytes([flags]), payload)
        blob = prefix + nonce + self._aead.encrypt(nonce, body, prefix + self._aad)
        return ChunkId.of(blob), blob

    def decode(self, chunk_id: bytes, blob: bytes | memoryview) -> bytes | memoryview:
        """Return the plaintext of a blob (version 1 or 2; bytes, or a view such as a slice
        of a received message, which is not copied) after checking its id, header, AEAD tag
        and padding. An uncompressed version 2 payload comes back as a read-only view into
        the decrypted body (not copied out of its padding): use it as any bytes-like object,
        or bytes() it where a real bytes is needed."""
        verify_blob(chunk_id, blob)
        version = blob[0] if blob else 0
        if (
            len(blob) < OVERHEAD
            or version not in READABLE_VERSIONS
            or blob[1] & (~FLAG_ZSTD if version == 1 else 0xFF)
        ):
            raise ChunkCorrupt(chunk_id.hex(), ChunkCheck.CONTENT, "unknown blob format")
        head = bytes(blob[:HEADER_SIZE])
        try:  # a memoryview: the ciphertext is not copied before decryption
            body = self._aead.decrypt(
                head[2:], memoryview(blob)[HEADER_SIZE:], head[:2] + self._aad
            )
        except InvalidTag:
            raise ChunkCorrupt(
                chunk_id.hex(),
                ChunkCheck.CONTENT,
                "does not decrypt under this archive key (wrong key?)",
            ) from None
        flags, payload = blob[1], memoryview(body)
        if version == 2:
            end = unpadded_length(body)
            if not end or body[0] & ~FLAG_ZSTD:
                raise ChunkCorrupt(chunk_id.hex(), ChunkCheck.CONTENT, "bad padding or flags")
            flags, payload = body[0], payload[1:end]
        if flags & FLAG_ZSTD:
            try:
                return self._zstd()[1].decompress(payload, max_output_size=MAX_PLAINTEXT)
            except zstandard.ZstdError as e:
                raise ChunkCorrupt(
                    chunk_id.hex(), ChunkCheck.CONTENT, f"bad compressed payload: {e}"
                ) from None
        return body if version == 1 else payload
