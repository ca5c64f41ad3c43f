"""The formats written before the version 2 step (docs/format.md §5-7, "Version 1"), built
from their documentation for tests that must show old snapshots stay readable and what the
old layout gave away. Production code only reads these formats."""

from __future__ import annotations

import blake3
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyfastcdc.cy import FastCDC

from samizdat.core.chunklist import MAGIC
from samizdat.core.keys import ArchiveKey
from samizdat.v1 import records_pb2 as pb


def encode_v1_blob(key: ArchiveKey, plaintext: bytes) -> tuple[bytes, bytes]:
    """A version 1 chunk blob: flags in the clear, no padding."""
    compressed = zstandard.ZstdCompressor(level=1).compress(plaintext)
    flags, payload = (1, compressed) if len(compressed) < len(plaintext) else (0, plaintext)
    nonce = blake3.blake3(bytes([flags]) + payload, key=key.nonce_key).digest(length=12)
    header = bytes([1, flags]) + nonce
    aad = header[:2] + bytes(key.archive_id)
    blob = header + AESGCM(key.encryption_key).encrypt(nonce, payload, aad)
    return blake3.blake3(blob).digest(), blob


def encode_v1_chunk_list(entries: list[tuple[bytes, int]]) -> tuple[bytes, bytes]:
    """A version 1 chunk list: entries in the order given (first-seen, tree order)."""
    msg = pb.ChunkList(version=1, ids=[i for i, _ in entries], sizes=[s for _, s in entries])
    blob = MAGIC + msg.SerializeToString()
    return blake3.blake3(blob).digest(), blob


def v1_cuts(key: ArchiveKey, data: bytes) -> list[bytes]:
    """Chunks of `data` as the version 1 chunker (FastCDC, seeded gear table, 64K/256K/1M)
    cut them."""
    seed = (key.chunker_seed & (2**63 - 1)) or 1
    cdc = FastCDC(192 << 10, min_size=64 << 10, max_size=1 << 20, normalized_chunking=1, seed=seed)
    return [bytes(c.data) for c in cdc.cut_buf(data)]
