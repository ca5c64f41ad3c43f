"""The formats written before the version 2 step (docs/format.md §5-7, "Version 1"), and the
node store before pack files (store format 1, §13), built from their documentation for tests
that must show old snapshots and stores stay readable and what the old layout gave away.
Production code only reads these formats."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import blake3
import rocksdict as rdb
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyfastcdc.cy import FastCDC

from samizdat.core.chunklist import MAGIC
from samizdat.core.keys import ArchiveKey
from samizdat.store.chunkstore import PACKS_DIR, pack_location
from samizdat.store.packs import PackDir
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


def downgrade_store_to_format1(data_dir: Path) -> int:
    """Rewrite a stopped node's store in store format 1 as it was written before pack files
    (docs/format.md, "Node store"): every blob moved into the `chunks` column family (blob
    files on, as format 1 configured it), `<II` index entries, no packs, stamp 1. Returns the
    number of chunks moved."""
    opts = rdb.Options(raw_mode=True)
    chunk_opts = rdb.Options(raw_mode=True)
    chunk_opts.set_enable_blob_files(True)
    chunk_opts.set_min_blob_size(1024)
    names = rdb.Rdict.list_cf(str(data_dir), opts)
    cfs = {n: chunk_opts if n == "chunks" else rdb.Options(raw_mode=True) for n in names}
    cfs.pop("default", None)
    db = rdb.Rdict(str(data_dir), options=opts, column_families=cfs)
    packs = PackDir(data_dir / PACKS_DIR)
    moved = 0
    try:
        chunks, index, node = (db.get_column_family(n) for n in ("chunks", "chunk_index", "node"))
        for key, value in list(index.items()):
            where = pack_location(value) if len(key) == 32 else None
            if where is None:
                continue
            chunks[key] = packs.read(*where)
            index[key] = value[:8]
            moved += 1
        node[b"store_format"] = struct.pack("<I", 1)
        del node[b"pack_next"]
        del chunks, index, node
    finally:
        db.close()
    shutil.rmtree(packs.root)
    return moved
