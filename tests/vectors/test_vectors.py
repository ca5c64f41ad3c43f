"""Known-answer vectors: the persisted formats must not change by accident.

If a format changes on purpose, bump its version, document it in docs/format.md, and add new
vectors next to these (old snapshots must stay readable).
"""

from __future__ import annotations

import io

import blake3

from samizdat.core.chunker import Chunker, ChunkerParams
from samizdat.core.chunklist import decode_chunk_list, encode_chunk_list
from samizdat.core.codec import ChunkCodec
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import sign_snapshot, verify_snapshot
from samizdat.core.tree import TREE_VERSION, iter_tree, write_message
from samizdat.v1 import records_pb2 as pb

KEY = ArchiveKey(signing_seed=bytes(range(32)), master_secret=bytes(range(32, 64)))

ARCHIVE_ID = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
ENCRYPTION_KEY = "3b17c0e89e94f24296c48f7721148081f11cc6a5dd2c22be5b8d8971f731c0fe"
NONCE_KEY = "e019ba55358e19d54de93cf07c64a09d8ace260e38d874fc722c8cbbac2f6b80"
CHUNKER_SEED = 7988931694793350777

RAW_CHUNK = b"\x00\x01\x02"  # does not shrink under zstd: stored uncompressed
RAW_CHUNK_ID = "f3a1b4af86a1e5f7adf51f723cae15e093a5516a26d77de2f47f51dcef4537b3"
RAW_CHUNK_BLOB = "01005d2ceddd4dbcdcc34f855b12491f1c6729155a1db9f4cd713ae77b5bf0da8b"

ZSTD_CHUNK = b"samizdat known-answer vector\n" * 10
ZSTD_CHUNK_ID = "3f5bdd308b1fd9fcf008777b30054ce2c05e54839045a77e0063882741ca0656"
ZSTD_CHUNK_BLOB = (
    "010162d71191b6bbf917b21d585267ff86f17ae40630bdcc36340861c4756206e06dc19a307479601147af"
    "43894aabced74427473f62a6153b2ff4a57d2dc17612a03b22f7977138f0ab82eb5a"
)

CHUNK_LIST_ID = "48971f450414a7f2850f57abd942a62e7c941af4f2bdf9149c80dd1b8b7128df"
CHUNK_LIST_BLOB = "535a434c08011220" + "00" * 32 + "1220" + "ff" * 32 + "1a0601ffffffff0f"

SNAPSHOT_ID = "0cf9e4fd2c776da46760dc2d0392311e35cec71b553c48d080eb25209b43dc0a"
SNAPSHOT_RECORD = (
    "0801122003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8188080a8b1e39f"
    "e7cb1720032a203f5bdd308b1fd9fcf008777b30054ce2c05e54839045a77e0063882741ca0656322048971f"
    "450414a7f2850f57abd942a62e7c941af4f2bdf9149c80dd1b8b7128df3a0c08011002180320042805300642"
    "0d08808008108080101880808001"
)
SNAPSHOT_SIGNATURE = (
    "b1c238a18c5e53ac3c5a414f7946053984830c2e7c5040ed80675406eef5f3484e39e3bb253f423140dea97b"
    "ce369efa5161b46aad9780b154c31c6d0ad8310f"
)

TREE_STREAM = (
    "0408011001570a04c3a92f61100118a403200528033a20"
    + "68" * 32
    + "42240a20"
    + RAW_CHUNK_ID
    + "1003"
)

CUTS_SMALL = [
    14770,
    7063,
    14509,
    17619,
    23725,
    19078,
    6452,
    7513,
    5184,
    4318,
    26089,
    5000,
    9965,
    22935,
    29754,
    28998,
    15535,
    30863,
    31795,
    7846,
    7026,
    32274,
    9262,
    18249,
    21751,
    12624,
    14766,
    22427,
    43200,
    11631,
    65536,
    8312,
    10157,
    12717,
    16654,
    30921,
    12607,
    6891,
    27605,
    14948,
    12815,
    37394,
    27234,
    24576,
    22172,
    15441,
    17886,
    26593,
    11649,
    6025,
    19322,
    31284,
    15280,
    17416,
    29040,
    5880,
]

