#!/usr/bin/env python3
"""Restore throughput from one node vs. three nodes holding the same data, and vs. restic.

    python bench/restore_multi.py --size 2G [--runs 2] [--no-restic] [--out FILE]

Steps:
1. generate (or reuse) the archive-like bench data with bench/gen_data.py (v1 only is used);
2. start three real `samizdat-node` processes (TLS on loopback, peered with each other), push
   v1 to the first and wait until replication has given every node a complete copy;
3. time `samizdat restore --json` into a fresh directory from ONE node (--node) and from
   THREE nodes (--cluster), `--runs` times each, alternating, checking the restored bytes
   after the first run of each (not timed);
4. time `restic restore` of the same data from a local restic repository (restic's own best
   case: no network, no TLS).

MB/s = plaintext bytes restored / wall time of the whole command (process start to exit,
including key loading, snapshot listing and tree download). The peak RSS of the CLI is
sampled every 50 ms. All stores and the source data stay in the page cache (the figures are
CPU and pipeline bound); `sync` runs before each timed step so that write-back of one step
does not land in the next. Results go to --out (JSON) and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import gen_data  # noqa: E402

from tests.nodeproc import NodeProcess, entry_point  # noqa: E402

MiB = 1 << 20


def peak_rss_run(cmd: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> tuple[float, int, str, str, int]:
    """Run cmd; return (seconds, exit code, stdout, stderr, peak RSS bytes of its tree)."""
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=cwd, stdin=subprocess.DEVNULL)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            p = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.wait(0.05):
            try:
                rss = p.memory_info().rss + sum(
                    c.memory_info().rss for c in p.children(recursive=True))
            except psutil.Error:
                break
            peak = max(peak, rss)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    t.join()
    return seconds, proc.returncode, out.decode(), err.decode(), peak


def same_tree(a: Path, b: Path) -> list[str]:
    """Byte-compare every regular file; return differences (first few)."""
    diffs = []
    for dirpath, _, names in os.walk(a):
        for n in names:
            pa = Path(dirpath) / n
            pb = b / pa.relative_to(a)
            if pa.is_symlink():
                continue
            if not pb.is_file() or pa.stat().st_size != pb.stat().st_size:
                diffs.append(str(pa.relative_to(a)))
            else:
                with open(pa, "rb") as fa, open(pb, "rb") as fb:
                    while True:
                        x, y = fa.read(8 * MiB), fb.read(8 * MiB)
                        if x != y:
                            diffs.append(str(pa.relative_to(a)))
                            break
                        if not x:
                            break
            if len(diffs) > 5:
                return diffs
    return diffs


def wait_replicated(nodes: list[NodeProcess], timeout: float) -> float:
    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        states = []
        for n in nodes:
            snaps = n.status().snapshots
            states.append(bool(snaps) and all(s.chunks_held == s.chunks_total for s in snaps))
        if all(states):
            return time.perf_counter() - start
        time.sleep(0.5)
    raise SystemExit("replication did not converge in time")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=gen_data.parse_size, default=2 * gen_data.GiB)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None, help="bench data dir (gen_data layout)")
    ap.add_argument("--runs", type=int, default=2, help="timed runs per configuration")
    ap.add_argument("--no-restic", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "restore_multi.json")
    args = ap.parse_args()

    data = args.data or gen_data.default_out(args.size, args.seed)
    manifest = gen_data.generate(args.size, args.seed, data)
    source = data / "v1"
    nbytes = manifest["v1"]["bytes"]
    work = Path(tempfile.mkdtemp(prefix="restore-multi-", dir=args.workdir))
    samizdat = entry_point("samizdat")
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "kernel": platform.release()},
        "data": {"dir": str(source), "bytes": nbytes, "files": manifest["v1"]["files"]},
        "runs": [],
    }
    nodes: list[NodeProcess] = []
    try:
        key = work / "archive.key"
        archive_id = subprocess.run([samizdat, "key", "new", str(key)], check=True,
                                    capture_output=True, text=True).stdout.strip()
        for i, cc in enumerate(("FR", "DE", "NO")):
            n = NodeProcess(work / f"node{i + 1}", jurisdiction=cc)
            n.init()
            n.host(archive_id)
            nodes.append(n)
        for n in nodes:
            for other in nodes:
                if other is not n:
                    n.peer_add(other)
        for n in nodes:
            n.start()
        cluster = work / "cluster.toml"
        cluster.write_text("replicas = 3\n" + "".join(
            f'\n[[node]]\nname = "{n.name}"\naddress = "{n.hostport}"\nid = "{n.node_id}"\n'
            for n in nodes))
        print(f"pushing {gen_data.human(nbytes)} ({manifest['v1']['files']} files) to node1",
              flush=True)
        t, code, out, err, _ = peak_rss_run(
            [samizdat, "push", "--key", str(key), "--node", nodes[0].address, str(source)])
        if code:
            raise SystemExit(f"push failed: {err}")
        print(f"  push {nbytes / t / 1e6:.0f} MB/s; waiting for replication", flush=True)
        t = wait_replicated(nodes, timeout=1800)
        print(f"  all three nodes complete after {t:.1f}s more", flush=True)

        configs = {
            "samizdat_1_node": ["--node", nodes[0].address],
            "samizdat_3_nodes": ["--cluster", str(cluster)],
        }
        checked: set[str] = set()
        for run in range(args.runs):
            for name, src_args in configs.items():
                dest = work / f"restore-{name}"
                shutil.rmtree(dest, ignore_errors=True)
                subprocess.run(["sync"], check=False)
                t, code, out, err, rss = peak_rss_run(
                    [samizdat, "restore", "--key", str(key), *src_args, "--json", str(dest)])
                if code:
                    raise SystemExit(f"{name} failed ({code}): {err}")
                summary = json.loads(out)
                row = {"config": name, "run": run + 1, "seconds": round(t, 3),
                       "mb_per_s": round(nbytes / t / 1e6, 1), "peak_rss_mib": rss // MiB,
                       "chunks": summary["chunks_fetched"],
                       "per_source": {s["source"]: s["bytes"] // MiB
                                      for s in summary["sources"]}}
                results["runs"].append(row)  # type: ignore[attr-defined]
                print(f"  {name:18} run {run + 1}: {t:6.2f}s  {nbytes / t / 1e6:6.0f} MB/s  "
                      f"peak RSS {rss // MiB} MiB  MiB per source {row['per_source']}",
                      flush=True)
                if name not in checked:
                    diffs = same_tree(source, dest)
                    if diffs:
                        raise SystemExit(f"{name}: restored tree differs: {diffs}")
                    checked.add(name)
                shutil.rmtree(dest, ignore_errors=True)

        if not args.no_restic and shutil.which("restic"):
            env = dict(os.environ, RESTIC_REPOSITORY=str(work / "restic-repo"),
                       RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=str(work / "restic-cache"))
            version = subprocess.run(["restic", "version"], capture_output=True,
                                     text=True).stdout.strip()
            subprocess.run(["restic", "init", "-q"], env=env, check=True, capture_output=True)
            subprocess.run(["restic", "backup", "-q", "--host", "bench", "."], env=env,
                           cwd=source, check=True, capture_output=True)
            for run in range(args.runs):
                dest = work / "restore-restic"
                shutil.rmtree(dest, ignore_errors=True)
                subprocess.run(["sync"], check=False)
                t, code, out, err, rss = peak_rss_run(
                    ["restic", "restore", "latest", "--target", str(dest)], env=env)
                if code:
                    raise SystemExit(f"restic restore failed: {err}")
                results["runs"].append({  # type: ignore[attr-defined]
                    "config": "restic_local_repo", "run": run + 1, "seconds": round(t, 3),
                    "mb_per_s": round(nbytes / t / 1e6, 1), "peak_rss_mib": rss // MiB,
                    "version": version})
                print(f"  {'restic (local repo)':18} run {run + 1}: {t:6.2f}s  "
                      f"{nbytes / t / 1e6:6.0f} MB/s  peak RSS {rss // MiB} MiB", flush=True)
                shutil.rmtree(dest, ignore_errors=True)
    finally:
        for n in nodes:
            try:
                n.stop()
            except Exception:
                n.kill()
        shutil.rmtree(work, ignore_errors=True)

    best: dict[str, float] = {}
    for row in results["runs"]:  # type: ignore[attr-defined]
        best[row["config"]] = max(best.get(row["config"], 0.0), row["mb_per_s"])
    results["best_mb_per_s"] = best
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print("best MB/s: " + ", ".join(f"{k} {v:.0f}" for k, v in best.items()))
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
