"""PutChunks alone: CPU-seconds per GiB of the sender and of a real node, without chunking,
encryption or files (the transport, the node's receive path and its store).

    .venv/bin/python bench/transport.py --size 256M --rounds 3 [--plaintext]

Starts one `samizdat-node` on loopback (TLS unless --plaintext), then pushes `--rounds` sets
of fresh random chunks (sizes like the bench's v1 mix: 1/4 small, the rest 64 KiB - 1 MiB)
with NodeClient.put_chunks, requests pre-serialized as the CLI sends them. Prints per round
the wall time and CPU-s/GiB of this process (the sender) and of the node; the median of
each at the end. Chunks are generated before a round is timed.
"""

from __future__ import annotations

import argparse
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import blake3
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_data import parse_size  # noqa: E402

from samizdat.core.keys import ArchiveKey  # noqa: E402
from samizdat.rpc.address import NodeAddress  # noqa: E402
from samizdat.rpc.limits import MAX_BATCH_BYTES  # noqa: E402
from samizdat.rpc.wire import put_chunks_request  # noqa: E402
from tests.nodeproc import NodeProcess  # noqa: E402

GIB = 1 << 30


def make_chunks(rng: random.Random, total: int) -> list[tuple[bytes, bytes]]:
    chunks, size = [], 0
    while size < total:
        n = rng.randint(512, 16 << 10) if rng.random() < 0.25 else rng.randint(64 << 10, 1 << 20)
        blob = rng.randbytes(n)
        chunks.append((blake3.blake3(blob).digest(), blob))
        size += n
    return chunks


def batches(archive_id: bytes, chunks: list[tuple[bytes, bytes]]) -> list[bytes]:
    out, batch, size = [], [], 0
    for chunk in chunks:
        if batch and size + len(chunk[1]) > MAX_BATCH_BYTES:
            out.append(put_chunks_request(archive_id, batch))
            batch, size = [], 0
        batch.append(chunk)
        size += len(chunk[1])
    out.append(put_chunks_request(archive_id, batch))
    return out


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def start_node(
    tmp: Path, key: ArchiveKey, plaintext: bool
) -> tuple[NodeProcess, psutil.Process, NodeAddress]:
    """One real node hosting `key`'s archive (TLS unless `plaintext`), started: the node,
    its process (for its CPU) and the address to reach it. The caller stops it."""
    node = NodeProcess(tmp / "n1").init()
    node.host(key.archive_id.hex())
    if plaintext:
        toml = node.directory / "node.toml"
        toml.write_text(toml.read_text().replace("tls = true", "tls = false"))
    node.start()
    assert node.proc is not None
    return (
        node,
        psutil.Process(node.proc.pid),
        NodeAddress.parse(node.hostport if plaintext else node.address),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="256M", help="bytes per round (default 256M)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plaintext", action="store_true", help="no TLS (for TLS's share)")
    parser.add_argument(
        "--profile", type=Path, help="py-spy profile of the node (collapsed stacks)"
    )
    args = parser.parse_args()
    total, rng = parse_size(args.size), random.Random(args.seed)
    key = ArchiveKey.generate()
    with tempfile.TemporaryDirectory(prefix="samizdat-transport-") as tmp:
        node, proc, address = start_node(Path(tmp), key, args.plaintext)
        from samizdat.rpc.remote import NodeClient

        client = NodeClient(address, key)
        rows = []
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--native",
                    "--idle",
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(args.profile),
                    "-p",
                    str(node.proc.pid),
                ],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(1)
        try:
            for n in range(args.rounds):
                requests = batches(key.archive_id, make_chunks(rng, total))
                nbytes = sum(map(len, requests)) / GIB
                node_before, own_before, start = sum(proc.cpu_times()[:4]), own_cpu(), time.time()
                reply = client.put_chunks(requests)
                wall = time.time() - start
                node_cpu = sum(proc.cpu_times()[:4]) - node_before
                own = own_cpu() - own_before
                rows.append((wall, own / nbytes, node_cpu / nbytes))
                print(
                    f"round {n}: {nbytes * GIB / wall / 1e6:6.0f} MB/s  sender "
                    f"{own / nbytes:.2f}  node {node_cpu / nbytes:.2f} CPU-s/GiB "
                    f"({reply.chunks_stored} chunks)",
                    flush=True,
                )
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            client.close()
            node.stop()
    walls, senders, nodes = zip(*rows, strict=True)
    print(
        f"median: sender {statistics.median(senders):.2f}  node {statistics.median(nodes):.2f} "
        f"CPU-s/GiB  ({'plaintext' if args.plaintext else 'TLS'}, load "
        f"{psutil.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
