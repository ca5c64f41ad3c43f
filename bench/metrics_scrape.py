#!/usr/bin/env python3
"""What a metrics scrape costs a node holding many snapshots (review R13).

Fills one store in process (bench/status_scale.py's `fill`), then, alternating (ABAB) between
this checkout and another (`--other DIR`: a source tree of another commit, `git archive`d; its
node runs from that tree's source roots: bench/status_flood.py's `serve`), for --pairs pairs:
starts a real `samizdat-node serve` on a copy of the store (TLS, scrub off, no peers, metrics
on loopback), scrapes /metrics once (the first scrape: counters and rows built), then
--scrapes more one after another, and reports the node process's CPU ms per scrape (/proc),
the first scrape's, and the body's size.

Usage: python bench/metrics_scrape.py --other /dev/shm/base [--snapshots 10000]
                                      [--chunks 100000] [--scrapes 20] [--pairs 3]
                                      [--dir /dev/shm/metrics-scrape]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import tomlkit

from samizdat.core.keys import ArchiveKey

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from status_flood import serve  # noqa: E402
from status_scale import cpu_seconds, fill, free_port, sh  # noqa: E402


def scrapes(url: str, pid: int, count: int) -> dict[str, object]:
    cpu = cpu_seconds(pid)
    body = urllib.request.urlopen(url, timeout=60).read()
    first = cpu_seconds(pid) - cpu
    cpu = cpu_seconds(pid)
    t = time.monotonic()
    for _ in range(count):
        urllib.request.urlopen(url, timeout=60).read()
    wall = time.monotonic() - t
    cpu = cpu_seconds(pid) - cpu
    return {
        "first_scrape_cpu_ms": round(first * 1000, 1),
        "node_cpu_ms_per_scrape": round(cpu * 1000 / count, 2),
        "wall_ms_per_scrape": round(wall * 1000 / count, 1),
        "body_bytes": len(body),
        "snapshot_rows": body.count(b"\nsamizdat_snapshot_chunks_total{"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--other", type=Path, required=True, help="source tree to compare against")
    ap.add_argument("--snapshots", type=int, default=10_000)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--snapshot-chunks", type=int, default=10)
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/dev/shm/metrics-scrape"))
    opts = ap.parse_args()
    root = opts.dir
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    try:
        key = ArchiveKey.generate()
        node = root / "node"
        sh("samizdat-node", "init", str(node), "--listen", f"127.0.0.1:{free_port()}")
        sh("samizdat-node", "host", str(node), key.archive_id.hex())
        metrics_port = free_port()
        toml = node / "node.toml"
        doc = tomlkit.parse(toml.read_text())
        doc["scrub_rate_mb"] = 0
        doc["metrics_listen"] = f"127.0.0.1:{metrics_port}"
        toml.write_text(tomlkit.dumps(doc))
        fill(root / "filled", key, opts.chunks, opts.snapshots, opts.snapshot_chunks)
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        runs: dict[str, list[dict[str, object]]] = {"this": [], "other": []}
        for _ in range(opts.pairs):
            for name, source in (("this", None), ("other", opts.other)):
                shutil.rmtree(node / "data", ignore_errors=True)
                shutil.copytree(root / "filled", node / "data")
                proc = serve(source, node, root / f"{name}.log")
                try:
                    result = scrapes(url, proc.pid, opts.scrapes)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                result["load_average_1min"] = os.getloadavg()[0]
                runs[name].append(result)
                print(name, result, file=sys.stderr)
        summary = {
            name: {
                "node_cpu_ms_per_scrape_median": statistics.median(
                    float(str(r["node_cpu_ms_per_scrape"])) for r in rs
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
