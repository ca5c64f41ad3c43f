"""Content-defined chunking whose cut points a known file does not reveal without the key.

Two steps per chunk (docs/format.md, "Chunking"):

1. **Candidates**: pyfastcdc (FastCDC 2020 in Cython; its gear scan runs without the GIL),
   seeded with the archive's 64-bit chunker seed, cuts the bytes after the chunk's minimum
   size into small pieces, about `(avg - min) / 24` bytes apart; each piece's end is a
   candidate cut point. Candidates depend only on nearby content, so edits resynchronize.
2. **Keyed decision**: a candidate becomes the cut if BLAKE3 keyed with the archive's
   chunker cut key (256 bits) over the 64 bytes before it, read as a u64, is below a
   threshold: 1/(2n) before the average size, 4/(2n) after it (n = candidates from minimum
   to average), else the chunk ends at the maximum size.

Step 2 is the fix of Truong, Merz, Scarlata, Günther and Paterson ("Breaking and Fixing
Content-Defined Chunking", CCS 2025) for rolling-hash chunkers: the cut decision passes
through a pseudo-random function, so observed cut points give no equations about the
secrets (the seeded gear hash alone can be recovered from chunk sizes of known data, as the
paper and Alexeev, Percival and Zhang, eprint 2025/532, show), and without the cut key the
cut points of a known file cannot be predicted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import blake3
from pyfastcdc.cy import FastCDC

from samizdat.core.keys import ArchiveKey
from samizdat.v1 import records_pb2 as pb

# Chosen by measurement on the bench data (bench/README.md, "Chunk sizes").
DEFAULT_MIN = 64 * 1024
DEFAULT_AVG = 256 * 1024
DEFAULT_MAX = 1024 * 1024
READ_SIZE = 8 * 1024 * 1024
WINDOW = 64  # bytes before a candidate that the keyed decision reads (the gear hash's span)
CANDIDATES_TO_AVG = 24
AFTER_AVG_FACTOR = 4
ALGORITHM = 1  # ChunkerParams.algorithm: keyed candidates (0: FastCDC, before the format step)
_SEED_MASK = (1 << 63) - 1
# Read buffers a Chunker hands out views of; while chunks still refer to all of them,
# iter_chunks copies chunks out of one more (a medium file's chunks waiting in the push
# pipeline must not cost a fresh 9 MiB buffer per file: review finding F1 of 2026-12-01).
KEPT_BUFFERS = 4


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...


@dataclass(frozen=True)
class ChunkerParams:
    min_size: int = DEFAULT_MIN
    avg_size: int = DEFAULT_AVG
    max_size: int = DEFAULT_MAX

    def to_proto(self) -> pb.ChunkerParams:
        return pb.ChunkerParams(
            min_size=self.min_size,
            avg_size=self.avg_size,
            max_size=self.max_size,
            algorithm=ALGORITHM,
        )


class Chunker:
    """Splits byte streams into content-defined chunks. Not shared between threads."""

    def __init__(self, seed: int, cut_key: bytes, params: ChunkerParams = ChunkerParams()) -> None:
        if len(cut_key) != 32:
            raise ValueError("the chunker cut key must be 32 bytes")
        self.params = params
        gap = max(256, (params.avg_size - params.min_size) // CANDIDATES_TO_AVG)
        # pyfastcdc computes `seed << 1` as a uint64 and raises OverflowError for seeds with
        # the top bit set (half of all keys), and ignores a seed of 0: keep 63 bits, never 0.
        self._candidates = FastCDC(
            gap,
            min_size=WINDOW,
            max_size=max(1024, 4 * gap),
            normalized_chunking=0,
            seed=(seed & _SEED_MASK) or 1,
        )
        before_avg = max(1, (params.avg_size - params.min_size) // gap)
        self._below_avg = (1 << 64) // (2 * before_avg)
        self._above_avg = min((1 << 64) - 1, self._below_avg * AFTER_AVG_FACTOR)
        self._keyed = blake3.blake3(key=cut_key)  # copied per candidate: no key setup each time
        self._buffers: list[bytearray] = []  # iter_chunks' read buffers, reused
        self._scratch = bytearray()  # and the one it copies chunks out of when all are held

    @classmethod
    def for_archive(cls, key: ArchiveKey, params: ChunkerParams = ChunkerParams()) -> Chunker:
        return cls(key.chunker_seed, key.chunker_cut_key, params)

    def _chunk_end(self, view: memoryview, start: int) -> int:
        """Where the chunk starting at `start` ends, given the bytes in `view` (all the rest
        of the input, or at least max_size of it)."""
        limit = min(len(view), start + self.params.max_size)
        first = start + self.params.min_size
        if first >= limit:
            return limit
        avg_end = start + self.params.avg_size
        keyed, below_avg, above_avg = self._keyed, self._below_avg, self._above_avg
        end: int = first
        for piece in self._candidates.cut_buf(view[first:limit]):
            end += piece.length  # pieces follow each other from `first`
            if end >= limit:
                break
            hasher = keyed.copy()
            hasher.update(view[max(start, end - WINDOW) : end])
            value = int.from_bytes(hasher.digest(8), "little")
            if value < (below_avg if end < avg_end else above_avg):
                return end
        return limit

    def iter_buffer(self, data: bytes | memoryview) -> Iterator[bytes]:
        """Yield the chunks of an in-memory buffer as independent bytes objects."""
        view = memoryview(data)
        start = 0
        while start < len(view):
            end = self._chunk_end(view, start)
            if start == 0 and end == len(view) and isinstance(data, bytes):
                yield data  # one chunk: the buffer itself, not a copy
                return
            yield bytes(view[start:end])
            start = end

    def iter_chunks(
        self, stream: BinaryIO, read_size: int = READ_SIZE, hasher: Hasher | None = None
    ) -> Iterator[bytes | memoryview]:
        """Yield the chunks of `stream`; the cut points are those of iter_buffer over the
        whole stream. One stream at a time per Chunker.

        `hasher`, if given, is updated with the bytes of the chunks yielded, in order, a read
        buffer's worth at a time once all of its chunks are yielded: one call (and one GIL
        round trip) per buffer instead of one per chunk.

        Chunks are read-only views into the chunker's read buffers, not copies, while one of
        its KEPT_BUFFERS buffers is free: a buffer is read into again only once no view of it
        is left (see _read_buffer), so a chunk stays valid for as long as it is referenced.
        While chunks still refer to all of them, it reads into one scratch buffer and yields
        copies (`bytes`), as it did before views: memory stays bounded by KEPT_BUFFERS + 1
        buffers of read_size + max_size, however long chunks are kept."""
        max_size = self.params.max_size
        size = max_size + read_size
        buf, filled, eof = self._read_buffer(size), 0, False
        while True:
            copies = buf is self._scratch
            with memoryview(buf) as writable:
                while not eof and filled < size:
                    got = _read_into(stream, writable[filled:])
                    eof = not got
                    filled += got or 0
                start = 0
                with writable[:filled].toreadonly() as data:
                    while start < filled and (eof or filled - start >= max_size):
                        end = self._chunk_end(data, start)
                        yield bytes(data[start:end]) if copies else data[start:end]
                        start = end
                    if hasher is not None:
                        hasher.update(data[:start])
                if eof and start >= filled:
                    return
                rest = filled - start
                following = self._read_buffer(size)  # never `buf` unless it is the scratch
                if following is buf:
                    writable[:rest] = writable[start:filled]  # memmove: the rest to the front
                else:
                    following[:rest] = writable[start:filled]
            buf, filled = following, rest

    def _read_buffer(self, size: int) -> bytearray:
        """A read buffer of `size` bytes that no chunk handed out refers to: a kept one, a new
        kept one while fewer than KEPT_BUFFERS exist, else the scratch buffer (whose chunks
        are copies). A memoryview of a bytearray, and every slice of it, holds a reference to
        the bytearray until the last of them is gone, so the reference count tells whether a
        chunk handed out may still be read (CPython's semantics, which this package needs)."""
        if self._buffers and len(self._buffers[0]) != size:
            self._buffers = []
        for buf in self._buffers:
            if sys.getrefcount(buf) <= 3:  # the list, `buf`, getrefcount's argument
                return buf
        if len(self._buffers) < KEPT_BUFFERS:
            self._buffers.append(bytearray(size))
            return self._buffers[-1]
        if len(self._scratch) != size:
            self._scratch = bytearray(size)
        return self._scratch


def _read_into(stream: BinaryIO, into: memoryview) -> int:
    """Fill the start of `into` from `stream`; return the bytes read (0 at the end)."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(into) or 0)
    block = stream.read(len(into))
    into[: len(block)] = block
    return len(block)
