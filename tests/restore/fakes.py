"""In-process chunk sources for fetch tests: honest, slow, dying, lying, stalling."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence

from samizdat.core.codec import ChunkCodec
from samizdat.core.errors import PeerUnavailable
from samizdat.core.keys import ArchiveKey
from samizdat.core.peer import ChunkPart, CustodyPage, SnapshotPage


def make_chunks(
    key: ArchiveKey, count: int, size: int = 20_000, seed: int = 1
) -> tuple[list[tuple[bytes, int]], dict[bytes, bytes], dict[bytes, bytes]]:
    """(refs in order, {id: blob}, {id: plaintext}) for `count` random chunks."""
    codec = ChunkCodec(key)
    refs, blobs, plain = [], {}, {}
    rnd = __import__("random").Random(seed)
    for _ in range(count):
        data = rnd.randbytes(size + rnd.randrange(size))
        chunk_id, blob = codec.encode(data)
        refs.append((bytes(chunk_id), len(data)))
        blobs[bytes(chunk_id)] = blob
        plain[bytes(chunk_id)] = data
    return refs, blobs, plain


class FakeSource:
    """A ChunkSource over a dict, with knobs for misbehaviour.

    delay: seconds per get_chunks call; die_after: raise PeerUnavailable once this many chunks
    were served in total (a node killed mid-stream); corrupt: ids whose bytes it flips;
    lacks: ids it does not hold although it claims the whole snapshot; stall_after: calls
    after which every call blocks until `release` is set; extra: an id it sends unasked;
    local: a copy on a disk at hand (`damage_is_local`), whose `corrupt` ids are damage;
    gate: a barrier its first call waits at (sources sharing one all get work, however the
    threads are scheduled).
    """

    def __init__(
        self,
        name: str,
        blobs: dict[bytes, bytes],
        *,
        delay: float = 0.0,
        die_after: int | None = None,
        corrupt: set[bytes] | None = None,
        lacks: set[bytes] | None = None,
        stall_after: int | None = None,
        extra: bytes | None = None,
        local: bool = False,
        gate: threading.Barrier | None = None,
    ) -> None:
        self.name, self.blobs, self.delay = name, blobs, delay
        self.die_after, self.corrupt, self.lacks = die_after, corrupt or set(), lacks or set()
        self.stall_after, self.extra, self.local = stall_after, extra, local
        self.gate = gate
        self.release = threading.Event()
        self.served = 0
        self.calls = 0
        self.requested: list[bytes] = []
        self.has_calls = 0
        self.lock = threading.Lock()

    @property
    def label(self) -> str:
        return self.name

    @property
    def damage_is_local(self) -> bool:
        return self.local

    def list_page(self, archive_id: bytes, after: int, max_count: int = 0) -> SnapshotPage:
        return SnapshotPage([], after)

    def custody_page(self, after: int) -> CustodyPage:
        return CustodyPage([], after)

    def has_chunks(self, ids: Sequence[bytes]) -> list[bool]:
        self.has_calls += 1
        return [i in self.blobs and i not in self.lacks for i in ids]

    def get_chunks(self, ids: Sequence[bytes]) -> Iterator[ChunkPart]:
        with self.lock:
            self.calls += 1
            calls = self.calls
            self.requested.extend(ids)
        if self.gate is not None and calls == 1:
            self.gate.wait(30)
        if self.stall_after is not None and calls > self.stall_after:
            self.release.wait(30)
        if self.delay:
            time.sleep(self.delay)
        if self.extra is not None:
            yield ChunkPart([(self.extra, self.blobs[self.extra])])
        for chunk_id in ids:
            if chunk_id not in self.blobs or chunk_id in self.lacks:
                continue
            with self.lock:
                if self.die_after is not None and self.served >= self.die_after:
                    raise PeerUnavailable(
                        f"node {self.name} is unreachable or failed: connection reset"
                    )
                self.served += 1
            blob = self.blobs[chunk_id]
            if chunk_id in self.corrupt:
                blob = blob[:-1] + bytes([blob[-1] ^ 0x40])
            yield ChunkPart([(chunk_id, blob)])

    def close(self) -> None:
        self.release.set()


def random_key() -> ArchiveKey:
    return ArchiveKey.generate()


def big_random(n: int) -> bytes:
    return os.urandom(n)
