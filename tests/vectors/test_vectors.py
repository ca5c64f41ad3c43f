"""Known-answer vectors: the persisted formats must not change by accident.

If a format changes on purpose, bump its version, document it in docs/format.md, and add new
vectors next to these (old snapshots must stay readable: the vectors of every older version
must still decode).
"""

from __future__ import annotations

import io

import blake3

from samizdat.core.chunker import Chunker, ChunkerParams
from samizdat.core.chunklist import decode_chunk_list, encode_chunk_list
from samizdat.core.codec import ChunkCodec
from samizdat.core.custody import sign_custody_record, verify_custody_record
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
# Version 1 blobs (unpadded; written before the format step, still read).
RAW_CHUNK_ID = "f3a1b4af86a1e5f7adf51f723cae15e093a5516a26d77de2f47f51dcef4537b3"
RAW_CHUNK_BLOB = "01005d2ceddd4dbcdcc34f855b12491f1c6729155a1db9f4cd713ae77b5bf0da8b"
# Version 2 (padded): flags byte, 3 bytes and marker pad to 512, + 30 bytes of header and tag.
# The id pins every byte of the blob.
RAW_CHUNK_V2_ID = "2f7948409e49f7122b95d2edf10dc1df8e9134d36c26a9c0144ecb908d08e89f"
RAW_CHUNK_V2_HEAD = "02008237085188675cfd69ab323c"  # version, 0, nonce

ZSTD_CHUNK = b"samizdat known-answer vector\n" * 10
ZSTD_CHUNK_ID = "3f5bdd308b1fd9fcf008777b30054ce2c05e54839045a77e0063882741ca0656"
ZSTD_CHUNK_BLOB = (
    "010162d71191b6bbf917b21d585267ff86f17ae40630bdcc36340861c4756206e06dc19a307479601147af"
    "43894aabced74427473f62a6153b2ff4a57d2dc17612a03b22f7977138f0ab82eb5a"
)

ZSTD_CHUNK_V2_ID = "01e54b840c5614058abfef91b802246ce4b63b041001950cf918ba8fbe296492"
ZSTD_CHUNK_V2_BLOB = (
    "02009e24094c89e067de06df5748f72d7421d6ad9f0c87af9ba8ebfefe23344aa0e9a5f642623bf255d6a743"
    "f011f038fad45c9e72a64be32f81cf35c03747bdf17babad6192bd6d05e9d8cb08babbc5cab918f3b2efed4e"
    "8569bdc37d403d5d46277b8e79aa8b699103133fbc501c9e393c2e7c5e33d231241794a41e8674b69b338d6b"
    "ca5cc0996e5a4433e5587ef769b5e8fc9d62023ec391f406f9518284b8fcbdd3bea7881a713ec779b4629140"
    "ca455de16a07b2a62be6c704b3d8c542824b57fe55ab7a04cee5c38e2c62b33fa9915df5e522ef04e8ff55a4"
    "0d8e3ab570664e718965ac92e9b4b6946c3796ece97bde29097c9c2b334661f530035072b57973b09cf45571"
    "b036e0b021d9e24b2900e922b825c2513a19e86320033a538cc4def526bd75db7dd2f0b9052536fdd60a2296"
    "db991e4192eb9dfeab39609e318c49d33463ce2b6b03cd8543fccf87342170fa7a56207bcad19e44db38a3ae"
    "b4ba77ecb4eb7acf3d42fbdfd12ac962e01a1af756c1152d6a35679c107f1f30aa003254c3225983c3e0fc49"
    "78e957c67d529b777bf41bcb15b1a3907d7cbdb9abbab2545d8ed2a662f6fa4a396709917ed634ba7d9fcf46"
    "e3bb0ae82efa55daf412a913ca2900b73b9a982fed859be6078554e01eaaf2fd7b7a99af852df68d81dc00cb"
    "0299d474bea2bc597b652fe53a0138f45ca74a88cd3d75f4548e83a1dc7ec5fc745b2d365b854b8d67cf43b7"
    "0e7f3bae52d1290bd2850cabab03"
)

# Version 1 chunk list (tree order, unpadded; still read).
CHUNK_LIST_ID = "48971f450414a7f2850f57abd942a62e7c941af4f2bdf9149c80dd1b8b7128df"
CHUNK_LIST_BLOB = "535a434c08011220" + "00" * 32 + "1220" + "ff" * 32 + "1a0601ffffffff0f"
# Version 2: ids ascending, then field 4 (padding) of 427 zero bytes: 512 bytes in all.
CHUNK_LIST_V2_ID = "8ab0538522f5bd84b616d7d637cd25ffaf7d93aa8be86bc95bebc69c68dda1dc"
CHUNK_LIST_V2_BLOB = (
    "535a434c08021220" + "00" * 32 + "1220" + "ff" * 32 + "1a0601ffffffff0f" + "22ab03" + "00" * 427
)

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

