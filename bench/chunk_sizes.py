#!/usr/bin/env python3
"""Chunk-size study: FastCDC parameters vs. store growth after edits and chunk count.

For each (min, avg, max) setting it chunks every file of v1 and v2 of the bench data with the
real `samizdat.core.chunker.Chunker` (keyed decision over FastCDC candidates, each file on its
own; `--plain-fastcdc`: the FastCDC-only chunker used before the format step), identifies
chunks by BLAKE3 of their plaintext (equal plaintext <=> equal blob under one archive key, so
this counts exactly the chunks a node would store), and reports:

- v1 chunks: unique chunks of v1 (and how many come from the large files);
- new in v2: chunks and plaintext bytes of v2 not already in v1; "stored" adds zstd (level 3,
  kept only if it shrinks, as the codec does) and the 30-byte blob overhead: the store growth;
- overhead: new bytes minus the bytes the edits actually inserted (the cost of re-chunking
  around each edit point);
- chunks/100GB: the large-file chunk count scaled to 100 GB of such files (the chunk count of
  the design's archive; small files add one chunk each whatever the setting);
- list MB/snap: chunk-list bytes each snapshot of a 100 GB archive adds (~38 B per id; lists
  after the first changed file are rewritten);
- MB/s: single-thread chunking throughput (FastCDC + copy out, hashing excluded), page cache.

Settings marked restic-like, borg-like and casync-like use those tools' size parameters with
FastCDC (restic and borg use other rolling hashes; their boundary statistics are similar).

Usage: python bench/chunk_sizes.py [--data DIR | --size 2G] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import blake3
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_data  # noqa: E402

from samizdat.core.chunker import (  # noqa: E402
    DEFAULT_AVG,
    DEFAULT_MAX,
    DEFAULT_MIN,
    Chunker,
    ChunkerParams,
)

K, M = 1024, 1024 * 1024
SEED = 0x5EED_CAFE_F00D_1234
CUT_KEY = bytes(range(32))
BLOB_OVERHEAD = 2 + 12 + 16  # header + nonce + GCM tag
LIST_BYTES_PER_ID = 38  # ChunkList: id (32 + 2 framing) + size varint (~4)
BIG_FILE = 16 * M  # files at least this large count as "large" (videos)

SETTINGS: list[tuple[str, int, int, int]] = [
    ("casync-like", 16 * K, 64 * K, 256 * K),
    ("", 32 * K, 64 * K, 512 * K),
    ("", 64 * K, 128 * K, 1 * M),
    ("", 64 * K, 256 * K, 1 * M),
    ("", 128 * K, 256 * K, 2 * M),
    ("", 128 * K, 384 * K, 2 * M),
    ("", 128 * K, 512 * K, 2 * M),
    ("", 256 * K, 512 * K, 4 * M),
    ("", 256 * K, 1 * M, 4 * M),
    ("restic-like", 512 * K, 1 * M, 8 * M),
    ("borg-like", 512 * K, 2 * M, 8 * M),
]


@dataclass
class Result:
    label: str
    min_size: int
    avg_size: int
    max_size: int
    v1_chunks: int
    v1_big_chunks: int
    v1_big_bytes: int
    mean_big_chunk: float
    v2_new_chunks: int
    v2_new_bytes: int
    v2_new_stored: int
    overhead_bytes: int
    chunks_per_100gb: int
    list_mb_per_snapshot_100gb: float
    chunk_mb_s: float


def walk_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names):
            p = Path(dirpath) / n
            if p.is_file() and not p.is_symlink():
                out.append(p)
    return out


def fmt_size(n: int) -> str:
    return f"{n // M}M" if n % M == 0 else f"{n // K}K"


class PlainFastCDC:
    """The chunker before the keyed decision (ChunkerParams.algorithm 0), for comparison."""

    def __init__(self, params: ChunkerParams) -> None:
        from pyfastcdc.cy import FastCDC

        self._cdc = FastCDC(
            max(256, params.avg_size - params.min_size),
            min_size=params.min_size,
            max_size=params.max_size,
            normalized_chunking=1,
            seed=SEED,
        )

    def iter_chunks(self, stream: BinaryIO) -> Iterator[bytes]:
        for chunk in self._cdc.cut_stream(stream):
            yield bytes(chunk.data)


def make_chunker(params: ChunkerParams, plain_fastcdc: bool) -> Chunker | PlainFastCDC:
    return PlainFastCDC(params) if plain_fastcdc else Chunker(SEED, CUT_KEY, params)


def study_one(
    label: str,
    params: ChunkerParams,
    v1: list[Path],
    v2: list[Path],
    inserted: int,
    plain_fastcdc: bool = False,
) -> Result:
    chunker = make_chunker(params, plain_fastcdc)
    seen: set[bytes] = set()
    big_chunks = big_bytes = 0
    chunk_time = 0.0
    chunk_bytes = 0

    def chunks_of(path: Path):  # yields plaintext chunks, timing the chunker only
        nonlocal chunk_time, chunk_bytes
        with open(path, "rb") as f:
            it = chunker.iter_chunks(f)
            while True:
                t = time.perf_counter()
                data = next(it, None)
                chunk_time += time.perf_counter() - t
                if data is None:
                    return
                chunk_bytes += len(data)
                yield data

    for p in v1:
        big = p.stat().st_size >= BIG_FILE
        for data in chunks_of(p):
            h = blake3.blake3(data).digest()
            if h not in seen:
                seen.add(h)
                if big:
                    big_chunks += 1
                    big_bytes += len(data)
    v1_chunks = len(seen)
    cctx = zstandard.ZstdCompressor(level=3)
    new_chunks = new_bytes = new_stored = 0
    for p in v2:
        for data in chunks_of(p):
            h = blake3.blake3(data).digest()
            if h in seen:
                continue
            seen.add(h)
            new_chunks += 1
            new_bytes += len(data)
            z = len(cctx.compress(data))
            new_stored += min(z, len(data)) + BLOB_OVERHEAD
    mean_big = big_bytes / max(1, big_chunks)
    per_100gb = int(100e9 / mean_big)
    return Result(
        label=label,
        min_size=params.min_size,
        avg_size=params.avg_size,
        max_size=params.max_size,
        v1_chunks=v1_chunks,
        v1_big_chunks=big_chunks,
        v1_big_bytes=big_bytes,
        mean_big_chunk=round(mean_big),
        v2_new_chunks=new_chunks,
        v2_new_bytes=new_bytes,
        v2_new_stored=new_stored,
        overhead_bytes=new_bytes - inserted,
        chunks_per_100gb=per_100gb,
        list_mb_per_snapshot_100gb=round(per_100gb * LIST_BYTES_PER_ID / 1e6, 1),
        chunk_mb_s=round(chunk_bytes / chunk_time / 1e6) if chunk_time else 0.0,
    )


def print_table(results: list[Result], current: tuple[int, int, int]) -> None:
    base = min(
        (r for r in results if r.label in ("restic-like", "borg-like")),
        key=lambda r: r.v2_new_stored,
        default=None,
    )
    head = (
        f"{'setting':<12} {'min/avg/max':<14} {'v1 chunks':>9} {'mean big':>9} "
        f"{'v2 new':>7} {'new MiB':>8} {'stored MiB':>10} {'vs best peer':>12} "
        f"{'overhead MiB':>12} {'chunks/100GB':>12} {'list MB/snap':>12} {'MB/s':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        mark = " *" if (r.min_size, r.avg_size, r.max_size) == current else ""
        ratio = f"{r.v2_new_stored / base.v2_new_stored:.2f}x" if base else "-"
        sizes = "/".join(fmt_size(x) for x in (r.min_size, r.avg_size, r.max_size))
        print(
            f"{(r.label + mark):<12} {sizes:<14}"
            f" {r.v1_chunks:>9} {r.mean_big_chunk / K:>7.0f}Ki {r.v2_new_chunks:>7} "
            f"{r.v2_new_bytes / M:>8.1f} {r.v2_new_stored / M:>10.1f} {ratio:>12} "
            f"{r.overhead_bytes / M:>12.1f} {r.chunks_per_100gb:>12,} "
            f"{r.list_mb_per_snapshot_100gb:>12.1f} {r.chunk_mb_s:>6.0f}"
        )
    print(
        "* = current defaults in samizdat.core.chunker; 'vs best peer' = stored growth relative to "
        "the better of restic-like and borg-like"
    )


def parse_setting(text: str) -> tuple[str, int, int, int]:
    parts = [gen_data.parse_size(p) for p in text.split("/")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("setting is MIN/AVG/MAX, e.g. 128K/256K/2M")
    return ("", *parts)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="bench data dir with v1/, v2/, manifest.json (default: generate)",
    )
    ap.add_argument("--size", type=gen_data.parse_size, default=2 * gen_data.GiB)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--setting",
        type=parse_setting,
        action="append",
        help="MIN/AVG/MAX to study instead of the built-in list (repeatable)",
    )
    ap.add_argument(
        "--plain-fastcdc",
        action="store_true",
        help="study the chunker before the keyed decision (FastCDC alone) for comparison",
    )
    ap.add_argument("--json", type=Path, default=None, help="write results here")
    args = ap.parse_args(argv)
    data = args.data or gen_data.default_out(args.size, args.seed)
    manifest = (
        gen_data.generate(args.size, args.seed, data)
        if args.data is None
        else json.loads((data / "manifest.json").read_text())
    )
    v1, v2 = walk_files(data / "v1"), walk_files(data / "v2")
    inserted = manifest["inserted_bytes"] + sum(
        (data / "v2" / p).stat().st_size for p in manifest["edits"]["added"]
    )
    print(
        f"data {data}: v1 {len(v1)} files {gen_data.human(manifest['v1']['bytes'])}, "
        f"v2 {len(v2)} files; edits insert {gen_data.human(inserted)} of new content "
        f"(+ {len(manifest['edits']['notes_edited'])} edited notes)"
    )
    current = (DEFAULT_MIN, DEFAULT_AVG, DEFAULT_MAX)
    results = []
    for label, mn, avg, mx in args.setting or SETTINGS:
        t = time.perf_counter()
        r = study_one(label, ChunkerParams(mn, avg, mx), v1, v2, inserted, args.plain_fastcdc)
        results.append(r)
        print(
            f"  {fmt_size(mn)}/{fmt_size(avg)}/{fmt_size(mx)} done in "
            f"{time.perf_counter() - t:.1f}s",
            file=sys.stderr,
        )
    print()
    print_table(results, current)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "data": str(data),
                    "manifest_size": manifest["size"],
                    "seed": manifest["seed"],
                    "inserted_bytes": inserted,
                    "current_defaults": current,
                    "plain_fastcdc": args.plain_fastcdc,
                    "results": [asdict(r) for r in results],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
