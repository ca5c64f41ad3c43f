"""A three-node cluster holding one archive, and a "fresh machine" to restore it on.

The fresh machine is what a restorer has the day a node is seized: a new empty HOME, a new
empty working directory holding only the archive key and the cluster file, and the `samizdat`
CLI. Every restore in these tests runs that way (relative paths, cwd and HOME set).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from samizdat.client.safefs import PARTIAL_PREFIX
from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess, dump_logs, run_cli, spawn_cli
from tests.trees import build_sample_tree, read_tree

VIDEOS = 24
VIDEO_SIZE = 4 << 20
SLOW_LINK_RATE = 8e6  # bytes/s per node: a full restore over three slow links takes ~4 s


def build_archive(root: Path, seed: int = 5) -> Path:
    """The sample tree (odd names, symlinks, modes, ns mtimes) plus ~100 MB of 'videos' and
    a few hundred notes: big enough that a restore takes a while."""
    build_sample_tree(root)
    rng = random.Random(seed)
    videos = root / "videos"
    videos.mkdir()
    for i in range(VIDEOS):
        (videos / f"clip-{i:02d}.bin").write_bytes(rng.randbytes(VIDEO_SIZE))
    notes = root / "notes" / "témoignages"
    notes.mkdir(parents=True)
    for i in range(300):
        (notes / f"note-{i:03d}.txt").write_text(f"note {i}: statement\n" * (20 + i % 50))
    return root


@dataclass
class Cluster:
    nodes: list[NodeProcess]
    key: KeyFile
    cluster_file: Path
    source: Path
    snapshot_id: str = ""
    proxies: list[object] = field(default_factory=list)

    def by_name(self, name: str) -> NodeProcess:
        return next(n for n in self.nodes if n.name == name)

    def label(self, node: NodeProcess) -> str:
        return f"{node.node_id[:8]}@{node.hostport}"

    def ensure_running(self) -> None:
        for n in self.nodes:
            if not n.running:
                n.start()

    def stop(self) -> None:
        for n in self.nodes:
            try:
                n.stop()
            except Exception:
                n.kill()


def write_cluster_file(
    path: Path, nodes: Sequence[NodeProcess], addresses: dict[str, str] | None = None
) -> Path:
    """The cluster file of `nodes`; `addresses` (by node name) overrides where they listen."""
    where = addresses or {}
    path.write_text(
        "replicas = 3\n"
        + "".join(
            f'\n[[node]]\nname = "{n.name}"\naddress = "{where.get(n.name, n.hostport)}"\n'
            f'id = "{n.node_id}"\njurisdiction = "{n.jurisdiction}"\n'
            for n in nodes
        )
    )
    return path


def wait_replicated(nodes: Sequence[NodeProcess], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = []
        for n in nodes:
            snaps = n.status().snapshots
            done.append(bool(snaps) and all(s.chunks_held == s.chunks_total for s in snaps))
        if all(done):
            return
        time.sleep(0.3)
    dump_logs(nodes)
    raise AssertionError("replication did not converge")


def start_cluster(base: Path, key: KeyFile, source: Path, count: int = 3) -> Cluster:
    """`count` peered nodes hosting the archive; `source` pushed to the first and replicated."""
    nodes = []
    for name, cc in zip(
        ("paris", "berlin", "oslo", "quito"), ("FR", "DE", "NO", "EC"), strict=False
    ):
        if len(nodes) == count:
            break
        n = NodeProcess(base / "nodes" / name, jurisdiction=cc)
        n.directory.parent.mkdir(parents=True, exist_ok=True)
        n.init()
        n.host(key.archive_id)
        nodes.append(n)
    for n in nodes:
        for other in nodes:
            if other is not n:
                n.peer_add(other)
    cluster = Cluster(nodes, key, write_cluster_file(base / "cluster.toml", nodes), source)
    try:
        for n in nodes:
            n.start()
        code, out, err = run_cli("push", "--key", key.path, "--node", nodes[0].address, source)
        assert code == 0, err
        cluster.snapshot_id = out.split()[1]
        wait_replicated(nodes)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class FreshMachine:
    """A new empty HOME and working directory with only the key and the cluster file."""

    home: Path
    cwd: Path

    @classmethod
    def create(cls, base: Path, cluster: Cluster) -> FreshMachine:
        home, cwd = base / "home", base / "work"
        home.mkdir(parents=True)
        cwd.mkdir(parents=True)
        shutil.copy(cluster.key.path, cwd / "archive.key")
        shutil.copy(cluster.cluster_file, cwd / "cluster.toml")
        return cls(home, cwd)

    @property
    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
        }

    def run(self, *args: str | os.PathLike[str], timeout: float = 180.0) -> tuple[int, str, str]:
        return run_cli(*args, env=self.env, cwd=self.cwd, timeout=timeout)

    def spawn(self, *args: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        return spawn_cli(*args, env=self.env, cwd=self.cwd)

    def restore(self, *args: str, dest: str = "restored") -> tuple[int, dict | None, str]:  # type: ignore[type-arg]
        """`samizdat restore --key archive.key ARGS --json DEST`; (code, summary, stderr)."""
        code, out, err = self.run("restore", "--key", "archive.key", *args, "--json", dest)
        return code, (json.loads(out) if code == 0 else None), err

    def slow_links(self, cluster: Cluster, rate: float = SLOW_LINK_RATE) -> dict[str, str]:
        """Put every node behind a `rate`-limited TCP proxy and point this machine's
        cluster.toml at the proxies (same pinned ids), so a restore takes seconds and can be
        interrupted mid-way. Returns node name -> source label as the CLI reports it. The
        proxies stop with the cluster's other proxies."""
        from tests.netfaults import TcpLink

        addresses = {}
        for n in cluster.nodes:
            link = TcpLink(n.port, rate=rate)
            cluster.proxies.append(link)
            addresses[n.name] = f"127.0.0.1:{link.port}"
        write_cluster_file(self.cwd / "cluster.toml", cluster.nodes, addresses)
        return {n.name: f"{n.node_id[:8]}@{addresses[n.name]}" for n in cluster.nodes}

    def home_is_untouched(self) -> bool:
        return not any(self.home.iterdir())


def completed_files(dest: Path, source: Path, under: str = "videos") -> list[str]:
    """Files under `under` that exist in DEST under their final name."""
    d = dest / under
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if not p.name.startswith("."))


def wait_for(predicate, timeout: float, interval: float = 0.01) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def assert_nothing_wrong_in_dest(source: Path, dest: Path) -> list[bytes]:
    """Every regular file under its final name in DEST is byte-identical to the source;
    return the paths of partial files (`.samizdat-partial-HASH`)."""
    original = read_tree(source)
    partial = []
    for rel, node in read_tree(dest).items():
        if os.path.basename(rel).startswith(PARTIAL_PREFIX):
            partial.append(rel)
            continue
        if node.kind == "file":
            assert rel in original, f"unexpected file {rel!r}"
            assert original[rel].content == node.content, f"wrong bytes under final name {rel!r}"
    return partial


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