# Tree version 1, as pushed before hard links and xattrs were recorded: still readable.
TREE_STREAM_V1 = (
    "0408011001570a04c3a92f61100118a403200528033a20"
    + "68" * 32
    + "42240a20"
    + RAW_CHUNK_ID
    + "1003"
)
# Tree version 2: a file in hard-link group 1 with a user.* xattr, a directory with one.
TREE_STREAM = (
    "0408021002670a04c3a92f61100118a403200528033a20"
    + "68" * 32
    + "42240a20"
    + RAW_CHUNK_ID
    + "10034801520c0a06757365722e6b12027600"
    + "140a0164100218ed03200652080a06757365722e65"
)

CHUNKER_CUT_KEY = "532b48b9243cda2a786ca9d97bcf18d60183d2c310aa87d7913a84ca10297c88"
# Cut points of the keyed chunker (ChunkerParams.algorithm 1).
CUTS_SMALL = [
    19365, 5694, 42594, 24116, 6073, 13519, 24107, 6572, 21417, 5730, 16960, 21550, 22878,
    16084, 8601, 23324, 4334, 12018, 24487, 24678, 22047, 18819, 5667, 22282, 18114, 10810,
    27450, 22620, 33481, 6228, 16695, 29678, 12343, 5517, 16931, 25802, 34101, 13975, 17279,
    13784, 31640, 17399, 19034, 16827, 17969, 6308, 8478, 21104, 12270, 21306, 38798, 8578,
    25453, 30599, 13609, 25564, 15916,
]  # fmt: skip

# A key whose derived seed has the top bit set: pins how the chunker folds it to 63 bits.
HIGH_SEED_KEY = ArchiveKey(signing_seed=bytes(range(32)), master_secret=bytes([64]) * 32)
HIGH_SEED = 13996867567057294518
CUTS_HIGH_SEED = [
    24759, 23494, 12304, 12643, 23034, 6717, 10113, 18728, 23738, 7408, 18981, 25444, 17538,
    11455, 5043, 18019, 2726,
]  # fmt: skip


def test_key_derivation() -> None:
    assert KEY.archive_id.hex() == ARCHIVE_ID
    assert KEY.encryption_key.hex() == ENCRYPTION_KEY
    assert KEY.nonce_key.hex() == NONCE_KEY
    assert KEY.chunker_seed == CHUNKER_SEED
    assert KEY.chunker_cut_key.hex() == CHUNKER_CUT_KEY


def test_chunk_blob_format() -> None:
    codec = ChunkCodec(KEY)
    chunk_id, blob = codec.encode(RAW_CHUNK)
    assert (chunk_id.hex(), blob[:14].hex(), len(blob)) == (RAW_CHUNK_V2_ID, RAW_CHUNK_V2_HEAD, 542)
    assert codec.decode(chunk_id, blob) == RAW_CHUNK
    # zstd output may vary between library versions; decoding a stored blob may not.
    blob = bytes.fromhex(ZSTD_CHUNK_V2_BLOB)
    assert blake3.blake3(blob).hexdigest() == ZSTD_CHUNK_V2_ID
    assert codec.decode(bytes.fromhex(ZSTD_CHUNK_V2_ID), blob) == ZSTD_CHUNK


def test_version_1_chunk_blobs_still_decode() -> None:
    codec = ChunkCodec(KEY)
    for chunk_id, blob, plaintext in (
        (RAW_CHUNK_ID, RAW_CHUNK_BLOB, RAW_CHUNK),
        (ZSTD_CHUNK_ID, ZSTD_CHUNK_BLOB, ZSTD_CHUNK),
    ):
        assert codec.decode(bytes.fromhex(chunk_id), bytes.fromhex(blob)) == plaintext


def test_chunk_list_format() -> None:
    entries = [(bytes(32), 1), (b"\xff" * 32, 2**32 - 1)]
    list_id, blob = encode_chunk_list(entries)
    assert (list_id.hex(), blob.hex()) == (CHUNK_LIST_V2_ID, CHUNK_LIST_V2_BLOB)
    assert decode_chunk_list(list_id, blob) == entries
    old = bytes.fromhex(CHUNK_LIST_BLOB)  # version 1 still reads
    assert decode_chunk_list(bytes.fromhex(CHUNK_LIST_ID), old) == entries


