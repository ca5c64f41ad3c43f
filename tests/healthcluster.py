"""A small replicated cluster of real nodes for health, scrub, audit and metrics tests."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from samizdat.core.chunklist import decode_chunk_list
from samizdat.core.records import verify_snapshot
from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess, free_port, run_cli

JURISDICTIONS = {"paris": "FR", "berlin": "DE", "oslo": "NO", "bern": "CH"}
SCHEMA_PATH = Path(__file__).parents[1] / "docs" / "status.schema.json"


def configure(node: NodeProcess, **values: object) -> None:
    """Set keys in a node's node.toml (before start, or followed by a restart/SIGHUP)."""
    path = node.directory / "node.toml"
    doc = tomlkit.parse(path.read_text())
    for k, v in values.items():
        doc[k] = v
    path.write_text(tomlkit.dumps(doc))


def start_with_metrics(node_factory: Callable[..., NodeProcess]) -> tuple[NodeProcess, int]:
    """Start one node (n1) with its metrics listener on a free loopback port; return it and
    that port."""
    port = free_port()
    node = node_factory("n1", start=False)
    configure(node, metrics_listen=f"127.0.0.1:{port}")
    node.start()
    return node, port


def make_tree(root: Path, seed: int = 1) -> Path:
    """~1.5 MB: a few incompressible 'videos' (many blob-file chunks) and some notes."""
    import random

    rng = random.Random(seed)
    (root / "videos").mkdir(parents=True)
    (root / "notes").mkdir()
    for i in range(3):
        (root / "videos" / f"v{i}.bin").write_bytes(rng.randbytes(500_000))
    for i in range(10):
        (root / "notes" / f"n{i}.txt").write_text(f"note {seed}-{i}\n" * 40)
    return root


@dataclass
class Cluster:
    nodes: list[NodeProcess]
    key: KeyFile
    file: Path
    snapshot_id: str = ""

    def node(self, name: str) -> NodeProcess:
        return next(n for n in self.nodes if n.name == name)

    def status(self, *args: str | Path, timeout: float = 60) -> tuple[int, str, str]:
        return run_cli("status", "--cluster", self.file, *args, timeout=timeout)

    def status_json(self, *args: str | Path) -> tuple[int, dict[str, Any]]:
        code, out, err = self.status("--json", *args)
        assert out.strip(), f"no JSON output (exit {code}): {err}"
        return code, json.loads(out)

    def push(self, src: Path, to: str | None = None) -> str:
        target = self.node(to) if to else self.nodes[0]
        code, out, err = run_cli("push", "--key", self.key, "--node", target.address, src)
        assert code == 0, err
        self.snapshot_id = re.search(r"snapshot ([0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]
        return self.snapshot_id

    def wait_complete(self, nodes: list[NodeProcess] | None = None, timeout: float = 60) -> None:
        """Until every given node holds every snapshot completely, with nothing quarantined."""
        deadline = time.monotonic() + timeout
        nodes = nodes or [n for n in self.nodes if n.running]
        while True:
            states = {}
            for n in nodes:
                s = n.status()
                states[n.name] = (
                    [(x.chunks_held, x.chunks_total) for x in s.snapshots],
                    s.quarantined_chunks,
                )
            if all(
                snaps and all(h == t for h, t in snaps) and not q for snaps, q in states.values()
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no convergence in {timeout}s: {states}")
            time.sleep(0.2)

    def chunks(self, via: NodeProcess | None = None) -> list[tuple[bytes, int]]:
        """(id, stored size) of every chunk the latest snapshot references, lists included."""
        node = via or self.nodes[0]
        client = node.client(self.key.key)
        try:
            item = next(
                s for s in client.all_snapshots() if s.snapshot_id.hex() == self.snapshot_id
            )
            snap = verify_snapshot(item.snapshot)
            out = []
            for list_id in snap.record.chunk_list_ids:
                blob = read_chunk(node, self.key, list_id)
                out.append((list_id, len(blob)))
                out.extend(decode_chunk_list(list_id, blob))
            return out
        finally:
            client.close()


def read_chunk(node: NodeProcess, key: KeyFile, chunk_id: bytes) -> bytes:
    """One chunk's bytes from a node, read with a reader token of the archive key."""
    client = node.client(key.key)
    try:
        for response in client.get_chunks([chunk_id]):
            for chunk in response.chunks:
                return bytes(chunk.data)
    finally:
        client.close()
    raise LookupError(f"{node.name} does not serve {chunk_id.hex()[:12]}")


def make_cluster(
    node_factory: Callable[..., NodeProcess],
    key: KeyFile,
    tmp_path: Path,
    names: tuple[str, ...] = ("paris", "berlin", "oslo"),
    replicas: int = 3,
    per_node: dict[str, dict[str, object]] | None = None,
    **config: object,
) -> Cluster:
    """Start fully meshed nodes (sync every second by default) and write a cluster file."""
    nodes = [
        node_factory(n, host=[key.archive_id], start=False, jurisdiction=JURISDICTIONS[n])
        for n in names
    ]
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.peer_add(b)
    for n in nodes:
        configure(n, **{"sync_interval": 1, **config, **(per_node or {}).get(n.name, {})})
        n.start()
    file = tmp_path / "cluster.toml"
    file.write_text(
        f"replicas = {replicas}\n"
        + "".join(
            f'\n[[node]]\nname = "{n.name}"\naddress = "{n.hostport}"\nid = "{n.node_id}"\n'
            f'jurisdiction = "{n.jurisdiction}"\n'
            for n in nodes
        )
    )
    return Cluster(nodes, key, file)
