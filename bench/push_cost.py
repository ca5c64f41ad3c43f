#!/usr/bin/env python3
"""The push pipeline's CPU per GiB, measured in process, without gRPC or a node.

    python bench/push_cost.py TREE [--repeat 3]

Pushes TREE (e.g. a bench v1, `/tmp/samizdat-bench/data-512M-s1/v1`) with `ingest.Pusher`,
under a new key, into a peer that holds nothing and discards what it is sent, without the id
and files caches, and prints per round the wall seconds, MB/s, the process's CPU seconds per
GiB (user + system, `getrusage`), the main thread's (`time.thread_time`) and peak RSS. The
bench's push figure also counts gRPC, TLS and the node on the same two cores; this one is the
client's pipeline alone, for A/B runs of a change (alternate before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Iterable, Iterator, Sequence

from samizdat.client.ingest import Pusher
from samizdat.core.chunker import ChunkerParams
from samizdat.core.keys import ArchiveKey
from samizdat.core.memory import tune_allocator
from samizdat.core.peer import ChunkPart, PutChunksResult, PutSnapshotResult
from samizdat.v1 import records_pb2 as pb

GiB = 1 << 30


class Discard:
    """A peer that lacks every chunk and keeps nothing it is sent (the parts of the Peer
    protocol a push calls)."""

    label = "discard"
    damage_is_local = False

    def __init__(self) -> None:
        self.sent = 0

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        return [False] * len(ids)

    def put_chunks(
        self, archive_id: bytes, batches: Iterable[Sequence[tuple[bytes, bytes]]]
    ) -> PutChunksResult:
        received = stored = 0
        for batch in batches:
            received += len(batch)
            stored += sum(len(blob) for _, blob in batch)
        self.sent += stored
        return PutChunksResult(received, received, stored)

    def put_snapshot(self, signed: pb.SignedSnapshot) -> PutSnapshotResult:
        return PutSnapshotResult(b"", False)

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        return iter(())

    def close(self) -> None:
        pass


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_push(tree: str) -> dict[str, float]:
    key = ArchiveKey.generate()
    peer = Discard()
    pusher = Pusher(key, peer, ChunkerParams())  # type: ignore[arg-type]
    cpu0, main0, t0 = cpu_seconds(), time.thread_time(), time.perf_counter()
    stats = pusher.run(tree, 1)
    wall = time.perf_counter() - t0
    cpu, main = cpu_seconds() - cpu0, time.thread_time() - main0
    gib = stats.plaintext_bytes / GiB
    return {
        "wall_s": round(wall, 2),
        "mb_s": round(stats.plaintext_bytes / wall / 1e6, 1),
        "cpu_s_per_gib": round(cpu / gib, 3),
        "main_cpu_s_per_gib": round(main / gib, 3),
        "chunks": stats.chunks,
        "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load1": os.getloadavg()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tree")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tune_allocator(arenas=8 * (os.cpu_count() or 1), keep_bytes=256 << 20)  # as push does
    for _ in range(args.repeat):
        print(json.dumps(one_push(args.tree)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
