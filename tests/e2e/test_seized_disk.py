"""The adversary of issue 10: a seized node's disk, the project's own code, copies of known
files (published videos and notes) and decoys that were never pushed. It tries to confirm
which known files the archive holds:

- small files: a note fits one chunk, so its stored size follows from its bytes (zstd is
  deterministic); a known note is "confirmed" if that size is among the stored sizes;
- large files: a video is "confirmed" if some run of consecutive entries of a chunk list has
  stored sizes that add up to what the video's chunks would take.

Against the layout written before the format step (version 1 blobs and chunk lists, built
here in process from the documented format with the real chunker, and read back with the
real codec) the attack confirms every known file and no decoy. Against a real node after a
real push it confirms decoys exactly as often as known files: it cannot tell them apart.
Data and key are fixed (seeded), so the outcome does not vary from run to run.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import blake3
import pytest
import zstandard

from samizdat.core.chunklist import MAGIC, decode_chunk_list
from samizdat.core.codec import OVERHEAD, ChunkCodec
from samizdat.core.keys import ArchiveKey, save_key
from samizdat.core.padding import SMALL_LIMIT, padded_length
from samizdat.core.records import sign_snapshot, verify_snapshot
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.e2e.test_single_node import push
from tests.legacy import encode_v1_blob, encode_v1_chunk_list, v1_cuts
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.timeout(120)

KEY = ArchiveKey(signing_seed=bytes(range(32)), master_secret=bytes(range(100, 132)))
WORDS = (  # noqa: SIM905
    "detainee guard cell block night camera footage corridor hearing witness statement transfer "
    "facility prison report medical injury lawyer family visit denied date time location source "
    "verified metadata timestamp frame audio copy hash courier redacted"
).split(" ")


@dataclass(frozen=True)
class Files:
    known_videos: dict[str, bytes]
    decoy_videos: dict[str, bytes]
    known_notes: dict[str, bytes]
    decoy_notes: dict[str, bytes]
    unpublished: dict[str, bytes]  # in the archive too, but the adversary has no copy

    def archive(self) -> dict[str, bytes]:
        return {**self.known_videos, **self.known_notes, **self.unpublished}


def make_files() -> Files:
    """Seeded videos (incompressible, sizes not multiples of 512) and notes (text). Like the
    real archive, most notes were never published: the adversary holds copies of some."""
    rnd = random.Random(10)

    def video(n: int) -> bytes:
        size = rnd.randrange(2 << 20, 6 << 20) | 1
        return blake3.blake3(b"video %d" % n).digest(length=size)

    def note() -> bytes:
        words = rnd.randrange(150, 1800)
        return " ".join(rnd.choice(WORDS) for _ in range(words)).encode() + b"\n"

    return Files(
        known_videos={f"case{n}/video.mp4": video(n) for n in range(3)},
        decoy_videos={f"decoy{n}.mp4": video(100 + n) for n in range(3)},
        known_notes={f"case{n % 3}/note{n}.txt": note() for n in range(24)},
        decoy_notes={f"decoy{n}.txt": note() for n in range(24)},
        unpublished={f"case{n % 3}/unpublished{n}.txt": note() for n in range(40)},
    )


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


# ------------------------------------------------------------------------ the adversary


@dataclass
class SeizedDisk:
    blob_version: int
    stored_sizes: Counter[int]
    lists: list[list[int]]  # stored sizes, in each chunk list's order


def read_seized_disk(data_dir: Path) -> SeizedDisk:
    """Everything the adversary gets from the node's directory with the project's code."""
    store = ChunkStore(data_dir)
    try:
        index = list(store.iter_chunk_ids())
        lists = []
        for _, _, signed in store.iter_snapshot_log(0):
            snap = verify_snapshot(pb.SignedSnapshot.FromString(signed))
            for list_id in snap.record.chunk_list_ids:
                blob = store.get_chunk(list_id)
                assert blob is not None
                lists.append([size for _, size in decode_chunk_list(list_id, blob)])
        some_blob = store.get_chunk(next(c for c, _ in index if store.get_chunk(c)[:4] != MAGIC))
        assert some_blob is not None
    finally:
        store.close()
    return SeizedDisk(some_blob[0], Counter(size for _, size in index), lists)


def note_confirmed(disk: SeizedDisk, note: bytes) -> bool:
    """The stored size the note would have (one chunk) is among the stored sizes."""
    compressed = zstandard.ZstdCompressor(level=1).compress(note)
    payload = min(len(compressed), len(note))
    size = payload if disk.blob_version == 1 else padded_length(payload + 2)
    return disk.stored_sizes[size + OVERHEAD] > 0


def video_confirmed(disk: SeizedDisk, video: bytes) -> bool:
    """Some run of k consecutive list entries takes what a video of this size would: exactly
    len + 30k bytes in version 1; in version 2 between len + 32k and the most padding could
    add (1/32 of it, plus a power-of-two tail)."""
    n = len(video)
    for sizes in disk.lists:
        for start in range(len(sizes)):
            total = 0
            for k, size in enumerate(sizes[start:], 1):
                total += size
                if disk.blob_version == 1:
                    if total == n + OVERHEAD * k:
                        return True
                elif (
                    n + (OVERHEAD + 2) * k
                    <= total
                    <= n + n // 32 + (OVERHEAD + 2) * k + SMALL_LIMIT
                ):
                    return True
                if total > 2 * n:
                    break
    return False


def confirmed(disk: SeizedDisk, files: Files) -> dict[str, tuple[int, int]]:
    """(known files confirmed, decoys confirmed) per kind."""
    return {
        "videos": (
            sum(video_confirmed(disk, v) for v in files.known_videos.values()),
            sum(video_confirmed(disk, v) for v in files.decoy_videos.values()),
        ),
        "notes": (
            sum(note_confirmed(disk, v) for v in files.known_notes.values()),
            sum(note_confirmed(disk, v) for v in files.decoy_notes.values()),
        ),
    }


# --------------------------------------------------------------------------- the tests


def test_seized_disk_cannot_tell_pushed_files_from_decoys(node_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = make_files()
    key_path = tmp_path / "fixed.key"
    save_key(KEY, key_path)
    key = KeyFile(key_path, KEY)
    node: NodeProcess = node_factory("seized", host=[key.archive_id])
    push(key, node, write_tree(tmp_path / "archive", files.archive()))
    node.stop()

    disk = read_seized_disk(node.data_dir)
    assert disk.blob_version == 2
    result = confirmed(disk, files)
    # Every decoy "confirmed" as often as every known file: the test tells nothing.
    assert result == {"videos": (3, 3), "notes": (24, 24)}, result


def test_the_same_attack_confirms_known_files_on_the_old_layout(tmp_path: Path) -> None:
    """Version 1 as it was written: FastCDC-only cut points, unpadded blobs, flags in the
    clear, chunk lists in tree order. The real codec reads these blobs, so they are the old
    format, not a lookalike."""
    files = make_files()
    store = ChunkStore(tmp_path / "data")
    codec = ChunkCodec(KEY)
    blobs: dict[bytes, bytes] = {}  # first-seen order
    for _, data in sorted(files.archive().items()):  # tree order
        for piece in v1_cuts(KEY, data):
            chunk_id, blob = encode_v1_blob(KEY, piece)
            assert codec.decode(chunk_id, blob) == piece
            blobs.setdefault(chunk_id, blob)
    ids = list(blobs)
    list_id, list_blob = encode_v1_chunk_list([(i, len(blobs[i])) for i in ids])
    try:
        store.put_chunks([*blobs.items(), (list_id, list_blob)])
        snap = sign_snapshot(
            KEY, pb.SnapshotRecord(sequence=1, chunk_list_ids=[list_id], tree_chunk_ids=[ids[0]])
        )
        store.sync_chunks()
        store.add_snapshot(bytes(snap.id), snap.signed.SerializeToString(), 1, 1, 1)
    finally:
        store.close()

    disk = read_seized_disk(tmp_path / "data")
    assert disk.blob_version == 1
    result = confirmed(disk, files)
    assert result["videos"] == (3, 0), result
    known, decoys = result["notes"]
    assert known == 24 and decoys <= 4, result  # an exact size shared by chance, at most
    shutil.rmtree(tmp_path / "data")
