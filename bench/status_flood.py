#!/usr/bin/env python3
"""What a stranger calling GetStatus in a loop costs a node with many snapshots (issue 15).

Fills one store in process (bench/status_scale.py's `fill`: CHUNKS tiny chunks, SNAPSHOTS
snapshots of SNAPSHOT_CHUNKS chunks each), then, alternating (ABAB) between this checkout and
another (`--other DIR`: a source tree of another commit, e.g. `git archive`d; its node runs
from that tree's source roots, with this venv's libraries), for --pairs pairs: starts a real
`samizdat-node serve` on a copy of the store (TLS, scrub off, no peers), sends --calls
GetStatus calls from --threads stranger threads (no token), and reports the node process's
CPU ms per call (/proc) and the wall time of one archive-key holder's GetStatus during the
flood.

Usage: python bench/status_flood.py --other /dev/shm/base [--snapshots 10000]
                                    [--chunks 100000] [--calls 200] [--threads 8] [--pairs 3]
                                    [--dir /dev/shm/status-flood]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import tomlkit

from samizdat.core.keys import ArchiveKey
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.remote import NodeClient

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from status_scale import cpu_seconds, fill, free_port, sh  # noqa: E402

ROOTS = ("core", "rpc", "store", "server", "client", "proto")
LAUNCH = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    "sys.path[:0] = sys.argv[1].split(':'); del sys.argv[1]; "
    "from samizdat.server.cli import main; main()"
)


def serve(source: Path | None, node_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """`samizdat-node serve` from this checkout (None) or from the source tree `source`."""
    ready = node_dir / "ready"
    ready.unlink(missing_ok=True)
    args = ["serve", str(node_dir), "--log-level", "warning", "--ready-file", str(ready)]
    if source is None:
        cmd = [str(Path(sys.executable).parent / "samizdat-node"), *args]
    else:
        path = ":".join(str(source / r) for r in ROOTS)
        cmd = [sys.executable, "-c", LAUNCH, path, *args]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"node failed to start; see {log}")
        time.sleep(0.05)
    return proc


def flood(address: str, key: ArchiveKey, pid: int, calls: int, threads: int) -> dict[str, object]:
    strangers = [NodeClient(NodeAddress.parse(address)) for _ in range(threads)]
    member = NodeClient(NodeAddress.parse(address), key)
    try:
        snapshots = len(strangers[0].status(timeout=60).snapshots)  # warm: channels, parse
        for c in strangers[1:]:
            c.status(timeout=60)
        member.status(timeout=60)
        left = [calls]
        lock = threading.Lock()

        def loop(client: NodeClient) -> None:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                client.status(timeout=60)

        cpu = cpu_seconds(pid)
        workers = [threading.Thread(target=loop, args=(c,)) for c in strangers]
        for w in workers:
            w.start()
        t = time.monotonic()
        member.status(timeout=60)
        member_ms = (time.monotonic() - t) * 1000
        for w in workers:
            w.join()
        cpu = cpu_seconds(pid) - cpu
        return {
            "node_cpu_ms_per_call": round(cpu * 1000 / calls, 2),
            "member_call_ms": round(member_ms, 1),
            "snapshots_listed": snapshots,
        }
    finally:
        for c in [*strangers, member]:
            c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--other", type=Path, required=True, help="source tree to compare against")
    ap.add_argument("--snapshots", type=int, default=10_000)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--snapshot-chunks", type=int, default=10)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/dev/shm/status-flood"))
    opts = ap.parse_args()
    root = opts.dir
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    try:
        key = ArchiveKey.generate()
        port = free_port()
        node = root / "node"
        init = sh("samizdat-node", "init", str(node), "--listen", f"127.0.0.1:{port}")
        address = f"{init.splitlines()[-1]}@127.0.0.1:{port}"
        sh("samizdat-node", "host", str(node), key.archive_id.hex())
        toml = node / "node.toml"
        doc = tomlkit.parse(toml.read_text())
        doc["scrub_rate_mb"] = 0
        toml.write_text(tomlkit.dumps(doc))
        fill(root / "filled", key, opts.chunks, opts.snapshots, opts.snapshot_chunks)
        runs: dict[str, list[dict[str, object]]] = {"this": [], "other": []}
        for _ in range(opts.pairs):
            for name, source in (("this", None), ("other", opts.other)):
                shutil.rmtree(node / "data", ignore_errors=True)
                shutil.copytree(root / "filled", node / "data")
                proc = serve(source, node, root / f"{name}.log")
                try:
                    result = flood(address, key, proc.pid, opts.calls, opts.threads)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                result["load_average_1min"] = os.getloadavg()[0]
                runs[name].append(result)
                print(name, result, file=sys.stderr)
        summary = {
            name: {
                "node_cpu_ms_per_call_median": statistics.median(
                    float(str(r["node_cpu_ms_per_call"])) for r in rs
                ),
                "runs": rs,
            }
            for name, rs in runs.items()
        }
        print(json.dumps({"opts": {k: str(v) for k, v in vars(opts).items()}, **summary}, indent=1))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
