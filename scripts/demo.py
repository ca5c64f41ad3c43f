"""The main job, end to end, on loopback: a three-node cluster in three jurisdictions.

Creates an archive key, splits it into 3-of-5 recovery shares, certifies a custodian's
writer key and a reader key with it, and three nodes (own process, data dir and TLS identity
each, peered with each other); pushes a sample archive to one node with the writer key, waits
until every node holds a complete copy, shows the snapshots, stops the first node as if seized,
rebuilds the archive key from three shares and revokes that node at a second one (the third
learns it from its peer), restores from the other two with the reader key and checks the
restored tree byte for byte. Everything lives under ./demo-cluster (recreated).
"""

from __future__ import annotations

import filecmp
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("demo-cluster").resolve()
NODES = [("paris", "FR", 7701), ("berlin", "DE", 7702), ("oslo", "NO", 7703)]
BIN = Path(sys.executable).parent
# The push id cache of the demo stays in its directory, not in ~/.cache.
os.environ["SAMIZDAT_CACHE_DIR"] = str(ROOT / "id-cache")


def run(*args: str, check: bool = True) -> str:
    """Run a samizdat command, echoing it, and return its stdout."""
    shown = " ".join(a if len(a) < 60 else a[:20] + "..." for a in args)
    print(f"$ {shown}", flush=True)
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True)
    if proc.stdout.strip():
        print(proc.stdout.rstrip(), flush=True)
    if proc.returncode and check:
        sys.exit(f"demo: `{shown}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def make_sample(path: Path) -> None:
    """A small archive: a few 'videos' (random bytes), notes with non-ASCII names, a link."""
    rng = random.Random(42)
    (path / "videos" / "2026").mkdir(parents=True)
    (path / "notes" / "témoignages").mkdir(parents=True)
    (path / "empty-folder").mkdir()
    for i in range(3):
        (path / "videos" / "2026" / f"cell-block-{i}.mp4").write_bytes(rng.randbytes(24 << 20))
    for i in range(200):
        text = f"note {i}: witness statement, camera {i % 7}, location redacted\n" * 40
        (path / "notes" / "témoignages" / f"note-{i:03}.txt").write_text(text)
    os.symlink("notes/témoignages/note-000.txt", path / "first-note.txt")


def wait_replicated(cluster: Path, timeout: float = 120) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samizdat.client.cluster import load_cluster
    from samizdat.rpc.remote import NodeClient

    nodes = load_cluster(cluster).nodes
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = []
        for n in nodes:
            status = NodeClient(n.address).status()
            snaps = status.snapshots
            done.append(
                bool(snaps)
                and all(s.chunks_held == s.chunks_total for s in snaps)
                and all(p.last_success_unix for p in status.peers)
            )
        if all(done):
            print("every node holds a complete copy and has synced with every peer", flush=True)
            return
        time.sleep(0.5)
    sys.exit("demo: replication did not converge in time")


def wait_revoked(node: str, node_id: str, timeout: float = 60) -> None:
    """Until `node` lists `node_id` as revoked (learned from its peer)."""
    from samizdat.rpc.address import NodeAddress
    from samizdat.rpc.remote import NodeClient

    deadline = time.time() + timeout
    while time.time() < deadline:
        peers = NodeClient(NodeAddress.parse(node)).status().peers
        if any(p.revoked and p.node_id == node_id for p in peers):
            print("oslo learned the revocation from berlin", flush=True)
            return
        time.sleep(0.5)
    sys.exit("demo: the revocation did not reach oslo in time")


def main() -> None:
    if ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir()
    key = ROOT / "archive.key"
    archive_id = run("samizdat", "key", "new", str(key))
    # Custody: recovery shares for the archive key, a writer key for daily pushes, a reader
    # key for restores. In real use the archive key then leaves this machine.
    run("samizdat", "key", "split", str(key), "--threshold", "3", "--shares", "5", "--out",
        str(ROOT / "shares"))  # fmt: skip
    writer, reader = ROOT / "amal-writer.key", ROOT / "reader.key"
    run("samizdat", "key", "delegate", str(key), "--name", "amal", "--out", str(writer))
    run("samizdat", "key", "reader", str(key), "--out", str(reader))
    ids = {}
    for name, cc, port in NODES:
        ids[name] = run(
            "samizdat-node",
            "init",
            str(ROOT / name),
            "--listen",
            f"127.0.0.1:{port}",
            "--jurisdiction",
            cc,
            "--name",
            name,
        )
        run("samizdat-node", "host", str(ROOT / name), archive_id)
        # A short sync interval for the trial: the first node to start finds its peers down
        # and retries them after sync_interval seconds (30 by default).
        toml = ROOT / name / "node.toml"
        toml.write_text(toml.read_text().replace("sync_interval = 30", "sync_interval = 2", 1))
    for name, _, _ in NODES:
        for other, cc, port in NODES:
            if other != name:
                run(
                    "samizdat-node",
                    "peer",
                    "add",
                    str(ROOT / name),
                    ids[other],
                    f"127.0.0.1:{port}",
                    "--jurisdiction",
                    cc,
                )
    cluster = ROOT / "cluster.toml"
    cluster.write_text(
        "replicas = 3\n"
        + "".join(
            f'\n[[node]]\nname = "{n}"\naddress = "127.0.0.1:{p}"\nid = "{ids[n]}"\n'
            f'jurisdiction = "{cc}"\n'
            for n, cc, p in NODES
        )
    )
    procs = {}
    try:
        for name, _, _ in NODES:
            ready = ROOT / f"{name}.ready"
            log = open(ROOT / f"{name}.log", "w")  # noqa: SIM115
            procs[name] = subprocess.Popen(
                [str(BIN / "samizdat-node"), "serve", str(ROOT / name), "--ready-file", str(ready)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            while not ready.exists():
                if procs[name].poll() is not None:
                    sys.exit(f"demo: node {name} failed to start; see {log.name}")
                time.sleep(0.1)
        print(f"three nodes up: {', '.join(f'{n} ({cc})' for n, cc, _ in NODES)}")
        sample = ROOT / "sample-archive"
        make_sample(sample)
        paris = f"{ids['paris']}@127.0.0.1:7701"
        run("samizdat", "push", "--key", str(writer), "--node", paris, str(sample))
        wait_replicated(cluster)
        run("samizdat", "snapshots", "--cluster", str(cluster))
        run("samizdat", "status", "--cluster", str(cluster), check=False)
        print("stopping paris (as if seized)", flush=True)
        procs["paris"].send_signal(signal.SIGTERM)
        procs["paris"].wait(timeout=30)
        shares = ROOT / "shares"
        recovered = ROOT / "recovered.key"
        run("samizdat", "key", "recover", *(str(shares / f"share-{i}.txt") for i in (1, 3, 5)),
            "--out", str(recovered))  # fmt: skip
        berlin = f"{ids['berlin']}@127.0.0.1:7702"
        run("samizdat", "node", "revoke", "--key", str(recovered), ids["paris"], "--node", berlin,
            "--reason", "seized")  # fmt: skip
        wait_revoked(f"{ids['oslo']}@127.0.0.1:7703", ids["paris"])
        run("samizdat", "status", "--cluster", str(cluster), check=False)
        restored = ROOT / "restored"
        others = [f"--node={ids[n]}@127.0.0.1:{p}" for n, _, p in NODES if n != "paris"]
        run("samizdat", "restore", "--key", str(reader), *others, str(restored))
        run("samizdat", "verify", "--key", str(reader), *others)
        cmp = filecmp.dircmp(sample, restored)
        _check_same(cmp)
        print("restored tree is identical to the original: demo OK")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _check_same(cmp: filecmp.dircmp[str]) -> None:
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        sys.exit(
            f"demo: restored tree differs: {cmp.left_only} {cmp.right_only} "
            f"{cmp.diff_files} {cmp.funny_files}"
        )
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    if mismatch or errors:
        sys.exit(f"demo: restored files differ: {mismatch} {errors}")
    for sub in cmp.subdirs.values():
        _check_same(sub)


if __name__ == "__main__":
    main()
