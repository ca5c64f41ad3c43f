#!/usr/bin/env python3
"""The puller's CPU per GiB, measured in process, without the node's start-up.

    python bench/pull_cost.py RUN_DIR [--streams 4] [--repeat 3]

RUN_DIR is a run directory kept by `bench.py --keep` after its `backfill` step (it holds n1,
the source, and n2, a peer n1 serves). This starts n1, then pulls every chunk n1 holds into a
new store in a temporary directory as a node's replication does (GrpcPeer.get_chunks of at
most 64 ids per call on `--streams` threads, ChunkStore.put_chunks verifying every blob, one
pack per 32 MiB), and prints the puller's CPU seconds (user + system) per GiB pulled. The
bench's back-fill figure also counts the start of the node process and its first listing;
this one is the steady-state cost of the pull path alone, for A/B runs of a change.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from samizdat.core.memory import tune_allocator
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.rpc.remote import NodeClient, peer_tokens
from samizdat.server.config import load_config
from samizdat.server.identity import load_identity
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb

FETCH_BATCH = 64


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pull_all(peer: GrpcPeer, ids: list[bytes], streams: int) -> tuple[int, float, float]:
    """Pull `ids` into a new store; return (bytes, wall seconds, CPU seconds)."""
    root = Path(tempfile.mkdtemp(prefix="pull-cost-"))
    store = ChunkStore(root / "data")
    pulled = [0]

    def job(batch: list[bytes]) -> None:
        for part in peer.get_chunks(batch):
            store.put_chunks(part.chunks)
            pulled[0] += sum(len(blob) for _, blob in part.chunks)

    try:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        with ThreadPoolExecutor(streams) as pool:
            list(pool.map(job, [ids[i : i + FETCH_BATCH] for i in range(0, len(ids), FETCH_BATCH)]))
        store.sync_chunks()
        return pulled[0], time.perf_counter() - t0, cpu_seconds() - cpu0
    finally:
        store.close()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tune_allocator()  # as the node does
    n1, n2 = args.run_dir / "n1", args.run_dir / "n2"
    source = ChunkStore(load_config(n1).data_dir, read_only=True)
    ids = [bytes(chunk_id) for chunk_id, _ in source.iter_chunk_ids()]
    source.close()
    ready = args.run_dir / "pull-cost.ready"
    ready.unlink(missing_ok=True)
    node = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("samizdat-node")),
            "serve",
            str(n1),
            "--log-level",
            "warning",
            "--ready-file",
            str(ready),
        ]  # fmt: skip
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if node.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("n1 did not start")
            time.sleep(0.05)
        port = int(load_config(n1).listen.rsplit(":", 1)[1])
        address = NodeAddress("127.0.0.1", port, load_identity(n1).node_id)
        client = NodeClient(address, tokens=peer_tokens(load_identity(n2).key))
        peer = GrpcPeer(client, has_role=pb.ROLE_PEER)
        for _ in range(args.repeat):
            nbytes, wall, cpu = pull_all(peer, ids, args.streams)
            gib = nbytes / (1 << 30)
            print(
                f"{nbytes / 1e6:.0f} MB in {wall:.2f} s ({nbytes / 1e6 / wall:.0f} MB/s), "
                f"puller {cpu / gib:.2f} CPU-s/GiB"
            )
        peer.close()
    finally:
        node.terminate()
        node.wait()
        ready.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