# A key whose derived seed has the top bit set: pins how the chunker folds it to 63 bits.
HIGH_SEED_KEY = ArchiveKey(signing_seed=bytes(range(32)), master_secret=bytes([64]) * 32)
HIGH_SEED = 13996867567057294518
CUTS_HIGH_SEED = [
    35095,
    10577,
    15682,
    14557,
    10678,
    6584,
    13304,
    36557,
    19945,
    29574,
    16721,
    15789,
    18885,
    13094,
    5102,
]


def test_key_derivation() -> None:
    assert KEY.archive_id.hex() == ARCHIVE_ID
    assert KEY.encryption_key.hex() == ENCRYPTION_KEY
    assert KEY.nonce_key.hex() == NONCE_KEY
    assert KEY.chunker_seed == CHUNKER_SEED


def test_chunk_blob_format() -> None:
    codec = ChunkCodec(KEY)
    chunk_id, blob = codec.encode(RAW_CHUNK)
    assert (chunk_id.hex(), blob.hex()) == (RAW_CHUNK_ID, RAW_CHUNK_BLOB)
    # zstd output may vary between library versions; decoding a stored blob may not.
    blob = bytes.fromhex(ZSTD_CHUNK_BLOB)
    assert blake3.blake3(blob).hexdigest() == ZSTD_CHUNK_ID
    assert codec.decode(bytes.fromhex(ZSTD_CHUNK_ID), blob) == ZSTD_CHUNK


def test_chunk_list_format() -> None:
    entries = [(bytes(32), 1), (b"\xff" * 32, 2**32 - 1)]
    list_id, blob = encode_chunk_list(entries)
    assert (list_id.hex(), blob.hex()) == (CHUNK_LIST_ID, CHUNK_LIST_BLOB)
    assert decode_chunk_list(list_id, blob) == entries


def test_snapshot_record_format() -> None:
    record = pb.SnapshotRecord(
        created_unix_ns=1_700_000_000_000_000_000,
        sequence=3,
        tree_chunk_ids=[bytes.fromhex(ZSTD_CHUNK_ID)],
        chunk_list_ids=[bytes.fromhex(CHUNK_LIST_ID)],
        totals=pb.SnapshotTotals(
            files=1, directories=2, symlinks=3, plaintext_bytes=4, chunks=5, stored_bytes=6
        ),
        # Explicit sizes: the vector must not move when the defaults are retuned.
        chunker=ChunkerParams(128 * 1024, 256 * 1024, 2 * 1024 * 1024).to_proto(),
    )
    snap = sign_snapshot(KEY, record)
    assert snap.signed.record.hex() == SNAPSHOT_RECORD
    assert snap.signed.signature.hex() == SNAPSHOT_SIGNATURE  # Ed25519 is deterministic
    assert snap.id.hex() == SNAPSHOT_ID
    stored = pb.SignedSnapshot(
        record=bytes.fromhex(SNAPSHOT_RECORD), signature=bytes.fromhex(SNAPSHOT_SIGNATURE)
    )
    assert verify_snapshot(stored, bytes.fromhex(ARCHIVE_ID)).id.hex() == SNAPSHOT_ID


def test_tree_stream_format() -> None:
    out = io.BytesIO()
    write_message(out, pb.TreeHeader(version=TREE_VERSION, entry_count=1))
    entry = pb.TreeEntry(
        path="é/a".encode(),
        kind=pb.ENTRY_KIND_FILE,
        mode=0o644,
        mtime_ns=5,
        size=3,
        content_hash=b"h" * 32,
        chunks=[pb.ChunkRef(id=bytes.fromhex(RAW_CHUNK_ID), length=3)],
    )
    write_message(out, entry)
    assert out.getvalue().hex() == TREE_STREAM
    assert list(iter_tree(io.BytesIO(bytes.fromhex(TREE_STREAM)))) == [entry]


def test_chunker_cut_points() -> None:
    data = blake3.blake3(b"chunker vector").digest(length=1 << 20)
    chunker = Chunker(KEY.chunker_seed, ChunkerParams(4096, 16384, 65536))
    assert [len(c) for c in chunker.iter_buffer(data)] == CUTS_SMALL


def test_chunker_cut_points_for_a_seed_with_the_top_bit_set() -> None:
    assert HIGH_SEED_KEY.chunker_seed == HIGH_SEED >= 2**63
    data = blake3.blake3(b"chunker vector").digest(length=256 << 10)
    chunker = Chunker(HIGH_SEED_KEY.chunker_seed, ChunkerParams(4096, 16384, 65536))
    assert [len(c) for c in chunker.iter_buffer(data)] == CUTS_HIGH_SEED
