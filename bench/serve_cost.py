"""GetChunks alone: CPU-seconds per GiB of a real node serving and of this process fetching,
checking and decrypting (restore's fetch path without the tree or the files).

    .venv/bin/python bench/serve_cost.py --size 256M --rounds 3 [--plaintext] [--no-decode]

Starts one `samizdat-node` on loopback (TLS unless --plaintext), stores encrypted chunks of
random (incompressible) plaintexts of 64 KiB - 1 MiB, as the bench's videos give, then
fetches all of them `--rounds` times through restore's own scheduler (SourcePool and
OrderedFetch over a GrpcPeer: 2 streams, jobs of 64 ids or 4 MiB, every blob checked against
its id and decrypted), in an order unrelated to the packs' (as a file's chunks are). Prints
per round the wall time, the CPU-s/GiB of the node and of this process and the minor page
faults of each per GiB; medians at the end. glibc malloc is tuned as the CLI's restore tunes
it (samizdat.core.memory). `--no-decode` replaces the codec with one that only checks the
id (BLAKE3).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_data import parse_size  # noqa: E402
from transport import own_cpu, start_node  # noqa: E402

from samizdat.client.fetch import SourcePool  # noqa: E402
from samizdat.core.codec import ChunkCodec, verify_blob  # noqa: E402
from samizdat.core.ids import ArchiveId  # noqa: E402
from samizdat.core.keys import ArchiveKey  # noqa: E402
from samizdat.core.memory import tune_allocator  # noqa: E402
from samizdat.rpc.grpcpeer import GrpcPeer  # noqa: E402
from samizdat.rpc.limits import MAX_BATCH_BYTES  # noqa: E402
from samizdat.rpc.remote import NodeClient  # noqa: E402
from samizdat.rpc.wire import put_chunks_request  # noqa: E402

GIB = 1 << 30


class _CheckOnly(ChunkCodec):
    def decode(self, chunk_id: bytes, blob: bytes | memoryview) -> bytes | memoryview:
        verify_blob(chunk_id, blob)
        return blob


def make_chunks(
    codec: ChunkCodec, rng: random.Random, total: int
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, int]]]:
    """(id, blob) pairs and the refs (id, plaintext length) of about `total` plaintext bytes."""
    chunks, refs, size = [], [], 0
    while size < total:
        plain = rng.randbytes(rng.randint(64 << 10, 1 << 20))
        chunk_id, blob = codec.encode(plain)
        chunks.append((bytes(chunk_id), blob))
        refs.append((bytes(chunk_id), len(plain)))
        size += len(plain)
    return chunks, refs


def store(client: NodeClient, archive_id: ArchiveId, chunks: list[tuple[bytes, bytes]]) -> None:
    requests: list[bytes] = []
    batch: list[tuple[bytes, bytes]] = []
    size = 0
    for chunk in chunks:
        if batch and size + len(chunk[1]) > MAX_BATCH_BYTES:
            requests.append(put_chunks_request(archive_id, batch))
            batch, size = [], 0
        batch.append(chunk)
        size += len(chunk[1])
    requests.append(put_chunks_request(archive_id, batch))
    client.put_chunks(requests)


def own_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def node_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="256M", help="plaintext bytes (default 256M)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plaintext", action="store_true", help="no TLS (for TLS's share)")
    parser.add_argument("--no-decode", action="store_true", help="check ids only, no AES-GCM")
    args = parser.parse_args()
    tune_allocator()  # as the CLI's restore does
    total, rng = parse_size(args.size), random.Random(args.seed)
    key = ArchiveKey.generate()
    codec = _CheckOnly(key) if args.no_decode else ChunkCodec(key)
    chunks, refs = make_chunks(ChunkCodec(key), rng, total)
    plain = sum(n for _, n in refs) / GIB
    with tempfile.TemporaryDirectory(prefix="samizdat-serve-") as tmp:
        node, proc, address = start_node(Path(tmp), key, args.plaintext)
        writer = NodeClient(address, key)
        store(writer, key.archive_id, chunks)
        writer.close()
        del chunks
        pool = SourcePool([GrpcPeer(NodeClient(address, key))])
        rows = []
        try:
            for n in range(args.rounds):
                rng.shuffle(refs)
                node_before, own_before, start = sum(proc.cpu_times()[:4]), own_cpu(), time.time()
                faults, nfaults = own_faults(), node_faults(proc.pid)
                asked = [(i, None) for i, _ in refs] if args.no_decode else refs
                with pool.fetch(codec, asked) as fetch:
                    for _ in refs:
                        fetch.next()
                wall = time.time() - start
                node_cpu = (sum(proc.cpu_times()[:4]) - node_before) / plain
                own = (own_cpu() - own_before) / plain
                rows.append((wall, own, node_cpu))
                print(
                    f"round {n}: {plain * GIB / wall / 1e6:6.0f} MB/s  fetcher {own:.2f}  "
                    f"node {node_cpu:.2f} CPU-s/GiB; fetcher page faults "
                    f"{(own_faults() - faults) / plain:,.0f}/GiB, node "
                    f"{(node_faults(proc.pid) - nfaults) / plain:,.0f}/GiB",
                    flush=True,
                )
        finally:
            pool.close()
            node.stop()
    _, fetchers, nodes = zip(*rows, strict=True)
    print(
        f"median: fetcher {statistics.median(fetchers):.2f}  node {statistics.median(nodes):.2f} "
        f"CPU-s/GiB ({'plaintext' if args.plaintext else 'TLS'}, load "
        f"{psutil.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
