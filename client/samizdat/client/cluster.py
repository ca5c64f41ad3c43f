"""The cluster file: the one description of a cluster shared by the CLI and operators; and
`named_nodes`, the one reading of a command's `--node` and `--cluster` arguments."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from samizdat.core.errors import ConfigError
from samizdat.rpc.address import NodeAddress


@dataclass(frozen=True)
class ClusterNode:
    name: str
    address: NodeAddress
    jurisdiction: str


@dataclass(frozen=True)
class Cluster:
    replicas: int
    nodes: tuple[ClusterNode, ...]
    # Complete copies must sit in at least this many jurisdictions (None: as many as the
    # replica target and the nodes' jurisdictions allow; see docs/status.md).
    min_jurisdictions: int | None = None


def load_cluster(path: Path) -> Cluster:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"cluster file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    replicas = doc.get("replicas", 3)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise ConfigError(f"{path}: key 'replicas' must be a positive integer")
    min_jurisdictions = doc.get("min_jurisdictions")
    if min_jurisdictions is not None and (
        not isinstance(min_jurisdictions, int)
        or isinstance(min_jurisdictions, bool)
        or min_jurisdictions < 0
    ):
        raise ConfigError(f"{path}: key 'min_jurisdictions' must be a non-negative integer")
    nodes = []
    for i, n in enumerate(doc.get("node", [])):
        where = f"{path}: [[node]] #{i + 1}"
        address, node_id = n.get("address"), n.get("id", "")
        if not isinstance(address, str):
            raise ConfigError(f"{where}: key 'address' is missing")
        try:
            parsed = NodeAddress.parse(f"{node_id}@{address}" if node_id else address)
        except Exception as e:
            raise ConfigError(f"{where}: {e}") from None
        nodes.append(
            ClusterNode(str(n.get("name", address)), parsed, str(n.get("jurisdiction", "")))
        )
    if not nodes:
        raise ConfigError(f"{path}: no [[node]] entries")
    return Cluster(replicas, tuple(nodes), min_jurisdictions)


NO_NODE = "name at least one node (--node NODE_ID@HOST:PORT) or --cluster FILE"


def named_nodes(
    nodes: Sequence[str], cluster: Path | None
) -> tuple[list[ClusterNode], Cluster | None]:
    """The nodes a command was given, in order: each `--node` (named by its own text), then
    every node of the `--cluster` file; and that file, loaded (None without --cluster). Empty
    if neither was given: whether that is an error is the command's to say."""
    named = [ClusterNode(n, NodeAddress.parse(n), "") for n in nodes]
    loaded = load_cluster(cluster) if cluster is not None else None
    if loaded is not None:
        named += loaded.nodes
    return named, loaded
