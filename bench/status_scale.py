#!/usr/bin/env python3
"""How long `samizdat status` takes on a cluster whose archive has a million chunks.

Builds one node store in process (ChunkStore and the core record API, no network): CHUNKS
tiny synthetic chunks, their chunk lists and SNAPSHOTS signed snapshots referencing growing
prefixes of them (the last one references all), copies the store to the other nodes, starts
all nodes as real `samizdat-node serve` processes (TLS, scrub running at its default rate)
and times:

- one GetStatus RPC per node (what a node returns: O(snapshots), from its counters), in
  wall-clock ms and in the node process's own CPU ms per answer (/proc, over --status-calls);
- one scrape of the second node's Prometheus endpoint (a row per listed snapshot);
- `samizdat status --cluster FILE` and `--json` end to end (a fresh CLI process each time,
  interpreter start-up included), and `samizdat --help` as the start-up baseline;
- optionally `--audit N` (fetches chunk lists and N chunks per node);
- optionally `--compare-cli`: `samizdat status` of another checkout against this one's,
  alternating, --runs pairs (wall and CPU seconds);
- the cost of a no-op replication round of the second node pulling from the first (ms and
  bytes per round, bench/noop.py) on this million-chunk archive.

Many snapshots: `--snapshots 10000 --snapshot-chunks 10 --chunks 100000` gives each snapshot
its own 10 chunks (the default, 0, has snapshot s of S reference the first s/S of all chunks,
which is quadratic in chunk-list entries when S is large).

Usage: python bench/status_scale.py [--chunks 1000000] [--snapshots 3] [--snapshot-chunks 0]
                                    [--nodes 3] [--runs 5] [--status-calls 200] [--audit 100]
                                    [--dir DIR] [--compare-cli OTHER/.venv/bin/samizdat]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import blake3
import tomlkit

from samizdat.core.chunklist import ChunkListBuilder
from samizdat.core.keys import ArchiveKey, save_key
from samizdat.core.records import sign_snapshot
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient
from samizdat.server.custody import NodeCustody
from samizdat.server.snapshots import accept_snapshot
from samizdat.store.chunkstore import ChunkStore
from samizdat.v1 import records_pb2 as pb

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from noop import measure_noop  # noqa: E402

from tests.netfaults import TcpLink  # noqa: E402

BIN = Path(sys.executable).parent
NAMES = [("paris", "FR"), ("berlin", "DE"), ("oslo", "NO"), ("bern", "CH"), ("riga", "LV")]


def sh(*args: str) -> str:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], check=True, capture_output=True, text=True
    ).stdout.strip()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(
    data_dir: Path, key: ArchiveKey, chunks: int, snapshots: int, snapshot_chunks: int = 0
) -> float:
    """Write `chunks` tiny chunks and `snapshots` signed snapshots into a fresh store: snapshot
    s references the first s/`snapshots` of the chunks, or (`snapshot_chunks` > 0) only the
    last `snapshot_chunks` of those."""
    started = time.monotonic()
    store = ChunkStore(data_dir)
    hosted = frozenset({bytes(key.archive_id)})
    custody = NodeCustody(store, lambda: hosted)
    ids: list[bytes] = []
    batch: list[tuple[bytes, bytes]] = []
    for i in range(chunks):
        blob = i.to_bytes(8, "big") + os.urandom(8)
        cid = blake3.blake3(blob).digest()
        ids.append(cid)
        batch.append((cid, blob))
        if len(batch) == 50_000:
            store.put_chunks(batch)
            batch = []
            print(f"\r  {i + 1:,} chunks written", end="", file=sys.stderr, flush=True)
    store.put_chunks(batch)
    print(file=sys.stderr)
    for s in range(1, snapshots + 1):
        upto = chunks * s // snapshots
        first = max(0, upto - snapshot_chunks) if snapshot_chunks else 0
        builder = ChunkListBuilder()
        for cid in ids[first:upto]:
            builder.add(cid, 16)
        lists = builder.finish()
        store.put_chunks([(bytes(lid), blob) for lid, blob in lists])
        record = pb.SnapshotRecord(
            sequence=s,
            tree_chunk_ids=[ids[first]],
            chunk_list_ids=[bytes(lid) for lid, _ in lists],
            totals=pb.SnapshotTotals(
                files=upto - first,
                chunks=upto - first,
                stored_bytes=16 * (upto - first),
                plaintext_bytes=8 * (upto - first),
            ),
        )
        snap = sign_snapshot(key, record)
        accept_snapshot(store, snap.signed, hosted, require_complete=True, custody=custody)
        if snapshots <= 10 or s % (snapshots // 10) == 0:
            print(
                f"  snapshot {s}: {upto - first:,} chunks in {len(lists)} chunk lists",
                file=sys.stderr,
            )
    store.close()
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(args: list[str], runs: int) -> tuple[list[float], subprocess.CompletedProcess[str]]:
    times, last = [], None
    for _ in range(runs):
        t = time.monotonic()
        last = subprocess.run(args, capture_output=True, text=True)
        times.append(time.monotonic() - t)
    assert last is not None
    return times, last


def compare_cli(base: list[str], other: Path, cluster: Path, pairs: int) -> dict[str, object]:
    """`samizdat status --cluster` from this checkout and from `other` (another checkout's
    `samizdat`), alternating (ABAB); wall and CPU (user + system) seconds per run."""
    runs: dict[str, dict[str, list[float]]] = {}
    for _ in range(pairs):
        for name, cli in (("this", base), ("other", [str(other)])):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.monotonic()
            subprocess.run([*cli, "status", "--cluster", str(cluster)], capture_output=True)
            wall = time.monotonic() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            runs.setdefault(name, {"wall_s": [], "cpu_s": []})
            runs[name]["wall_s"].append(round(wall, 2))
            runs[name]["cpu_s"].append(round(cpu, 2))
    return {"other": str(other), "load_average_1min": os.getloadavg()[0], **runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--snapshots", type=int, default=3)
    ap.add_argument(
        "--snapshot-chunks",
        type=int,
        default=0,
        help="chunks each snapshot references (0: a growing prefix of all chunks)",
    )
    ap.add_argument("--nodes", type=int, default=3, choices=range(1, len(NAMES) + 1))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--status-calls", type=int, default=200, help="GetStatus calls for the node's CPU time"
    )
    ap.add_argument("--audit", type=int, default=100, help="also time --audit N (0: skip)")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    ap.add_argument(
        "--compare-cli",
        type=Path,
        default=None,
        help="another checkout's samizdat: time its `status` against this one's, alternating",
    )
    opts = ap.parse_args()
    root = opts.dir or Path(tempfile.mkdtemp(prefix="samizdat-status-scale-"))
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    key = ArchiveKey.generate()
    save_key(key, root / "archive.key")
    nodes = []
    for name, cc in NAMES[: opts.nodes]:
        port = free_port()
        node_id = sh(
            "samizdat-node",
            "init",
            str(root / name),
            "--listen",
            f"127.0.0.1:{port}",
            "--jurisdiction",
            cc,
            "--name",
            name,
        ).splitlines()[-1]
        sh("samizdat-node", "host", str(root / name), key.archive_id.hex())
        nodes.append((name, cc, port, node_id))
    for name, _, _, _ in nodes:
        for other, cc, port, node_id in nodes:
            if other != name:
                sh(
                    "samizdat-node",
                    "peer",
                    "add",
                    str(root / name),
                    node_id,
                    f"127.0.0.1:{port}",
                    "--jurisdiction",
                    cc,
                )
    cluster = root / "cluster.toml"
    cluster.write_text(
        f"replicas = {opts.nodes}\n"
        + "".join(
            f'\n[[node]]\nname = "{n}"\naddress = "127.0.0.1:{p}"\n'
            f'id = "{i}"\njurisdiction = "{c}"\n'
            for n, c, p, i in nodes
        )
    )

    print(f"filling {opts.chunks:,} chunks, {opts.snapshots} snapshots ...", file=sys.stderr)
    fill_seconds = fill(
        root / nodes[0][0] / "data", key, opts.chunks, opts.snapshots, opts.snapshot_chunks
    )
    for name, _, _, _ in nodes[1:]:
        shutil.copytree(root / nodes[0][0] / "data", root / name / "data")

    # No-op round cost: the second node pulls from the first through a byte-counting proxy,
    # every 0.2 s, with its metrics endpoint on (bench/noop.py).
    proxy = metrics_port = None
    if len(nodes) > 1:
        proxy = TcpLink(nodes[0][2])
        metrics_port = free_port()
        sh(
            "samizdat-node",
            "peer",
            "add",
            str(root / nodes[1][0]),
            nodes[0][3],
            f"127.0.0.1:{proxy.port}",
            "--jurisdiction",
            nodes[0][1],
        )
        toml = root / nodes[1][0] / "node.toml"
        doc = tomlkit.parse(toml.read_text())
        doc["sync_interval"], doc["metrics_listen"] = 0.2, f"127.0.0.1:{metrics_port}"
        toml.write_text(tomlkit.dumps(doc))

    procs = []
    try:
        for name, _, _, _ in nodes:
            ready = root / f"{name}.ready"
            log = open(root / f"{name}.log", "w")  # noqa: SIM115
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "samizdat-node"),
                        "serve",
                        str(root / name),
                        "--ready-file",
                        str(ready),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            while not ready.exists():
                if procs[-1].poll() is not None:
                    sys.exit(f"node {name} failed to start; see {log.name}")
                time.sleep(0.05)
        time.sleep(1.0)  # let the start-up replication rounds pass

        rpc = []
        for (name, _, port, node_id), proc in zip(nodes, procs, strict=True):
            client = NodeClient(NodeAddress.parse(f"{node_id}@127.0.0.1:{port}"))
            client.status()  # channel set-up and certificate pinning
            samples = []
            for _ in range(10):
                t = time.monotonic()
                answer = client.status()
                samples.append(time.monotonic() - t)
            cpu = cpu_seconds(proc.pid)
            for _ in range(opts.status_calls):
                client.status()
            cpu = cpu_seconds(proc.pid) - cpu
            rpc.append(
                {
                    "node": name,
                    "median_ms": round(statistics.median(samples) * 1000, 2),
                    # includes what the node's workers (scrub, replication) used meanwhile
                    "node_cpu_ms_per_call": round(cpu * 1000 / max(1, opts.status_calls), 2),
                    "answer_bytes": answer.ByteSize(),
                    "snapshots_listed": len(answer.snapshots),
                    "chunks_stored": answer.chunks_stored,
                }
            )
            client.close()
        scrape = None
        if metrics_port is not None:
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            samples = []
            for _ in range(10):
                t = time.monotonic()
                body = urllib.request.urlopen(url, timeout=60).read()
                samples.append(time.monotonic() - t)
            scrape = {
                "median_ms": round(statistics.median(samples) * 1000, 2),
                "bytes": len(body),
            }

        base = [str(BIN / "samizdat")]
        help_times, _ = timed([*base, "--help"], opts.runs)
        text_times, text = timed([*base, "status", "--cluster", str(cluster)], opts.runs)
        json_times, js = timed([*base, "status", "--cluster", str(cluster), "--json"], opts.runs)
        doc = json.loads(js.stdout)
        result = {
            "chunks": opts.chunks,
            "snapshots": opts.snapshots,
            "nodes": opts.nodes,
            "fill_seconds": round(fill_seconds, 1),
            "snapshot_chunks": opts.snapshot_chunks,
            "get_status_rpc": rpc,
            "metrics_scrape": scrape,
            "cli_startup_help_s": round(statistics.median(help_times), 3),
            "status_text_s": {
                "median": round(statistics.median(text_times), 3),
                "runs": [round(t, 3) for t in text_times],
                "exit_code": text.returncode,
            },
            "status_json_s": {
                "median": round(statistics.median(json_times), 3),
                "runs": [round(t, 3) for t in json_times],
                "exit_code": js.returncode,
                "json_bytes": len(js.stdout),
            },
            "status": doc["status"],
            "complete_copies": [s["replication"]["complete_copies"] for s in doc["snapshots"]],
        }
        if opts.compare_cli is not None:
            result["compare_cli"] = compare_cli(base, opts.compare_cli, cluster, opts.runs)
        if opts.audit:
            audit_times, audit = timed(
                [
                    *base,
                    "status",
                    "--cluster",
                    str(cluster),
                    "--json",
                    "--audit",
                    str(opts.audit),
                    "--key",
                    str(root / "archive.key"),
                ],
                max(1, opts.runs // 2),
            )
            adoc = json.loads(audit.stdout)
            result["status_audit_s"] = {
                "samples_per_node": opts.audit,
                "median": round(statistics.median(audit_times), 3),
                "exit_code": audit.returncode,
                "passed": [n["audit"]["passed"] for n in adoc["nodes"] if n.get("audit")],
            }
        if proxy is not None and metrics_port is not None:
            cost = measure_noop(metrics_port, proxy.reset, nodes[0][3], seconds=10.0)
            result["noop_round"] = {
                "rounds": cost.rounds,
                "ms_per_round": round(cost.ms_per_round, 2),
                "bytes_per_round": round(cost.bytes_per_round),
            }
        print(text.stdout, file=sys.stderr)
        print(json.dumps(result, indent=2))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if proxy is not None:
            proxy.close()
        if opts.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
