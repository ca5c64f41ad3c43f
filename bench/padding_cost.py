#!/usr/bin/env python3
"""Storage cost of the version 2 format on the bench data: padding, and the keyed chunker.

Chunks v1 and v2 of the bench data (bench/gen_data.py) with the real chunker and zstd level 1
(as the codec does), and sums, over the distinct chunks a node would store:

- unpadded: payload + 30 bytes per blob (version 1 sizes);
- padded: 30 + padded_length(payload + 2) (version 2 sizes: flags byte, marker, bucket);

for v1 (a first push) and for the chunks v2 adds (store growth), split into small blobs
(payload up to 64 KiB: power-of-two buckets) and large ones (Padmé). Chunks are named by a
hash of their plaintext, which counts exactly what a node stores under one archive key.

Usage: python bench/padding_cost.py [--data DIR | --size 256M] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import blake3
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_data  # noqa: E402
from chunk_sizes import CUT_KEY, SEED, walk_files  # noqa: E402

from samizdat.core.chunker import Chunker, ChunkerParams  # noqa: E402
from samizdat.core.codec import DEFAULT_ZSTD_LEVEL, OVERHEAD  # noqa: E402
from samizdat.core.padding import SMALL_LIMIT, padded_length  # noqa: E402


def tally(root: Path, seen: dict[bytes, int]) -> dict[str, int]:
    """Add the distinct chunks of `root` not in `seen`; return their byte sums."""
    chunker = Chunker(SEED, CUT_KEY, ChunkerParams())
    zstd = zstandard.ZstdCompressor(level=DEFAULT_ZSTD_LEVEL)
    out = dict.fromkeys(
        ("chunks", "plaintext", "unpadded", "padded", "small_unpadded", "small_padded"), 0
    )
    for path in walk_files(root):
        with path.open("rb") as f:
            for chunk in chunker.iter_chunks(f):
                name = blake3.blake3(chunk).digest()
                if name in seen:
                    continue
                payload = min(len(zstd.compress(chunk)), len(chunk))
                seen[name] = payload
                unpadded, padded = OVERHEAD + payload, OVERHEAD + padded_length(payload + 2)
                out["chunks"] += 1
                out["plaintext"] += len(chunk)
                out["unpadded"] += unpadded
                out["padded"] += padded
                if payload + 2 <= SMALL_LIMIT:
                    out["small_unpadded"] += unpadded
                    out["small_padded"] += padded
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--size", default="256M")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = args.data
    if data is None:
        size = gen_data.parse_size(args.size)
        data = gen_data.default_out(size, 1)
        gen_data.generate(size, 1, data)
    seen: dict[bytes, int] = {}
    results = {"v1": tally(data / "v1", seen), "v2 adds": tally(data / "v2", seen)}
    for name, r in results.items():
        cost = r["padded"] / r["unpadded"] - 1
        small = r["small_padded"] - r["small_unpadded"]
        print(
            f"{name:8} {r['chunks']:6} chunks  stored {r['unpadded'] / 2**20:9.2f} MiB unpadded"
            f" -> {r['padded'] / 2**20:9.2f} MiB padded (+{cost:.2%});"
            f" small blobs add {small / 2**20:.2f} MiB of that"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
