"""Hand-built snapshots for fault tests: any tree (including malicious ones), encoded and
signed with the real core API and uploaded through NodeClient as a writer would."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import blake3

from samizdat.core.chunklist import encode_chunk_list
from samizdat.core.codec import ChunkCodec
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot, sign_snapshot
from samizdat.core.tree import TREE_VERSION, write_message
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import records_pb2 as pb
from tests.legacy import encode_v1_blob, encode_v1_chunk_list

MTIME_NS = 1_650_000_000_000_000_000


@dataclass
class CraftedSnapshot:
    snapshot: Snapshot
    blobs: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def id_hex(self) -> str:
        return self.snapshot.id.hex()


def file_entry(path: bytes, content: bytes, mode: int = 0o644) -> tuple[pb.TreeEntry, bytes]:
    return pb.TreeEntry(path=path, kind=pb.ENTRY_KIND_FILE, mode=mode, mtime_ns=MTIME_NS), content


def dir_entry(path: bytes, mode: int = 0o755) -> tuple[pb.TreeEntry, None]:
    return pb.TreeEntry(path=path, kind=pb.ENTRY_KIND_DIRECTORY, mode=mode, mtime_ns=MTIME_NS), None


def symlink_entry(path: bytes, target: bytes) -> tuple[pb.TreeEntry, None]:
    return pb.TreeEntry(
        path=path, kind=pb.ENTRY_KIND_SYMLINK, mode=0o777, mtime_ns=MTIME_NS, symlink_target=target
    ), None


def craft_snapshot(
    key: ArchiveKey,
    entries: list[tuple[pb.TreeEntry, bytes | None]],
    sequence: int = 1,
    legacy: bool = False,
) -> CraftedSnapshot:
    """Encode `entries` in the given order (no path checks: that is the point) into a signed
    snapshot. File contents become one chunk each. `legacy`: version 1 blobs and chunk list
    (tests/legacy.py), as written before the version 2 format step."""
    codec = ChunkCodec(key)
    encode = (lambda data: encode_v1_blob(key, data)) if legacy else codec.encode
    blobs: dict[bytes, bytes] = {}
    stream = io.BytesIO()
    write_message(stream, pb.TreeHeader(version=TREE_VERSION, entry_count=len(entries)))
    files = 0
    for entry, content in entries:
        if content is not None:
            files += 1
            entry.size = len(content)
            entry.content_hash = blake3.blake3(content).digest()
            if content:
                chunk_id, blob = encode(content)
                blobs[bytes(chunk_id)] = blob
                entry.chunks.append(pb.ChunkRef(id=chunk_id, length=len(content)))
        write_message(stream, entry)
    tree_id, tree_blob = encode(stream.getvalue())
    blobs[bytes(tree_id)] = tree_blob
    listed = [(cid, len(b)) for cid, b in blobs.items()]
    list_id, list_blob = (
        encode_v1_chunk_list(listed) if legacy else encode_chunk_list(sorted(listed))
    )
    blobs[bytes(list_id)] = list_blob
    record = pb.SnapshotRecord(
        sequence=sequence,
        created_unix_ns=time.time_ns(),
        tree_chunk_ids=[tree_id],
        chunk_list_ids=[list_id],
        totals=pb.SnapshotTotals(
            files=files, chunks=len(blobs) - 1, stored_bytes=sum(map(len, blobs.values()))
        ),
    )
    return CraftedSnapshot(sign_snapshot(key, record), list(blobs.items()))


def random_snapshot(
    key: ArchiveKey, n: int, size: int
) -> tuple[Snapshot, list[tuple[bytes, bytes]]]:
    """A signed snapshot of `n` random data chunks of `size` bytes (the first doubles as the
    'tree', which nothing here reads) and its blobs: the data chunks, then the chunk list."""
    codec = ChunkCodec(key)
    chunks = [codec.encode(os.urandom(size)) for _ in range(n)]
    list_id, list_blob = encode_chunk_list(sorted((cid, len(b)) for cid, b in chunks))
    record = pb.SnapshotRecord(
        sequence=1,
        tree_chunk_ids=[chunks[0][0]],
        chunk_list_ids=[list_id],
        totals=pb.SnapshotTotals(chunks=n),
    )
    return sign_snapshot(key, record), [*chunks, (list_id, list_blob)]


def put_blobs(client, archive_id: bytes, blobs: Iterable[tuple[bytes, bytes]]) -> None:  # type: ignore[no-untyped-def]
    """One PutChunks call of one request with `blobs`, (id, bytes) pairs taken as they are
    (what the node makes of wrong ones is what fault tests check)."""
    chunks = [npb.Chunk(id=c, data=b) for c, b in blobs]
    client.put_chunks(iter([npb.PutChunksRequest(archive_id=archive_id, chunks=chunks)]))


def upload(client, crafted: CraftedSnapshot) -> None:  # type: ignore[no-untyped-def]
    """PutChunks then PutSnapshot through a NodeClient that holds the archive key."""
    put_blobs(client, bytes(crafted.snapshot.archive_id), crafted.blobs)
    client.put_snapshot(crafted.snapshot.signed)
