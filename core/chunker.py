"""Content-defined chunking with FastCDC (pyfastcdc, Cython, releases the GIL).

The gear table is perturbed by a 64-bit seed derived from the archive's master secret, so
chunk boundaries of a known file cannot be predicted without the key. Sizes are recorded in
every snapshot (ChunkerParams) and may change between snapshots.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pyfastcdc.cy import FastCDC

from samizdat.v1 import records_pb2 as pb

# Chosen by measurement on the bench data (bench/README.md, "Chunk sizes").
# 64K/256K/1M: measured mean chunk ~275 KiB (~355k chunks per 100 GB of video), store growth
# after shifting edits 18 % below restic-like 512K/1M/8M and 54 % below borg-like 2 MiB.
DEFAULT_MIN = 64 * 1024
DEFAULT_AVG = 256 * 1024
DEFAULT_MAX = 1024 * 1024
READ_SIZE = 8 * 1024 * 1024
_SEED_MASK = (1 << 63) - 1


@dataclass(frozen=True)
class ChunkerParams:
    min_size: int = DEFAULT_MIN
    avg_size: int = DEFAULT_AVG
    max_size: int = DEFAULT_MAX

    def to_proto(self) -> pb.ChunkerParams:
        return pb.ChunkerParams(
            min_size=self.min_size, avg_size=self.avg_size, max_size=self.max_size
        )


class Chunker:
    """Splits byte streams into content-defined chunks. Not shared between threads."""

    def __init__(self, seed: int, params: ChunkerParams = ChunkerParams()) -> None:
        self.params = params
        # pyfastcdc computes `seed << 1` as a uint64 and raises OverflowError for seeds with
        # the top bit set (half of all keys), and ignores a seed of 0: keep 63 bits, never 0.
        seed = (seed & _SEED_MASK) or 1
        # pyfastcdc's avg_size excludes min_size (cut-point skipping); pass the gap.
        self._cdc = FastCDC(
            max(256, params.avg_size - params.min_size),
            min_size=params.min_size,
            max_size=params.max_size,
            normalized_chunking=1,
            seed=seed,
        )

    def iter_chunks(self, stream: BinaryIO) -> Iterator[bytes]:
        """Yield the chunks of `stream` as independent bytes objects (bounded memory)."""
        for chunk in self._cdc.cut_stream(stream):
            yield bytes(chunk.data)

    def iter_buffer(self, data: bytes | memoryview) -> Iterator[bytes]:
        for chunk in self._cdc.cut_buf(data):
            yield bytes(chunk.data)
