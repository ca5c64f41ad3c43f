#!/usr/bin/env python3
"""Restore throughput from one node vs. three nodes holding the same data, and vs. restic.

    python bench/restore_multi.py --size 2G [--runs 2] [--no-restic] [--out FILE]

Steps:
1. generate (or reuse) the archive-like bench data with bench/gen_data.py (v1 only is used);
2. start three real `samizdat-node` processes (TLS on loopback, peered with each other), push
   v1 to the first and wait until replication has given every node a complete copy;
3. for each destination file system (the disk under --workdir, and a tmpfs in /dev/shm when
   there is room) and each of --runs rounds:
   - the floor: `cp -a` of the plain source tree to the same file system (first round only);
   - `samizdat restore --json` from ONE node (--node) and from THREE nodes (--cluster), the
     restored bytes compared with the source after the first run of each (not timed);
   - `restic restore` of the same data from a local restic repository (restic's best case:
     no network, no TLS), unless --no-restic.

MB/s = plaintext bytes restored / wall time of the whole command (process start to exit,
including key loading, snapshot listing and tree download). Also recorded: CPU seconds of the
command, CPU seconds the three nodes spent meanwhile, and the command's peak RSS (sampled every
50 ms). Stores and source data stay in the page cache: the figures are CPU and pipeline bound.
After each step the restored tree is deleted, synced, and on disk the next step waits
--settle seconds (ext4 without a journal scans recently deleted inodes on every allocation).
All processes, nodes included, share the machine's cores. Results go to --out (JSON).
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
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import gen_data  # noqa: E402
from harness import Run, Sampler, run_measured  # noqa: E402

from tests.nodeproc import NodeProcess, entry_point  # noqa: E402

MiB = 1 << 20
SAMPLER = Sampler()


def measured(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run cmd (a failure is the caller's to report): wall time, CPU time, peak RSS."""
    return run_measured(cmd, SAMPLER, env=env, check=False)


def node_cpu(nodes: list[NodeProcess]) -> float:
    total = 0.0
    for n in nodes:
        if n.proc is not None:
            t = psutil.Process(n.proc.pid).cpu_times()
            total += t.user + t.system
    return total