def test_snapshot_record_format() -> None:
    record = pb.SnapshotRecord(
        created_unix_ns=1_700_000_000_000_000_000,
        sequence=3,
        tree_chunk_ids=[bytes.fromhex(ZSTD_CHUNK_ID)],
        chunk_list_ids=[bytes.fromhex(CHUNK_LIST_ID)],
        totals=pb.SnapshotTotals(
            files=1, directories=2, symlinks=3, plaintext_bytes=4, chunks=5, stored_bytes=6
        ),
        # Explicit sizes: the vector must not move when the defaults are retuned (a record
        # of before the chunker's `algorithm` field: it stays 0, unset).
        chunker=pb.ChunkerParams(min_size=128 * 1024, avg_size=256 * 1024, max_size=2 << 20),
    )
    snap = sign_snapshot(KEY, record)
    assert snap.signed.record.hex() == SNAPSHOT_RECORD
    assert snap.signed.signature.hex() == SNAPSHOT_SIGNATURE  # Ed25519 is deterministic
    assert snap.id.hex() == SNAPSHOT_ID
    stored = pb.SignedSnapshot(
        record=bytes.fromhex(SNAPSHOT_RECORD), signature=bytes.fromhex(SNAPSHOT_SIGNATURE)
    )
    assert verify_snapshot(stored, bytes.fromhex(ARCHIVE_ID)).id.hex() == SNAPSHOT_ID


CUSTODY_RECORD = (
    "0801122003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b81880d095ffbc3120"
    "8080a8b1e39fe7cb172a2a0a20404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e"
    "5f10011a04616d616c"
)
CUSTODY_SIGNATURE = (
    "0a278c3cb09c8d25a895bd1940e90ab82158eac262db1f00b3e31aa3500573929e58afa7cb349ed2e444cd04"
    "a1fddf149d109e82fe6358bc7fd96422cd4ee00e"
)
CUSTODY_RECORD_ID = "90695e6d995c8aac4759807cf4d60280e8a00dcc50bdee13eab9ae4c1161122d"


def test_custody_record_format() -> None:
    """A writer certificate signed by the archive key (docs/format.md §16)."""
    record = pb.CustodyRecord(
        serial=1_700_000_000_000,
        created_unix_ns=1_700_000_000_000_000_000,
        certificate=pb.KeyCertificate(
            member_key=bytes(range(64, 96)), role=pb.MEMBER_ROLE_WRITER, name="amal"
        ),
    )
    rec = sign_custody_record(KEY, record)
    assert rec.signed.record.hex() == CUSTODY_RECORD
    assert rec.signed.signature.hex() == CUSTODY_SIGNATURE
    assert rec.id.hex() == CUSTODY_RECORD_ID
    stored = pb.SignedCustodyRecord(
        record=bytes.fromhex(CUSTODY_RECORD), signature=bytes.fromhex(CUSTODY_SIGNATURE)
    )
    assert verify_custody_record(stored, bytes.fromhex(ARCHIVE_ID)).id.hex() == CUSTODY_RECORD_ID


V1_ENTRY = pb.TreeEntry(
    path="é/a".encode(),
    kind=pb.ENTRY_KIND_FILE,
    mode=0o644,
    mtime_ns=5,
    size=3,
    content_hash=b"h" * 32,
    chunks=[pb.ChunkRef(id=bytes.fromhex(RAW_CHUNK_ID), length=3)],
)


def test_tree_stream_format() -> None:
    out = io.BytesIO()
    write_message(out, pb.TreeHeader(version=TREE_VERSION, entry_count=2))
    entry = pb.TreeEntry()
    entry.CopyFrom(V1_ENTRY)
    entry.link_group = 1
    entry.xattrs.append(pb.Xattr(name=b"user.k", value=b"v\x00"))
    directory = pb.TreeEntry(
        path=b"d",
        kind=pb.ENTRY_KIND_DIRECTORY,
        mode=0o755,
        mtime_ns=6,
        xattrs=[pb.Xattr(name=b"user.e", value=b"")],
    )
    write_message(out, entry)
    write_message(out, directory)
    assert TREE_VERSION == 2
    assert out.getvalue().hex() == TREE_STREAM
    assert list(iter_tree(io.BytesIO(bytes.fromhex(TREE_STREAM)))) == [entry, directory]


def test_version_1_trees_stay_readable() -> None:
    assert list(iter_tree(io.BytesIO(bytes.fromhex(TREE_STREAM_V1)))) == [V1_ENTRY]


def test_chunker_cut_points() -> None:
    data = blake3.blake3(b"chunker vector").digest(length=1 << 20)
    chunker = Chunker.for_archive(KEY, ChunkerParams(4096, 16384, 65536))
    assert [len(c) for c in chunker.iter_buffer(data)] == CUTS_SMALL


def test_chunker_cut_points_for_a_seed_with_the_top_bit_set() -> None:
    assert HIGH_SEED_KEY.chunker_seed == HIGH_SEED >= 2**63
    data = blake3.blake3(b"chunker vector").digest(length=256 << 10)
    chunker = Chunker.for_archive(HIGH_SEED_KEY, ChunkerParams(4096, 16384, 65536))
    assert [len(c) for c in chunker.iter_buffer(data)] == CUTS_HIGH_SEED