def settle(path: Path, seconds: float) -> None:
    """Remove a restored tree and wait: ext4 without a journal scans inodes deleted in the
    last 30 s on every allocation, which would slow the next step down."""
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["sync"], check=False)
        time.sleep(seconds)


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
    ap.add_argument(
        "--settle",
        type=float,
        default=31.0,
        help="seconds to wait after deleting a restored tree on disk (ext4 scans "
        "inodes deleted in the last 30 s on every allocation)",
    )
    ap.add_argument("--out", type=Path, default=HERE / "out" / "restore_multi.json")
    args = ap.parse_args()

    SAMPLER.start()
    data = args.data or gen_data.default_out(args.size, args.seed)
    manifest = gen_data.generate(args.size, args.seed, data)
    source = data / "v1"
    nbytes = manifest["v1"]["bytes"]
    work = Path(tempfile.mkdtemp(prefix="restore-multi-", dir=args.workdir))
    samizdat = entry_point("samizdat")
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "data": {"dir": str(source), "bytes": nbytes, "files": manifest["v1"]["files"]},
        "runs": [],
    }
    nodes: list[NodeProcess] = []
    try:
        key = work / "archive.key"
        archive_id = subprocess.run(
            [samizdat, "key", "new", str(key)], check=True, capture_output=True, text=True
        ).stdout.strip()
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
        cluster.write_text(
            "replicas = 3\n"
            + "".join(
                f'\n[[node]]\nname = "{n.name}"\naddress = "{n.hostport}"\nid = "{n.node_id}"\n'
                for n in nodes
            )
        )
        print(
            f"pushing {gen_data.human(nbytes)} ({manifest['v1']['files']} files) to node1",
            flush=True,
        )
        r = measured([samizdat, "push", "--key", str(key), "--node", nodes[0].address, str(source)])
        if r.rc:
            raise SystemExit(f"push failed: {r.stderr}")
        print(f"  push {nbytes / r.seconds / 1e6:.0f} MB/s; waiting for replication", flush=True)
        t = wait_replicated(nodes, timeout=1800)
        print(f"  all three nodes complete after {t:.1f}s more", flush=True)

        dest_bases = {"disk": work}
        if Path("/dev/shm").is_dir() and shutil.disk_usage("/dev/shm").free > 3 * nbytes:
            dest_bases["tmpfs"] = Path(tempfile.mkdtemp(prefix="restore-multi-", dir="/dev/shm"))
        configs = {
            "samizdat_1_node": ["--node", nodes[0].address],
            "samizdat_3_nodes": ["--cluster", str(cluster)],
        }
        restic_env = None
        if not args.no_restic and shutil.which("restic"):
            restic_env = dict(
                os.environ,
                RESTIC_REPOSITORY=str(work / "restic-repo"),
                RESTIC_PASSWORD="bench",
                RESTIC_CACHE_DIR=str(work / "rc"),
            )
            results["restic_version"] = subprocess.run(
                ["restic", "version"], capture_output=True, text=True
            ).stdout.strip()
            subprocess.run(
                ["restic", "init", "-q"], env=restic_env, check=True, capture_output=True
            )
            subprocess.run(
                ["restic", "backup", "-q", "--host", "bench", "."],
                env=restic_env,
                cwd=source,
                check=True,
                capture_output=True,
            )
        checked: set[str] = set()

        def record(
            name: str, kind: str, run_no: int, r: Run, node_s: float, extra: dict[str, object]
        ) -> None:
            row = {
                "config": name,
                "dest": kind,
                "run": run_no,
                "seconds": round(r.seconds, 3),
                "mb_per_s": round(nbytes / r.seconds / 1e6, 1),
                "peak_rss_mib": r.peak_rss // MiB,
                "client_cpu_s": round(r.cpu_seconds, 2),
                "node_cpu_s": round(node_s, 2),
                **extra,
            }
            results["runs"].append(row)  # type: ignore[attr-defined]
            print(
                f"  {name:18} {kind:5} run {run_no}: {r.seconds:6.2f}s "
                f"{row['mb_per_s']:6.0f} MB/s  cpu {r.cpu_seconds:5.1f}s (+nodes {node_s:4.1f}s)  "
                f"peak RSS {row['peak_rss_mib']} MiB {extra or ''}",
                flush=True,
            )

        for run_no in range(1, args.runs + 1):
            for kind, base in dest_bases.items():
                dest = base / "restored"
                if run_no == 1:  # the floor: copying the plain tree on the same file system
                    r = measured(["cp", "-a", str(source), str(dest)])
                    record("cp_a_floor", kind, run_no, r, 0.0, {})
                    settle(dest, args.settle if kind == "disk" else 0)
                for name, src_args in configs.items():
                    cpu0 = node_cpu(nodes)
                    r = measured(
                        [samizdat, "restore", "--key", str(key), *src_args, "--json", str(dest)]
                    )
                    if r.rc:
                        raise SystemExit(f"{name} failed ({r.rc}): {r.stderr}")
                    summary = json.loads(r.stdout)
                    record(
                        name,
                        kind,
                        run_no,
                        r,
                        node_cpu(nodes) - cpu0,
                        {
                            "chunks": summary["chunks_fetched"],
                            "mib_per_source": [s["bytes"] // MiB for s in summary["sources"]],
                        },
                    )
                    if name not in checked:
                        diffs = same_tree(source, dest)
                        if diffs:
                            raise SystemExit(f"{name}: restored tree differs: {diffs}")
                        checked.add(name)
                    settle(dest, args.settle if kind == "disk" else 0)
                if restic_env is not None:
                    r = measured(
                        ["restic", "restore", "latest", "--target", str(dest)], env=restic_env
                    )
                    if r.rc:
                        raise SystemExit(f"restic restore failed: {r.stderr}")
                    record("restic_local_repo", kind, run_no, r, 0.0, {})
                    settle(dest, args.settle if kind == "disk" else 0)
    finally:
        for n in nodes:
            try:
                n.stop()
            except Exception:
                n.kill()
        shutil.rmtree(work, ignore_errors=True)
        for base in list(locals().get("dest_bases", {}).values())[1:]:
            shutil.rmtree(base, ignore_errors=True)

    best: dict[str, float] = {}
    for row in results["runs"]:  # type: ignore[attr-defined]
        k = f"{row['config']}/{row['dest']}"
        best[k] = max(best.get(k, 0.0), row["mb_per_s"])
    results["best_mb_per_s"] = best
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print("best MB/s: " + ", ".join(f"{k} {v:.0f}" for k, v in best.items()))
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
